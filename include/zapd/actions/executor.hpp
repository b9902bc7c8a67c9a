#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "zapd/core/clock.hpp"
#include "zapd/templates/template.hpp"

namespace zapd::outbound {
class http_client;
class driver;
}

namespace zapd::actions {

/// One attempt of one step, its config already rendered.
struct step_request {
  std::string run_id;
  int step_index = 1;            // 1-based, as in {{steps.N}}
  int attempt = 1;               // 1 on the first delivery
  std::string zap_name;
  nlohmann::json config;         // rendered (secrets in clear: never record this one)
  std::string idempotency_key;   // "{runId}:{stepIndex}": stable across attempts
};

enum class verdict {
  succeeded,  // record the output, go on with the next step
  retry,      // failed for now (network, timeout, 408, 429, 5xx): try again later
  failed,     // failed for good (4xx, policy refusal, bad config): no retry
  filtered,   // a filter's conditions did not hold: record the output, end the run `filtered`
};

struct step_result {
  verdict v = verdict::failed;
  nlohmann::json output;                              // recorded on the step (null when none)
  std::string error;                                  // empty on success
  std::optional<std::chrono::milliseconds> retry_after;  // the server asked for this delay
  std::chrono::milliseconds duration{};
  /// Succeeded, and the next step is due then, not now (a delay step): Unix ms.
  std::optional<std::int64_t> resume_at_ms;
};

/// How one action runs. Implementations never touch the database (the worker records).
///
/// Threading: `execute` may be called from any thread, many at once; `done` is called
/// exactly once, from any thread (e.g. the outbound driver's), and must not block.
class executor {
 public:
  virtual ~executor();
  /// How each config field is rendered (escaping per destination). Default: text.
  virtual templates::options render_options(std::string_view field, const nlohmann::json& raw_config) const;
  using done_fn = std::function<void(step_result)>;
  virtual void execute(step_request req, done_fn done) = 0;
};

/// Catalog id -> executor (aliases resolved by the catalog first).
class executors {
 public:
  void add(std::string id, std::unique_ptr<executor> e);
  executor* find(const std::string& id) const;

 private:
  std::map<std::string, std::unique_ptr<executor>> map_;
};

/// Options of the `http` action's executor.
struct http_options {
  std::string user_agent = "zapd";
  std::size_t max_body = 256 * 1024;  // response bytes recorded
};

/// The `http` action: method, url, headers, body, timeoutMs, expectedStatus, followRedirects,
/// signingSecret (optional Standard Webhooks signature). Sends `Idempotency-Key` and
/// `User-Agent`. Output: {status, headers (selected), body (JSON when it is JSON), truncated,
/// durationMs}.
std::unique_ptr<executor> make_http_executor(outbound::http_client& client, http_options o);

/// Options of the `email` action's executor ([email] in the config).
struct email_options {
  std::string smtp_url;  // smtp://host[:port] (STARTTLS when offered) or smtps://; empty: steps fail
  std::string username;  // empty: no AUTH
  std::string password;
  std::string from;      // sender when the action gives none
  std::chrono::milliseconds timeout{30'000};
};

/// The `email` action: to (or `email`), cc, bcc, subject (default: the zap's name), body,
/// html (multipart/alternative), from, replyTo. One SMTP delivery per attempt over libcurl on
/// the outbound driver. Message-ID `<{runId}.{step}@zapd>` is stable across attempts.
/// Retry on connection errors, timeouts and 4xx replies; fail on 5xx replies, AUTH refusals,
/// addresses that render invalid and a missing smtp_url. Output: {accepted, reply, messageId}.
std::unique_ptr<executor> make_email_executor(outbound::driver& d, email_options o);

// Built-in steps that run inside the worker (no I/O, they answer at once on the calling
// thread). Their configs are rendered with `keep_type` where a value's JSON type matters.

/// The `filter` step: `match` (all|any) over `conditions` rows {left, op, right}. Conditions
/// that hold: succeeded, the run goes on. Otherwise `filtered`: the run ends `filtered`. The
/// output says, per row, the values compared and the result: {passed, match, conditions:[...]}.
/// Ops and their rules: src/actions/README.md. `matches` uses RE2 (linear time).
std::unique_ptr<executor> make_filter_executor();

/// The `formatter` step: `fields` (name -> template). The output is that object; a field whose
/// template is a single placeholder keeps the value's JSON type.
std::unique_ptr<executor> make_formatter_executor();

/// The `delay` step: `for` (a duration, `parse_duration`) or `until` (a template rendering an
/// RFC 3339 time). Succeeds at once with `resume_at_ms` = when the next step is due; a time in
/// the past continues at once; beyond `max_delay` (worker.max_delay_days) it fails.
/// Output: {resumeAt, delayMs}.
std::unique_ptr<executor> make_delay_executor(const clock& clk, std::chrono::milliseconds max_delay);

/// Whether `status` matches an expectedStatus spec like "2xx", "200", "200,201,3xx".
bool status_matches(long status, std::string_view spec);

/// Seconds or an HTTP date in a Retry-After header -> a delay (capped at 24 h).
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, std::int64_t now_ms);

}  // namespace zapd::actions
