#include "command.hpp"
#include "options_network.hpp"
#include "options_tokens.hpp"
#include "options_values.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/core/units.hpp"
#include "dfhook/io/log.hpp"
#include "dfhook/io/store.hpp"
#include "dfhook/net/http_client.hpp"
#include "dfhook/net/url.hpp"
#include "dfhook/service/datafile_update.hpp"
#include "dfhook/service/store_fetcher.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>

namespace dfhook::app {

namespace {

struct FetchOptions {
  std::string sdk_key;
  std::uint64_t project_id = 0;
  std::string url;
  std::string out;
  std::string out_dir = "./datafiles";
  TokenOptions tokens;
  std::string file_mode = "0644";
  std::string on_update;
  std::string hook_timeout = "60s";
  std::string splay = "0";
  std::string lock_timeout = "60s";
  bool force = false;
  bool allow_downgrade = false;
  NetworkOptions network;
};

// Where the datafile comes from and where it goes.
struct Target {
  service::DatafileSource source;
  std::filesystem::path out_dir;
};

bool is_sdk_key(std::string_view key) {
  return !key.empty() && key.size() <= 128 &&
         key.find_first_not_of(
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
             std::string_view::npos;
}

Target resolve_target(const FetchOptions& options, const std::vector<core::AuthToken>& tokens) {
  Target target;
  service::DatafileSource& source = target.source;
  std::optional<std::string_view> token;
  if (!options.sdk_key.empty()) {
    if (!is_sdk_key(options.sdk_key)) {
      throw core::usage_error(fmt::format("--sdk-key: invalid SDK key '{}'", options.sdk_key),
                              "copy the SDK key from Settings > Environments in Optimizely");
    }
    source.name = options.sdk_key + ".json";
    token = core::find_token(tokens, options.sdk_key);
    source.url = token ? service::authenticated_datafile_url(source.name)
                       : fmt::format("https://cdn.optimizely.com/datafiles/{}", source.name);
  } else if (options.project_id != 0) {
    source.project_id = options.project_id;
    source.name = fmt::format("{}.json", options.project_id);
    source.url = fmt::format("https://cdn.optimizely.com/json/{}", source.name);
  } else {
    const net::UrlParse parsed = net::parse_url(options.url);
    if (!parsed.url) {
      throw core::usage_error(
          fmt::format("--url: '{}' is not a URL: {}", net::redact_url(options.url), parsed.error));
    }
    source.url = options.url;
    source.name = net::datafile_name(*parsed.url);
    if (source.name.empty() && options.out.empty()) {
      throw core::usage_error(
          fmt::format("--url: '{}' does not end in a file name", net::redact_url(options.url)),
          "name the file with --out FILE");
    }
    token = core::find_token(tokens, service::datafile_key(source.name));
  }
  if (token) {
    source.headers.push_back(fmt::format("Authorization: Bearer {}", *token));
  }

  if (!options.out.empty()) {
    const std::filesystem::path out(options.out);
    if (!out.has_filename()) {
      throw core::usage_error(fmt::format("--out: '{}' names no file", options.out));
    }
    source.name = out.filename().string();
    target.out_dir = out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
  } else {
    target.out_dir = options.out_dir;
  }
  if (const std::string problem = io::datafile_name_problem(source.name); !problem.empty()) {
    throw core::usage_error(
        fmt::format("cannot store the datafile as '{}': {}", source.name, problem),
        "name the file with --out FILE");
  }
  return target;
}

void splay(std::chrono::milliseconds limit) {
  if (limit.count() <= 0) {
    return;
  }
  std::random_device seed;
  std::uniform_int_distribution<std::int64_t> pick(0, limit.count());
  std::this_thread::sleep_for(std::chrono::milliseconds(pick(seed)));
}

void print_line(const std::string& line) {
  if (std::fputs(line.c_str(), stdout) == EOF || std::fflush(stdout) != 0) {
    throw core::failure("cannot write to standard output");
  }
}

core::ExitCode run_fetch(const FetchOptions& options, bool quiet) {
  const std::chrono::milliseconds hook_timeout =
      duration_option("--hook-timeout", options.hook_timeout);
  const std::chrono::milliseconds splay_limit = duration_option("--splay", options.splay);
  service::UpdatePolicy policy;
  policy.force = options.force;
  policy.allow_downgrade = options.allow_downgrade;
  policy.lock_timeout = duration_option("--lock-timeout", options.lock_timeout);
  policy.hook_command = options.on_update;
  policy.hook_timeout = hook_timeout;
  const mode_t file_mode = file_mode_option("--file-mode", options.file_mode);
  const Target target = resolve_target(options, load_tokens(options.tokens));
  net::HttpClient client(client_options(options.network));

  splay(splay_limit);
  io::FileDatafileStore store(target.out_dir, io::FileStoreOptions{file_mode, {}});
  const service::UpdateReport report =
      service::update_datafile(client, store, target.source, policy);
  const std::string& name = target.source.name;
  switch (report.status) {
  case service::UpdateStatus::failed:
    throw core::Error(report.lock_timeout ? core::ExitCode::lock_timeout : core::ExitCode::failed,
                      report.message,
                      report.lock_timeout ? "another fetch-datafile or listen is writing it; "
                                            "retry later or raise --lock-timeout"
                                          : std::string());
  case service::UpdateStatus::not_modified:
  case service::UpdateStatus::stale:
    return core::ExitCode::ok;
  case service::UpdateStatus::older:
    io::log(io::LogLevel::warning,
            fmt::format("'{}' serves revision {}, older than the stored {}; kept the stored one "
                        "(--allow-downgrade to take it)",
                        net::redact_url(target.source.url), report.revision.value_or(0),
                        report.previous_revision.value_or(0)));
    return core::ExitCode::ok;
  case service::UpdateStatus::updated:
    break;
  }
  const std::string size = core::format_size(report.size);
  if (quiet) {
    // -q: errors only.
  } else if (report.previous_revision) {
    print_line(fmt::format("updated {} revision {} -> {} ({})\n", name, *report.previous_revision,
                           report.revision.value_or(0), size));
  } else {
    print_line(
        fmt::format("updated {} revision {} ({})\n", name, report.revision.value_or(0), size));
  }
  if (report.hook_failed()) {
    std::string hint;
    if (!report.hook->output.empty()) {
      std::string output = report.hook->output;
      while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) {
        output.pop_back();
      }
      hint = fmt::format("the hook said: {}", output);
    }
    throw core::Error(
        core::ExitCode::hook_failed,
        fmt::format("the datafile was updated but the hook failed: {}", report.hook->describe()),
        hint);
  }
  return core::ExitCode::ok;
}

}  // namespace

Runner setup_fetch_datafile(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<FetchOptions>();
  auto* sdk_key = sub.add_option("--sdk-key", options->sdk_key,
                                 "the datafile of this SDK key (an environment's)")
                      ->type_name("KEY");
  auto* project_id =
      sub.add_option("--project-id", options->project_id, "the legacy datafile of this project")
          ->type_name("ID")
          ->check(whole_number(1, 9'223'372'036'854'775'807));
  auto* url = sub.add_option("--url", options->url, "the datafile at this URL")->type_name("URL");
  auto* group = sub.add_option_group("source", "what to fetch");
  group->add_option(sdk_key);
  group->add_option(project_id);
  group->add_option(url);
  group->require_option(1);
  auto* out =
      sub.add_option("--out", options->out, "write the datafile to FILE")->type_name("FILE");
  sub.add_option("--out-dir", options->out_dir, "directory of the datafiles")
      ->type_name("DIR")
      ->capture_default_str()
      ->excludes(out);
  add_token_options(sub, options->tokens);
  sub.add_option("--file-mode", options->file_mode, "permissions of the datafile")
      ->type_name("MODE")
      ->capture_default_str();
  sub.add_option("--on-update", options->on_update,
                 "command run by /bin/sh -c after the datafile was updated")
      ->type_name("CMD");
  sub.add_option("--hook-timeout", options->hook_timeout, "time the hook may take")
      ->type_name("DUR")
      ->capture_default_str();
  sub.add_option("--splay", options->splay, "first sleep a random time up to DUR")
      ->type_name("DUR")
      ->capture_default_str();
  sub.add_option("--lock-timeout", options->lock_timeout,
                 "how long to wait for another writer of the datafile (then exit 3)")
      ->type_name("DUR")
      ->capture_default_str();
  sub.add_flag("--force", options->force, "download even if the server says it is unchanged");
  sub.add_flag("--allow-downgrade", options->allow_downgrade,
               "store a revision lower than the stored one");
  add_network_options(sub, options->network, NetworkUse::downloads);
  sub.footer(
      "Downloads the datafile when it changed (a conditional GET with the stored validators), "
      "validates it and replaces the stored copy atomically. Prints nothing when unchanged and "
      "one line when updated. Exit codes: 0 ok, 1 failed, 2 usage, 3 lock not obtained, 4 "
      "updated but the hook failed.");
  // `global` outlives the runner: both live for the whole of app::run.
  return [options, &global] { return run_fetch(*options, global.quiet); };
}

}  // namespace dfhook::app
