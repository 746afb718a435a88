#include "command.hpp"
#include "options_network.hpp"
#include "options_secrets.hpp"
#include "options_tokens.hpp"
#include "options_values.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/core/units.hpp"
#include "dfhook/io/log.hpp"
#include "dfhook/io/spool.hpp"
#include "dfhook/io/store.hpp"
#include "dfhook/net/http_server.hpp"
#include "dfhook/service/delivery_log.hpp"
#include "dfhook/service/metrics.hpp"
#include "dfhook/service/store_fetcher.hpp"
#include "dfhook/service/update_worker.hpp"
#include "dfhook/service/webhook_handler.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dfhook::app {

namespace {

struct ListenOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string path = "/webhooks/optimizely";
  SecretOptions secrets;
  bool insecure_skip_signature = false;
  TokenOptions tokens;
  std::string out_dir = "./datafiles";
  std::string file_mode = "0644";
  std::vector<std::uint64_t> project_ids;
  std::vector<std::string> environments;
  std::string on_update;
  std::string hook_timeout = "60s";
  std::string save_dir;
  std::size_t save_max_files = 10000;
  std::string poll_interval = "5m";
  std::string stale_retry_for = "5m";
  std::string max_age = "0";
  std::string max_body = "1MiB";
  std::size_t max_connections = 1024;
  std::string read_timeout = "10s";
  unsigned threads = 1;
  NetworkOptions network;
};

// The values of the options, checked.
struct ListenSettings {
  mode_t file_mode = 0644;
  std::chrono::milliseconds hook_timeout{};
  std::chrono::milliseconds poll_interval{};
  std::chrono::milliseconds stale_retry_for{};
  std::optional<std::chrono::seconds> max_age;
  std::uint64_t max_body = 0;
  std::chrono::milliseconds read_timeout{};
};

ListenSettings check_options(const ListenOptions& options) {
  ListenSettings settings;
  if (options.path.empty() || options.path[0] != '/' ||
      options.path.find_first_of("?# \t") != std::string::npos) {
    throw core::usage_error(fmt::format("--path: '{}' is not an absolute path", options.path),
                            "give a path such as /webhooks/optimizely");
  }
  settings.file_mode = file_mode_option("--file-mode", options.file_mode);
  for (const std::string& environment : options.environments) {
    if (environment.empty()) {
      throw core::usage_error("--environment: empty environment name");
    }
  }
  settings.hook_timeout = duration_option("--hook-timeout", options.hook_timeout);
  settings.poll_interval = duration_option("--poll-interval", options.poll_interval);
  settings.stale_retry_for = duration_option("--stale-retry-for", options.stale_retry_for);
  const std::chrono::milliseconds max_age = duration_option("--max-age", options.max_age);
  if (max_age.count() > 0) {
    settings.max_age = std::chrono::ceil<std::chrono::seconds>(max_age);
  }
  settings.max_body = size_option("--max-body", options.max_body);
  if (settings.max_body == 0) {
    throw core::usage_error("--max-body: must be at least 1 byte");
  }
  settings.read_timeout = duration_option("--read-timeout", options.read_timeout);
  if (settings.read_timeout.count() == 0) {
    throw core::usage_error("--read-timeout: must be above 0");
  }
  return settings;
}

std::shared_ptr<const core::SecretSet> load_listen_secrets(const ListenOptions& options) {
  auto secrets = std::make_shared<core::SecretSet>(load_secrets(options.secrets));
  if (secrets->empty()) {
    return nullptr;
  }
  return secrets;
}

core::ExitCode run_listen(const ListenOptions& options) {
  const ListenSettings settings = check_options(options);
  std::shared_ptr<const core::SecretSet> secrets = load_listen_secrets(options);
  if (!secrets && !options.insecure_skip_signature) {
    throw core::usage_error("no secret to check webhook signatures with",
                            std::string(k_no_secret_hint) +
                                " (or --insecure-skip-signature to accept unsigned webhooks)");
  }
  const net::ClientOptions client = client_options(options.network);

  io::FileDatafileStore store(options.out_dir, io::FileStoreOptions{settings.file_mode, {}});
  service::StoreRevisionLookup revisions(store);
  service::Metrics metrics;
  service::UpdatePolicy policy;
  policy.hook_command = options.on_update;
  policy.hook_timeout = settings.hook_timeout;
  service::StoreFetcher fetcher(
      store, [client] { return std::make_unique<net::HttpClient>(client); }, policy, metrics,
      load_tokens(options.tokens));
  service::UpdateWorkerOptions worker_options;
  worker_options.stale_retry_for = settings.stale_retry_for;
  service::UpdateWorker worker(fetcher, fetcher, worker_options);
  service::WorkerQueue queue(worker);

  service::WebhookOptions webhook;
  webhook.path = options.path;
  webhook.skip_signature = options.insecure_skip_signature;
  webhook.project_ids = options.project_ids;
  webhook.environments = options.environments;
  webhook.max_age = settings.max_age;
  webhook.allowed_hosts = options.network.allow_host;
  webhook.allow_http = options.network.allow_http;
  std::optional<io::Spool> spool;
  std::optional<service::SpoolDeliveryLog> delivery_log;
  if (!options.save_dir.empty()) {
    spool.emplace(options.save_dir, options.save_max_files);
    delivery_log.emplace(*spool);
  }

  service::WebhookContext context{revisions,
                                  queue,
                                  metrics,
                                  delivery_log ? &*delivery_log : nullptr,
                                  [&store] { return store.list(); },
                                  {}};
  service::WebhookHandler handler(webhook, context, secrets);
  if (options.insecure_skip_signature) {
    io::log(io::LogLevel::warning,
            "webhook signatures are not checked (--insecure-skip-signature): anyone who can "
            "reach this port can trigger downloads");
  }

  net::HttpServerConfig config;
  config.host = options.host;
  config.port = options.port;
  config.inherited_sockets = net::systemd_listen_sockets();
  config.max_body = settings.max_body;
  config.max_connections = options.max_connections;
  config.read_timeout = settings.read_timeout;
  config.threads = options.threads;
  config.on_reload = [&options, &handler, &fetcher] {
    try {
      fetcher.replace_tokens(load_tokens(options.tokens));
    } catch (const core::Error& error) {
      io::log(io::LogLevel::error, "auth tokens not reloaded; the previous ones stay",
              {{"error", error.what()}});
    }
    std::shared_ptr<const core::SecretSet> reloaded;
    try {
      reloaded = load_listen_secrets(options);
    } catch (const core::Error& error) {
      io::log(io::LogLevel::error, "secrets not reloaded; the previous ones stay",
              {{"error", error.what()}});
      return;
    }
    if (!reloaded && !options.insecure_skip_signature) {
      io::log(io::LogLevel::error, "secrets not reloaded: no secret left; the previous ones stay");
      return;
    }
    const std::size_t count = reloaded ? reloaded->size() : 0;
    handler.replace_secrets(std::move(reloaded));
    io::log(io::LogLevel::info, "secrets reloaded", {{"secrets", std::to_string(count)}});
  };
  net::HttpServer server(std::move(config), handler);
  // Four update threads: a slow CDN for one datafile does not hold up the others.
  worker.start(4, settings.poll_interval, [&fetcher] { return fetcher.poll_requests(); });
  server.run();
  // The update in progress finishes; the waiting ones are dropped (the sender retries them,
  // and the next start polls).
  if (const std::size_t dropped = worker.stop(); dropped > 0) {
    io::log(io::LogLevel::warning, "updates dropped at shutdown",
            {{"updates", std::to_string(dropped)}});
  }
  io::log(io::LogLevel::info, "stopped");
  return core::ExitCode::ok;
}

}  // namespace

Runner setup_listen(CLI::App& sub, const GlobalOptions& /*global*/) {
  auto options = std::make_shared<ListenOptions>();
  sub.add_option("--host", options->host, "address to listen on (IPv4 or IPv6)")
      ->type_name("ADDR")
      ->capture_default_str();
  sub.add_option("--port", options->port, "port to listen on (0: any free port)")
      ->type_name("N")
      ->check(whole_number(0, 65535))
      ->capture_default_str();
  sub.add_option("--path", options->path, "path the webhook is POSTed to")
      ->type_name("PATH")
      ->capture_default_str();
  add_secret_options(sub, options->secrets);
  sub.add_flag("--insecure-skip-signature", options->insecure_skip_signature,
               "accept webhooks without checking their signature");
  add_token_options(sub, options->tokens);
  sub.add_option("--out-dir", options->out_dir, "directory of the datafiles")
      ->type_name("DIR")
      ->capture_default_str();
  sub.add_option("--file-mode", options->file_mode, "permissions of the datafiles")
      ->type_name("MODE")
      ->capture_default_str();
  sub.add_option("--project-id", options->project_ids,
                 "only handle webhooks of this project (repeatable)")
      ->type_name("ID")
      ->check(whole_number(1, 9'223'372'036'854'775'807))
      ->allow_extra_args(false);
  sub.add_option("--environment", options->environments,
                 "only handle webhooks of this environment, any case (repeatable)")
      ->type_name("NAME")
      ->allow_extra_args(false);
  sub.add_option("--on-update", options->on_update,
                 "command run by /bin/sh -c after a datafile is updated")
      ->type_name("CMD");
  sub.add_option("--hook-timeout", options->hook_timeout, "time the hook may take")
      ->type_name("DUR")
      ->capture_default_str();
  sub.add_option("--save-dir", options->save_dir, "save every signed delivery in DIR")
      ->type_name("DIR");
  sub.add_option("--save-max-files", options->save_max_files,
                 "deliveries kept in --save-dir (oldest removed)")
      ->type_name("N")
      ->check(whole_number(1, 100'000'000))
      ->capture_default_str();
  sub.add_option("--poll-interval", options->poll_interval,
                 "also poll every stored datafile this often (0: never)")
      ->type_name("DUR")
      ->capture_default_str();
  sub.add_option("--stale-retry-for", options->stale_retry_for,
                 "how long to retry a CDN that still serves an older revision")
      ->type_name("DUR")
      ->capture_default_str();
  sub.add_option("--max-age", options->max_age,
                 "ignore webhooks whose timestamp is older than this (0: off)")
      ->type_name("DUR")
      ->capture_default_str();
  sub.add_option("--max-body", options->max_body, "largest request body accepted")
      ->type_name("SIZE")
      ->capture_default_str();
  sub.add_option("--max-connections", options->max_connections,
                 "connections served at once (more get a 503)")
      ->type_name("N")
      ->check(whole_number(1, 1'000'000))
      ->capture_default_str();
  sub.add_option("--read-timeout", options->read_timeout, "time a client has to send its request")
      ->type_name("DUR")
      ->capture_default_str();
  sub.add_option("--threads", options->threads, "threads serving HTTP")
      ->type_name("N")
      ->check(whole_number(1, 64))
      ->capture_default_str();
  add_network_options(sub, options->network, NetworkUse::downloads);
  sub.footer(
      "Receives Optimizely's signed project.datafile_updated webhooks, downloads the new "
      "datafile into --out-dir and runs --on-update. Also serves GET /healthz and GET /metrics. "
      "SIGHUP re-reads the secret files; SIGTERM stops after the requests in progress.");
  return [options] { return run_listen(*options); };
}

}  // namespace dfhook::app
