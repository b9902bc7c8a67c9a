#pragma once

// Config -> each module's options: the only place that maps `config::settings` keys onto
// module option structs (serve and the CLI commands share it).

#include <string>

#include "zapd/actions/executor.hpp"
#include "zapd/auth/options.hpp"
#include "zapd/auth/password.hpp"
#include "zapd/config/config.hpp"
#include "zapd/http/hook_routes.hpp"
#include "zapd/http/server.hpp"
#include "zapd/outbound/driver.hpp"
#include "zapd/outbound/http_client.hpp"
#include "zapd/outbox/relay.hpp"
#include "zapd/queue/sqlite_queue.hpp"
#include "zapd/store/database.hpp"
#include "zapd/worker/pool.hpp"

namespace zapd::app {

std::string db_path(const config::settings& s);
store::database::options db_options(const config::settings& s, bool migrate);
auth::password_params hash_params(const config::settings& s);
auth::options auth_options(const config::settings& s, const std::string& data_dir_secret);
queue::sqlite_queue::options queue_options(const config::settings& s, wakeup& ready);
outbox::relay::options relay_options(const config::settings& s);
worker::pool::options worker_options(const config::settings& s);
/// The outbound driver of a process whose steps run `queue.*_concurrency` at most at once:
/// it keeps up to that many connections (one per step that can be in flight), not fewer.
outbound::driver::options outbound_options(const config::settings& s);
/// Easy handles the HTTP client keeps for reuse: as many as connections (one per step that
/// can be in flight).
std::size_t kept_easy_handles(const config::settings& s);
http::hook_routes_deps::plan_rates plan_rates(std::int64_t zap_rate, std::int64_t user_rate, std::int64_t burst_s);
/// Without `trusted_proxy` (services sets it from the parsed `server.trusted_proxies`).
http::server::options server_options(const config::settings& s);
/// `server.threads`, 0 = one per core.
std::size_t http_threads(const config::settings& s);
/// host:pid, recorded on each step this process ran (run_steps.worker).
std::string worker_name();
/// The step executors (http, email, filter, formatter, delay), for `serve` and `zapd worker`.
void add_executors(actions::executors& ex, const config::settings& s, outbound::driver& d, outbound::http_client& http);

}  // namespace zapd::app
