#include "options.hpp"

#include "zapd/auth/jwt.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "zapd/core/clock.hpp"

namespace zapd::app {

std::string db_path(const config::settings& s) { return (std::filesystem::path(s.data_dir) / "zapd.db").string(); }

store::database::options db_options(const config::settings& s, bool migrate) {
  store::database::options o;
  o.path = db_path(s);
  o.synchronous = s.store_synchronous;
  o.readers = static_cast<std::size_t>(s.store_readers);
  o.writer.batch_max = static_cast<std::size_t>(s.store_batch_max);
  o.writer.max_pending = static_cast<std::size_t>(s.store_max_pending);
  o.migrate = migrate;
  return o;
}

auth::password_params hash_params(const config::settings& s) {
  auth::password_params p;
  p.opslimit = static_cast<std::uint64_t>(s.auth_hash_opslimit);
  p.memlimit_bytes = static_cast<std::size_t>(s.auth_hash_memlimit_kib) * 1024;
  return p;
}

auth::options auth_options(const config::settings& s, const std::string& data_dir_secret) {
  auth::options o;
  o.session_key = auth::derive_session_key(s.auth_secret.empty() ? data_dir_secret : s.auth_secret);
  o.session_ttl_seconds = s.auth_session_ttl_seconds;
  o.default_plan = s.auth_default_plan;
  o.signup_open = s.auth_signup == "open";
  o.hashing = hash_params(s);
  o.hash_threads = s.auth_hash_threads > 0 ? static_cast<std::size_t>(s.auth_hash_threads)
                                           : std::min<std::size_t>(2, std::max(1u, std::thread::hardware_concurrency()));
  o.hash_queue = static_cast<std::size_t>(s.auth_hash_queue);
  o.signin_account_attempts = s.auth_signin_account_attempts;
  o.signin_ip_attempts = s.auth_signin_ip_attempts;
  o.signin_window = std::chrono::seconds(s.auth_signin_window_seconds);
  return o;
}

queue::sqlite_queue::options queue_options(const config::settings& s, wakeup& ready) {
  // Live leases per lane: the steps executing (the concurrency), those claimed ahead of a free
  // slot, and the results of finished ones waiting for their commit (worker::pool).
  constexpr std::size_t leases_per_slot = worker::pool::leases_per_slot;
  return {leases_per_slot * static_cast<std::size_t>(s.queue_paid_concurrency),
          leases_per_slot * static_cast<std::size_t>(s.queue_free_concurrency),
          s.outbox_direct == "on" && s.queue_backend == "embedded", &ready};
}

outbox::relay::options relay_options(const config::settings& s) {
  outbox::relay::options o{static_cast<std::size_t>(s.outbox_batch), std::chrono::milliseconds(s.outbox_poll_ms)};
  // The fleet's recorder settles each published row when it records the step's attempt.
  if (s.queue_backend == "kafka") o.republish_after = std::chrono::milliseconds(s.kafka_republish_after_ms);
  return o;
}

outbound::driver::options outbound_options(const config::settings& s) {
  outbound::driver::options o;
  o.max_idle_connections = std::max(o.max_idle_connections, static_cast<long>(s.queue_paid_concurrency + s.queue_free_concurrency));
  return o;
}

std::size_t kept_easy_handles(const config::settings& s) {
  return static_cast<std::size_t>(outbound_options(s).max_idle_connections);
}

worker::pool::options worker_options(const config::settings& s) {
  worker::pool::options wo;
  wo.paid_slots = static_cast<std::size_t>(s.queue_paid_concurrency);
  wo.free_slots = static_cast<std::size_t>(s.queue_free_concurrency);
  wo.claim_batch = static_cast<std::size_t>(s.worker_claim_batch);
  wo.lease = std::chrono::milliseconds(s.queue_lease_ms);
  wo.poll = std::chrono::milliseconds(s.outbox_poll_ms);
  wo.grace = std::chrono::milliseconds(s.server_shutdown_grace_ms);
  wo.retry.base = std::chrono::milliseconds(s.worker_retry_base_ms);
  wo.retry.max_attempts = static_cast<int>(s.worker_max_attempts);
  wo.name = worker_name();
  return wo;
}

http::hook_routes_deps::plan_rates plan_rates(std::int64_t zap_rate, std::int64_t user_rate, std::int64_t burst_s) {
  auto rule = [burst_s](std::int64_t rate) {
    return hooks::rate_limiter::rule{static_cast<double>(rate), static_cast<double>(std::max<std::int64_t>(1, rate * burst_s))};
  };
  return {rule(zap_rate), rule(user_rate)};
}

http::server::options server_options(const config::settings& s) {
  http::server::options so;
  so.host = s.listen_host;
  so.port = s.listen_port;
  so.body_limit = static_cast<std::size_t>(s.server_body_limit);
  so.read_timeout = std::chrono::milliseconds(s.server_read_timeout_ms);
  return so;
}

std::size_t http_threads(const config::settings& s) {
  return s.server_threads > 0 ? static_cast<std::size_t>(s.server_threads) : std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace zapd::app

namespace zapd::app {

std::string worker_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return fmt::format("{}:{}", host[0] ? host : "unknown", getpid());
}

void add_executors(actions::executors& ex, const config::settings& s, outbound::driver& d, outbound::http_client& http) {
  // Executing steps: outbound I/O on the driver's thread.
  ex.add("http", actions::make_http_executor(http, {fmt::format("zapd/{}", ZAPD_VERSION), static_cast<std::size_t>(s.actions_http_max_body)}));
  ex.add("email", actions::make_email_executor(d, {s.email_smtp_url, s.email_username, s.email_password, s.email_from,
                                                   std::chrono::milliseconds(s.email_timeout_ms)}));
  // Built-in steps: they run on the calling thread and answer at once.
  ex.add("filter", actions::make_filter_executor());
  ex.add("formatter", actions::make_formatter_executor());
  ex.add("delay", actions::make_delay_executor(real_clock(), std::chrono::days(s.worker_max_delay_days)));
}

}  // namespace zapd::app
