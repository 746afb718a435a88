# Project policy in two INTERFACE targets: settings (language, sanitizers, assertions)
# and warnings. Every target of the project links both.
add_library(dfhook_settings INTERFACE)
target_compile_features(dfhook_settings INTERFACE cxx_std_20)
set(CMAKE_CXX_EXTENSIONS OFF)
target_compile_definitions(dfhook_settings INTERFACE
  $<$<CONFIG:Debug>:_GLIBCXX_ASSERTIONS>
  DFHOOK_VERSION="${PROJECT_VERSION}")
target_compile_options(dfhook_settings INTERFACE -fno-plt)

if(DFHOOK_SANITIZE)
  list(JOIN DFHOOK_SANITIZE "," _sanitizers)
  target_compile_options(dfhook_settings INTERFACE
    -fsanitize=${_sanitizers} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(dfhook_settings INTERFACE -fsanitize=${_sanitizers})
endif()

add_library(dfhook_warnings INTERFACE)
target_compile_options(dfhook_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough
  -Wmissing-declarations
  $<$<BOOL:${DFHOOK_WERROR}>:-Werror>)

if(DFHOOK_FUZZ)
  # Coverage instrumentation in the libraries too, not only in the fuzz targets' own file:
  # without it libFuzzer cannot see which branches of the parsers an input reached.
  target_compile_options(dfhook_settings INTERFACE -fsanitize=fuzzer-no-link)
endif()
