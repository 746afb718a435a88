#include "command.hpp"
#include "options_network.hpp"
#include "options_secrets.hpp"
#include "options_values.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/core/json.hpp"
#include "dfhook/core/problem.hpp"
#include "dfhook/core/replay_headers.hpp"
#include "dfhook/io/log.hpp"
#include "dfhook/net/url.hpp"
#include "dfhook/service/replay_job.hpp"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dfhook::app {

namespace {

using Clock = std::chrono::steady_clock;

struct ReplayOptions {
  std::string to;
  std::vector<std::string> inputs;
  SecretOptions secrets;
  std::size_t concurrency = 1;
  double rate = 0;
  std::vector<std::string> headers;
  bool dry_run = false;
  std::string format = "text";
  NetworkOptions network;
};

std::string_view signature_name(core::SignatureSource source) {
  switch (source) {
  case core::SignatureSource::fresh:
    return "fresh";
  case core::SignatureSource::saved:
    return "saved";
  case core::SignatureSource::argument:
    return "header";
  case core::SignatureSource::none:
    break;
  }
  return "none";
}

std::string_view outcome_name(net::ReplayOutcome outcome) {
  switch (outcome) {
  case net::ReplayOutcome::ok:
    return "ok";
  case net::ReplayOutcome::redirect:
    return "redirect";
  case net::ReplayOutcome::http_status:
    return "http-error";
  case net::ReplayOutcome::network:
    break;
  }
  return "network-error";
}

// "850us", "3.1ms", "1.25s": short enough for one line per delivery.
std::string format_time(std::chrono::microseconds time) {
  const auto us = time.count();
  if (us < 1000) {
    return fmt::format("{}us", us);
  }
  if (us < 1'000'000) {
    return fmt::format("{:.1f}ms", static_cast<double>(us) / 1e3);
  }
  return fmt::format("{:.2f}s", static_cast<double>(us) / 1e6);
}

std::string deliveries(std::size_t count) {
  return fmt::format("{} {}", count, count == 1 ? "delivery" : "deliveries");
}

std::string location(const service::ReplayDelivery& delivery) {
  return fmt::format("{}:{}:{}", delivery.input, delivery.start.line, delivery.start.column);
}

std::string delivery_name(const service::ReplayDelivery& delivery) {
  return delivery.id.empty() ? fmt::format("document {}", delivery.document)
                             : fmt::format("delivery {}", delivery.id);
}

// What went wrong with one delivery, in the words of an error message.
std::string failure_text(const net::ReplayResult& result, const std::string& url) {
  switch (result.outcome) {
  case net::ReplayOutcome::redirect:
    return result.location.empty()
               ? fmt::format("answered {} (a redirect, not followed)", result.status)
               : fmt::format("answered {} with a redirect to {}, not followed", result.status,
                             core::quote(result.location));
  case net::ReplayOutcome::http_status:
    return fmt::format("answered {}", result.status);
  case net::ReplayOutcome::network:
    return fmt::format("no answer from {}: {}", core::quote(url), result.error);
  case net::ReplayOutcome::ok:
    break;
  }
  return "ok";
}

std::string failure_hint(const net::ReplayResult& result) {
  switch (result.outcome) {
  case net::ReplayOutcome::redirect:
    return "redirects are never followed: give the final URL with --to";
  case net::ReplayOutcome::network:
    return result.unreachable ? "check that a receiver listens at the --to URL" : "";
  default:
    return "";
  }
}

// Writes whole lines to a stream; a progress bar on a terminal's stderr is cleared first and
// drawn again after, so lines and bar never mix.
class Output {
public:
  explicit Output(bool progress) : m_progress(progress) {}

  void out(const std::string& line) {
    clear_bar();
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
      m_write_failed = true;
    }
    if (m_progress) {
      std::fflush(stdout);
    }
    draw_bar(true);
  }

  void err(const std::string& text) {
    clear_bar();
    std::fflush(stdout);
    std::fputs(text.c_str(), stderr);
    draw_bar(true);
  }

  void error(const std::string& message, const std::string& hint = {}) {
    std::string text = fmt::format("dfhook: error: {}\n", message);
    if (!hint.empty()) {
      text += fmt::format("hint: {}\n", hint);
    }
    err(text);
  }

  void progress(std::size_t files_read, std::size_t files, std::size_t done, std::size_t failed) {
    m_files_read = files_read;
    m_files = files;
    m_done = done;
    m_failed = failed;
    draw_bar(false);
  }

  void finish() {
    clear_bar();
    m_progress = false;
    if (std::fflush(stdout) != 0) {
      m_write_failed = true;
    }
  }

  [[nodiscard]] bool write_failed() const { return m_write_failed; }

private:
  void clear_bar() {
    if (m_progress && m_drawn) {
      std::fputs("\r\033[K", stderr);
      m_drawn = false;
    }
  }

  void draw_bar(bool force) {
    if (!m_progress || m_files == 0) {
      return;
    }
    const Clock::time_point now = Clock::now();
    if (!force && m_drawn && now - m_last_draw < std::chrono::milliseconds(100)) {
      return;
    }
    constexpr std::size_t k_width = 30;
    const std::size_t filled = m_files_read * k_width / m_files;
    const std::string bar =
        fmt::format("\r\033[K[{}{}] {}/{} files, {} sent, {} failed", std::string(filled, '#'),
                    std::string(k_width - filled, ' '), m_files_read, m_files, m_done, m_failed);
    std::fputs(bar.c_str(), stderr);
    std::fflush(stderr);
    m_drawn = true;
    m_last_draw = now;
  }

  bool m_progress;
  bool m_drawn = false;
  bool m_write_failed = false;
  Clock::time_point m_last_draw;
  std::size_t m_files_read = 0;
  std::size_t m_files = 0;
  std::size_t m_done = 0;
  std::size_t m_failed = 0;
};

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(JsonWriter& writer, std::string_view text) {
  const std::string valid = core::to_valid_utf8(text);
  writer.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
}

void write_key(JsonWriter& writer, std::string_view key) {
  writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_delivery_fields(JsonWriter& writer, const service::ReplayDelivery& delivery) {
  write_key(writer, "type");
  write_string(writer, "delivery");
  write_key(writer, "input");
  write_string(writer, delivery.input);
  write_key(writer, "line");
  writer.Uint64(delivery.start.line);
  write_key(writer, "column");
  writer.Uint64(delivery.start.column);
  write_key(writer, "document");
  writer.Uint64(delivery.document);
  write_key(writer, "id");
  if (delivery.id.empty()) {
    writer.Null();
  } else {
    write_string(writer, delivery.id);
  }
  write_key(writer, "signature");
  write_string(writer, signature_name(delivery.signature));
  write_key(writer, "bytes");
  writer.Uint64(delivery.body_size);
}

std::string json_line(const std::function<void(JsonWriter&)>& fill) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  fill(writer);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::vector<core::HeaderArgument> parse_headers(const std::vector<std::string>& arguments) {
  std::vector<core::HeaderArgument> headers;
  for (const std::string& text : arguments) {
    std::string error;
    std::optional<core::HeaderArgument> header = core::parse_header_argument(text, error);
    if (!header) {
      throw core::usage_error(fmt::format("--header {}: {}", core::quote(text), error),
                              "give 'Name: value', or 'Name:' to remove a header");
    }
    headers.push_back(std::move(*header));
  }
  return headers;
}

std::string check_url(const std::string& to) {
  const net::UrlParse parsed = net::parse_url(to);
  if (!parsed.url) {
    throw core::usage_error(
        fmt::format("--to: {} is not a URL: {}", core::quote(net::redact_url(to)), parsed.error),
        "give the receiver's URL, e.g. http://127.0.0.1:8080/webhooks/optimizely");
  }
  if (parsed.url->scheme != "http" && parsed.url->scheme != "https") {
    throw core::usage_error(
        fmt::format("--to: only http and https URLs can be replayed to, not '{}'",
                    parsed.url->scheme),
        "give the receiver's URL, e.g. http://127.0.0.1:8080/webhooks/optimizely");
  }
  return parsed.url->text;
}

core::ExitCode run_replay(const ReplayOptions& options, const GlobalOptions& global) {
  if (options.format != "text" && options.format != "json") {
    throw core::usage_error(
        fmt::format("--format: expected text or json, not {}", core::quote(options.format)));
  }
  if (options.rate < 0) {
    throw core::usage_error("--rate: must be 0 (no limit) or above");
  }
  const std::string url = check_url(options.to);
  const std::string shown_url = net::redact_url(url);
  const net::ClientOptions client = client_options(options.network);
  const core::SecretSet secrets = load_secrets(options.secrets);

  service::ReplayJobOptions job_options;
  job_options.inputs = options.inputs;
  if (!secrets.empty()) {
    job_options.secret = secrets.first().value;
  }
  job_options.headers = parse_headers(options.headers);
  job_options.payload_user_agent = std::string("dfhook-replay/") + DFHOOK_VERSION;
  job_options.dry_run = options.dry_run;

  std::optional<service::SenderTransport> transport;
  if (!options.dry_run) {
    net::ReplaySenderOptions sender;
    sender.url = url;
    sender.concurrency = options.concurrency;
    sender.rate = options.rate;
    sender.retries = client.retries;
    sender.timeout = client.timeout;
    sender.connect_timeout = client.connect_timeout;
    sender.cacert = client.cacert;
    sender.connect_to = client.connect_to;
    transport.emplace(std::move(sender));
  }

  const bool json = options.format == "json";
  const bool quiet = global.quiet;
  Output output(!quiet && ::isatty(STDERR_FILENO) == 1);
  std::size_t files = 0;
  std::size_t done = 0;
  std::size_t failed = 0;

  service::ReplayEvents events;
  events.on_expanded = [&](std::size_t count) { files = count; };
  events.on_problem = [&](const service::ReplayInputProblem& problem) {
    if (problem.document) {
      output.error(fmt::format("{}:{}:{}: document {}: {}", problem.input, problem.start.line,
                               problem.start.column, *problem.document, problem.reason),
                   "this document is not sent");
    } else {
      output.error(problem.reason);
    }
  };
  events.on_prepared = [&](const service::ReplayDelivery& delivery) {
    if (delivery.signature == core::SignatureSource::none) {
      io::log(io::LogLevel::warning, "sent unsigned: no secret given and no X-Hub-Signature saved",
              {{"input", location(delivery)}, {"id", delivery.id}});
    }
    if (!options.dry_run || quiet) {
      return;
    }
    if (json) {
      output.out(json_line([&](JsonWriter& writer) {
        write_delivery_fields(writer, delivery);
        write_key(writer, "dry_run");
        writer.Bool(true);
        write_key(writer, "url");
        write_string(writer, shown_url);
        write_key(writer, "headers");
        writer.StartArray();
        for (const auto& [name, value] : delivery.request.headers) {
          writer.StartArray();
          write_string(writer, name);
          write_string(writer, value);
          writer.EndArray();
        }
        writer.EndArray();
      }));
    } else {
      std::string names;
      for (const auto& header : delivery.request.headers) {
        names += names.empty() ? header.first : ", " + header.first;
      }
      output.out(fmt::format("{}: {}: would send {} bytes, signature {}, headers: {}\n",
                             location(delivery), delivery_name(delivery), delivery.body_size,
                             signature_name(delivery.signature),
                             names.empty() ? std::string("none") : names));
    }
  };
  events.on_result = [&](const service::ReplayDelivery& delivery, const net::ReplayResult& result) {
    ++done;
    if (!result.ok()) {
      ++failed;
      output.error(fmt::format("{}: {}: {}", location(delivery), delivery_name(delivery),
                               failure_text(result, shown_url)),
                   failure_hint(result));
    }
    if (!quiet) {
      if (json) {
        output.out(json_line([&](JsonWriter& writer) {
          write_delivery_fields(writer, delivery);
          write_key(writer, "outcome");
          write_string(writer, outcome_name(result.outcome));
          write_key(writer, "status");
          if (result.status == 0) {
            writer.Null();
          } else {
            writer.Int64(result.status);
          }
          write_key(writer, "attempts");
          writer.Int(result.attempts);
          write_key(writer, "time_ms");
          writer.Double(static_cast<double>(result.duration.count()) / 1e3);
          if (result.outcome == net::ReplayOutcome::redirect) {
            write_key(writer, "location");
            write_string(writer, result.location);
          }
          if (result.outcome == net::ReplayOutcome::network) {
            write_key(writer, "error");
            write_string(writer, result.error);
          }
        }));
      } else {
        const std::string status =
            result.status == 0 ? std::string("error") : std::to_string(result.status);
        std::string detail;
        if (result.outcome == net::ReplayOutcome::redirect) {
          detail = result.location.empty()
                       ? std::string(" redirect not followed")
                       : fmt::format(" redirect to {} not followed", core::quote(result.location));
        } else if (result.outcome == net::ReplayOutcome::network) {
          detail = " " + result.error;
        }
        if (result.attempts > 1) {
          detail += fmt::format(" ({} attempts)", result.attempts);
        }
        output.out(fmt::format("{}: {}: {} {}{}\n", location(delivery), delivery_name(delivery),
                               status, format_time(result.duration), detail));
      }
    }
    output.progress(delivery.input_index + 1, files, done, failed);
  };

  service::LocalReplayFiles local_files;
  service::ReplayJob job(std::move(job_options), local_files, transport ? &*transport : nullptr);
  const service::ReplaySummary summary = job.run(events);

  if (summary.stopped) {
    output.error(fmt::format("stopped: {} cannot be reached; later deliveries were not sent",
                             core::quote(shown_url)),
                 "start the receiver, or check --to and --connect-to, then replay again");
  }
  if (!quiet && (summary.deliveries > 0 || summary.problems == 0)) {
    const double seconds = static_cast<double>(summary.elapsed.count()) / 1e6;
    if (json) {
      output.out(json_line([&](JsonWriter& writer) {
        write_key(writer, "type");
        write_string(writer, "summary");
        write_key(writer, "url");
        write_string(writer, shown_url);
        write_key(writer, "dry_run");
        writer.Bool(options.dry_run);
        write_key(writer, "deliveries");
        writer.Uint64(summary.deliveries);
        write_key(writer, "ok");
        writer.Uint64(summary.ok);
        write_key(writer, "failed");
        writer.Uint64(summary.failed());
        write_key(writer, "redirects");
        writer.Uint64(summary.redirects);
        write_key(writer, "http_errors");
        writer.Uint64(summary.http_errors);
        write_key(writer, "network_errors");
        writer.Uint64(summary.network_errors);
        write_key(writer, "not_sent");
        writer.Uint64(summary.deliveries - summary.ok - summary.failed());
        write_key(writer, "unreadable");
        writer.Uint64(summary.problems);
        write_key(writer, "unsigned");
        writer.Uint64(summary.unsigned_sent);
        write_key(writer, "stopped");
        writer.Bool(summary.stopped);
        write_key(writer, "seconds");
        writer.Double(seconds);
      }));
    } else if (options.dry_run) {
      output.out(fmt::format(
          "dry run: {} would be sent to {}{}\n", deliveries(summary.deliveries), shown_url,
          summary.problems > 0 ? fmt::format(", {} unreadable", summary.problems) : std::string()));
    } else {
      std::string line =
          fmt::format("replayed {} to {} in {}: {} ok, {} failed", deliveries(summary.deliveries),
                      shown_url, format_time(summary.elapsed), summary.ok, summary.failed());
      if (summary.failed() > 0) {
        line += fmt::format(" ({} redirects, {} other statuses, {} without answer)",
                            summary.redirects, summary.http_errors, summary.network_errors);
      }
      const std::size_t not_sent = summary.deliveries - summary.ok - summary.failed();
      if (not_sent > 0) {
        line += fmt::format(", {} not sent", not_sent);
      }
      if (summary.problems > 0) {
        line += fmt::format(", {} unreadable", summary.problems);
      }
      if (seconds > 0 && summary.deliveries > 0) {
        line += fmt::format(" ({:.0f}/s)", static_cast<double>(summary.deliveries) / seconds);
      }
      output.out(line + "\n");
    }
  }
  output.finish();
  if (output.write_failed()) {
    throw core::failure("cannot write to standard output");
  }
  return summary.exit_code(options.dry_run);
}

}  // namespace

Runner setup_replay(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<ReplayOptions>();
  sub.add_option("--to", options->to, "the receiver's URL; every delivery is POSTed there")
      ->option_text("URL")
      ->required();
  sub.add_option("inputs", options->inputs,
                 "envelopes or payloads: files, directories (their *.json files in name "
                 "order) or '-' for standard input (default)")
      ->type_name("FILE|DIR|-");
  add_secret_options(sub, options->secrets);
  sub.add_option("--concurrency", options->concurrency, "deliveries in progress at once")
      ->option_text("N")
      ->check(whole_number(1, 1024))
      ->capture_default_str();
  sub.add_option("--rate", options->rate, "requests started per second (0: no limit)")
      ->option_text("N")
      ->check(whole_number(0, 1'000'000))
      ->capture_default_str();
  sub.add_option("--header", options->headers,
                 "add or replace a header, 'Name: value'; 'Name:' removes it (repeatable)")
      ->option_text("'K: V'")
      ->allow_extra_args(false);
  sub.add_flag("--dry-run", options->dry_run, "print what would be sent, send nothing");
  sub.add_option("--format", options->format, "output: one line per delivery, text or json")
      ->option_text("text|json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  add_network_options(sub, options->network, NetworkUse::sends);
  sub.footer(
      "Re-sends saved deliveries (listen --save-dir envelopes, or bare payloads) as POSTs, the "
      "body byte for byte. With a secret each is signed afresh; without, the saved "
      "X-Hub-Signature is sent. Redirects are never followed. Exit 0 only if every delivery "
      "got a 2xx.");
  return [options, &global] { return run_replay(*options, global); };
}

}  // namespace dfhook::app
