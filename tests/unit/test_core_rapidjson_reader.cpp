#include "dfhook/core/rapidjson_reader.hpp"

#include <doctest/doctest.h>

using dfhook::core::syntax_reason;

TEST_CASE("syntax errors are worded for people, a cut document as such") {
  CHECK(syntax_reason(rapidjson::kParseErrorDocumentEmpty, true, false) == "the document is empty");
  CHECK(syntax_reason(rapidjson::kParseErrorValueInvalid, false, true) ==
        "NaN and Infinity are not JSON numbers");
  CHECK(syntax_reason(rapidjson::kParseErrorValueInvalid, false, false) == "expected a JSON value");
  CHECK(syntax_reason(rapidjson::kParseErrorObjectMissColon, true, false) ==
        "unexpected end of the document");
  CHECK(syntax_reason(rapidjson::kParseErrorObjectMissColon, false, false) ==
        "expected ':' after the member name");
  CHECK(syntax_reason(rapidjson::kParseErrorStringMissQuotationMark, true, false) ==
        "unexpected end of the document in a string");
  CHECK(syntax_reason(rapidjson::kParseErrorStringInvalidEncoding, false, false) ==
        "invalid UTF-8");
  CHECK(syntax_reason(rapidjson::kParseErrorTermination, false, false) == "syntax error");
}
