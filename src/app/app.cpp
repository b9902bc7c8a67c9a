#include "zapd/app/app.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "zapd/auth/accounts.hpp"
#include "zapd/auth/hash_pool.hpp"
#include "zapd/auth/jwt.hpp"
#include "zapd/auth/options.hpp"
#include "zapd/core/files.hpp"
#include "zapd/core/json.hpp"
#include "zapd/core/log.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/http/auth_routes.hpp"
#include "zapd/http/health_routes.hpp"
#include "zapd/http/hook_routes.hpp"
#include "zapd/http/metrics_routes.hpp"
#include "zapd/http/run_routes.hpp"
#include "zapd/http/ui_routes.hpp"
#include "zapd/http/zap_routes.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/http/server.hpp"
#include "zapd/hooks/ingest.hpp"
#include "zapd/hooks/rate_limit.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/actions/executor.hpp"
#include "zapd/outbound/http_client.hpp"
#include "zapd/outbound/policy.hpp"
#include "zapd/outbox/relay.hpp"
#include "zapd/runs/runs.hpp"
#include "zapd/worker/pool.hpp"
#include "zapd/queue/sqlite_queue.hpp"
#include "zapd/store/database.hpp"
#include "zapd/store/migrations.hpp"

namespace zapd::app {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

std::string db_path(const config::settings& s) { return (fs::path(s.data_dir) / "zapd.db").string(); }

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

// Opens the store for a CLI command (migrating first); logs and returns null on failure.
std::unique_ptr<store::database> open_for_cli(const config::settings& s) {
  auto dir = ensure_writable_dir(s.data_dir);
  if (!dir) {
    log::error("zapd.config_error", {{"error", dir.err().message}});
    return nullptr;
  }
  auto db = store::database::open(db_options(s, true));
  if (!db) {
    log::error("zapd.store_error", {{"error", db.err().message}, {"path", db_path(s)}});
    return nullptr;
  }
  return std::move(*db);
}

http::hook_routes_deps::plan_rates plan_rates(std::int64_t zap_rate, std::int64_t user_rate, std::int64_t burst_s) {
  auto rule = [burst_s](std::int64_t rate) {
    return hooks::rate_limiter::rule{static_cast<double>(rate), static_cast<double>(std::max<std::int64_t>(1, rate * burst_s))};
  };
  return {rule(zap_rate), rule(user_rate)};
}

// The writer's figures at scrape time.
std::uint64_t add_store_metrics(metrics::registry& m, store::writer& w) {
  auto& backlog = m.add_gauge("zapd_store_writer_backlog", "Write requests waiting for the writer");
  auto& commits = m.add_gauge("zapd_store_commits", "Transactions committed by the writer since start");
  auto& requests = m.add_gauge("zapd_store_write_requests", "Write requests completed since start (/ commits = group-commit size)");
  return m.add_collector([&w, &backlog, &commits, &requests] {
    backlog.set(static_cast<std::int64_t>(w.pending()));
    commits.set(static_cast<std::int64_t>(w.commits()));
    requests.set(static_cast<std::int64_t>(w.requests()));
  });
}

// Background housekeeping on the writer, a small batch per minute each: expired webhook
// dedup keys, and runs past their retention.
asio::awaitable<void> housekeeping(asio::io_context& ioc, store::database& db, queue::store_publisher* jobs, std::int64_t dedup_window_ms,
                                   std::int64_t retention_ms, const std::atomic<bool>& stopping) {
  asio::steady_timer t(ioc);
  while (!stopping) {
    t.expires_after(std::chrono::seconds(60));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) break;
    const std::int64_t now = real_clock().now_ms();
    auto dedup = [before = now - dedup_window_ms](store::connection& c) { return hooks::prune_dedup(c, before, 1000); };
    (void)db.writes().submit_for<std::int64_t>(std::move(dedup), [](result<std::int64_t>) {});
    auto old_runs = [jobs, before = now - retention_ms](store::connection& c) { return runs::prune(c, jobs, before, 500); };
    (void)db.writes().submit_for<std::int64_t>(std::move(old_runs), [](result<std::int64_t> n) {
      if (!n) {
        log::warn("runs.prune_failed", {{"error", n.err().message}});
        return;
      }
      if (n.value() > 0) log::info("runs.pruned", {{"runs", n.value()}});
    });
  }
}

// Waits for the server's connections to end after stop(), up to the grace period.
asio::awaitable<void> drain(asio::io_context& ioc, http::server& srv, std::chrono::milliseconds grace) {
  asio::steady_timer t(ioc);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (srv.active() > 0 && std::chrono::steady_clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(asio::use_awaitable);
  }
  if (srv.active() > 0) log::warn("zapd.drain_timeout", {{"open_connections", srv.active()}});
  ioc.stop();
}

}  // namespace

int serve(const config::loaded& cfg) {
  const auto& s = cfg.values;
  auto dir = ensure_writable_dir(s.data_dir);
  if (!dir) {
    log::error("zapd.config_error", {{"error", dir.err().message}});
    return k_exit_usage;
  }
  // One serving process per data dir: the embedded queue's recovery relies on it.
  auto dir_lock = lock_file((fs::path(s.data_dir) / "zapd.lock").string());
  if (!dir_lock) {
    log::error("zapd.data_dir_locked", {{"error", dir_lock.err().message}});
    return k_exit_usage;
  }
  auto secret = load_or_create_secret((fs::path(s.data_dir) / "secret.key").string());
  if (!secret) {
    log::error("zapd.secret_error", {{"error", secret.err().message}});
    return k_exit_usage;
  }
  auto db = store::database::open(db_options(s, true));
  if (!db) {
    log::error("zapd.store_error", {{"error", db.err().message}, {"path", db_path(s)}});
    return k_exit_failure;
  }

  const auth::options auth_opts = auth_options(s, *secret);
  auth::hash_pool hashes(auth_opts.hash_threads, auth_opts.hash_queue);
  http::auth_api accounts(**db, hashes, auth_opts, real_clock());

  auto box = secrets::box::load_or_create((fs::path(s.data_dir) / "secrets.key").string());
  if (!box) {
    log::error("zapd.secret_error", {{"error", box.err().message}});
    return k_exit_usage;
  }
  http::zap_routes_deps zap_deps{**db, actions::catalog::builtin(), *box, accounts.authenticate(), s.server_public_url,
                                       zaps::limits{static_cast<std::size_t>(s.zaps_max_actions),
                                                    static_cast<std::size_t>(s.zaps_max_bytes)}};

  // The spine: runs recorded by hooks -> outbox -> relay -> the embedded queue.
  metrics::registry registry;
  const std::uint64_t store_collector = add_store_metrics(registry, (*db)->writes());
  queue::sqlite_queue jobs(**db, real_clock(), registry,
                           {static_cast<std::size_t>(s.queue_paid_concurrency), static_cast<std::size_t>(s.queue_free_concurrency)});
  // The hand-overs, created before the components: whoever commits outbox rows rings
  // `outbox_ready` (the relay listens); the relay rings `jobs_ready` (the workers listen).
  wakeup outbox_ready, jobs_ready;
  outbox::relay relay(**db, jobs, registry, outbox_ready, jobs_ready,
                      {static_cast<std::size_t>(s.outbox_batch), std::chrono::milliseconds(s.outbox_poll_ms)});

  // Executing steps: outbound I/O on the driver's thread, the worker pool claiming per lane.
  auto allow = outbound::policy::parse(s.actions_http_allow);
  if (!allow) {
    log::error("zapd.config_error", {{"error", "actions.http.allow: " + allow.err().message}});
    return k_exit_usage;
  }
  // Reverse proxies whose X-Forwarded-For names the client (checked before anything starts).
  std::function<bool(std::string_view)> trusted_proxy;
  if (!s.server_trusted_proxies.empty()) {
    std::vector<outbound::cidr> proxies;
    for (auto item : split(s.server_trusted_proxies, ',')) {
      if (item.empty()) continue;
      auto block = outbound::cidr::parse(item);
      if (!block) {
        log::error("zapd.config_error", {{"error", fmt::format("server.trusted_proxies: '{}': {}", item, block.err().message)}});
        return k_exit_usage;
      }
      proxies.push_back(*block);
    }
    trusted_proxy = [proxies = std::move(proxies)](std::string_view ip) {
      auto a = outbound::ip_address::parse(ip);
      if (!a) return false;
      auto plain = a->unmapped();
      return std::any_of(proxies.begin(), proxies.end(), [&](const outbound::cidr& c) { return c.contains(plain); });
    };
  }
  outbound::driver outbound_io;
  outbound::http_client http_out(outbound_io, std::move(*allow));
  actions::executors executors;
  executors.add("http", actions::make_http_executor(http_out, {fmt::format("zapd/{}", ZAPD_VERSION),
                                                               static_cast<std::size_t>(s.actions_http_max_body)}));
  std::string smtp_password = s.email_password;
  if (!s.email_password_file.empty()) {
    std::ifstream in(s.email_password_file, std::ios::binary);
    if (!in) {
      log::error("zapd.config_error", {{"error", "email.password_file: cannot read " + s.email_password_file}});
      return k_exit_usage;
    }
    std::getline(in, smtp_password);
    if (!smtp_password.empty() && smtp_password.back() == '\r') smtp_password.pop_back();
  }
  executors.add("email", actions::make_email_executor(outbound_io, {s.email_smtp_url, s.email_username, smtp_password,
                                                                    s.email_from, std::chrono::milliseconds(s.email_timeout_ms)}));
  if (s.email_smtp_url.empty()) log::warn("email.unconfigured", {{"hint", "set email.smtp_url (env ZAPD_EMAIL_SMTP_URL): email steps fail until then"}});
  worker::pool::options wo;
  wo.paid_slots = static_cast<std::size_t>(s.queue_paid_concurrency);
  wo.free_slots = static_cast<std::size_t>(s.queue_free_concurrency);
  wo.claim_batch = static_cast<std::size_t>(s.worker_claim_batch);
  wo.lease = std::chrono::milliseconds(s.queue_lease_ms);
  wo.poll = std::chrono::milliseconds(s.outbox_poll_ms);
  wo.grace = std::chrono::milliseconds(s.server_shutdown_grace_ms);
  wo.retry.base = std::chrono::milliseconds(s.worker_retry_base_ms);
  wo.retry.max_attempts = static_cast<int>(s.worker_max_attempts);
  worker::pool workers({**db, jobs, executors, *box, real_clock(), registry, jobs_ready, outbox_ready}, std::move(wo));
  if (auto n = jobs.release_all_leases(); !n) {
    log::warn("queue.release_failed", {{"error", n.err().message}});
  } else if (*n > 0) {
    log::info("queue.leases_released", {{"jobs", *n}, {"why", "left by a previous process"}});
  }
  relay.start();
  if (s.worker_enabled == "on") workers.start();
  else log::info("worker.disabled", {{"why", "worker.enabled = off: steps are queued, not executed"}});
  hooks::zap_cache zap_cache((*db)->reads(), *box, real_clock(), std::chrono::milliseconds(s.hooks_cache_ms));
  hooks::rate_limiter limiter(real_clock());
  zap_deps.changed = [&zap_cache](const std::string& user_id) { zap_cache.forget_user(user_id); };
  const http::hook_routes_deps hook_deps{**db,
                                         zap_cache,
                                         limiter,
                                         registry,
                                         real_clock(),
                                         plan_rates(s.hooks_free_zap_rate, s.hooks_free_user_rate, s.hooks_burst_seconds),
                                         plan_rates(s.hooks_paid_zap_rate, s.hooks_paid_user_rate, s.hooks_burst_seconds),
                                         static_cast<std::size_t>(s.hooks_max_depth),
                                         s.hooks_dedup_window_seconds * 1000,
                                         [&outbox_ready] { outbox_ready.ring(); }};

  http::router routes;
  http::add_health_routes(routes, **db);
  accounts.add_routes(routes);
  http::add_zap_routes(routes, zap_deps);
  http::add_hook_routes(routes, hook_deps);
  http::add_metrics_route(routes, registry);
  const http::run_routes_deps run_deps{**db, accounts.authenticate(), real_clock(), [&outbox_ready] { outbox_ready.ring(); },
                                       &jobs};
  http::add_run_routes(routes, run_deps);
  http::add_ui_routes(routes);

  std::size_t threads = s.server_threads > 0 ? static_cast<std::size_t>(s.server_threads)
                                             : std::max(1u, std::thread::hardware_concurrency());
  // One io_context per HTTP thread: the first also runs the acceptor, signals and timers;
  // connections are spread over all of them, each served by its thread alone.
  // Declared first, destroyed last: an accept pending on `ioc` at shutdown holds a socket of
  // one of these contexts, so `ioc` must go first.
  std::vector<std::unique_ptr<asio::io_context>> extra_contexts;
  asio::io_context ioc(1);
  std::vector<asio::io_context*> conn_contexts = {&ioc};
  for (std::size_t i = 1; i < threads; ++i) {
    extra_contexts.push_back(std::make_unique<asio::io_context>(1));
    conn_contexts.push_back(extra_contexts.back().get());
  }
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  for (auto& c : extra_contexts) keep_running.push_back(asio::make_work_guard(*c));
  http::server::options so;
  so.host = s.listen_host;
  so.port = s.listen_port;
  so.body_limit = static_cast<std::size_t>(s.server_body_limit);
  so.read_timeout = std::chrono::milliseconds(s.server_read_timeout_ms);
  so.trusted_proxy = trusted_proxy;
  http::server srv(ioc, conn_contexts, routes, so);
  auto port = srv.start();
  if (!port) {
    log::error("zapd.listen_failed", {{"error", port.err().message}});
    workers.stop();
    outbound_io.stop();
    relay.stop();
    registry.remove_collector(store_collector);
    (*db)->stop();
    return k_exit_failure;
  }

  std::atomic<bool> stopping{false};
  asio::co_spawn(ioc,
                 housekeeping(ioc, **db, &jobs, s.hooks_dedup_window_seconds * 1000, s.runs_retention_days * 86'400'000, stopping),
                 asio::detached);

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("zapd.stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    stopping = true;
    srv.stop();
    asio::co_spawn(ioc, drain(ioc, srv, std::chrono::milliseconds(s.server_shutdown_grace_ms)), asio::detached);
  });

  log::info("zapd.listening", {{"addr", fmt::format("{}:{}", s.listen_host, *port)},
                               {"public_url", s.server_public_url},
                               {"data_dir", s.data_dir},
                               {"threads", threads}});

  std::vector<std::thread> pool;
  for (auto& c : extra_contexts) pool.emplace_back([ctx = c.get()] { ctx->run(); });
  ioc.run();  // returns when drain() stops it: every connection has ended
  for (auto& c : extra_contexts) c->stop();
  for (auto& t : pool) t.join();

  // Hash jobs still queued complete into the (stopped) io_context before it is destroyed.
  hashes.stop();
  // Workers stop claiming and give back what is still running; the driver then completes
  // every transfer (their late results find the lease gone).
  workers.stop();
  outbound_io.stop();
  relay.stop();
  registry.remove_collector(store_collector);
  (*db)->stop();
  log::info("zapd.stopped");
  return k_exit_ok;
}

int user_create(const config::loaded& cfg, const std::string& raw_email, const std::string& name,
                const std::string& password) {
  const auto& s = cfg.values;
  std::string email = auth::normalize_email(raw_email);
  for (auto st : {auth::validate_email(email, "--email"), auth::validate_name(name, "--name"), auth::validate_password(password)}) {
    if (!st) {
      fmt::print(stderr, "zapd: {}\n", st.err().message);
      return k_exit_usage;
    }
  }
  auto db = open_for_cli(s);
  if (!db) return k_exit_failure;
  auto hash = auth::hash_password(password, hash_params(s));
  if (!hash) {
    fmt::print(stderr, "zapd: {}\n", hash.err().message);
    return k_exit_failure;
  }
  auth::new_user nu{email, name, *hash, s.auth_default_plan};
  auto u = db->writes().execute<auth::user>([&](store::connection& c) { return auth::insert_user(c, nu); });
  db->stop();
  if (!u) {
    fmt::print(stderr, "zapd: {}: {}\n", email, u.err().message);
    return (u.err().code == errc::already_exists || u.err().code == errc::constraint) ? k_exit_usage : k_exit_failure;
  }
  fmt::print("created user {} <{}> id {} plan {}{}\n", u->name, u->email, u->id, u->plan, u->admin ? " (admin)" : "");
  return k_exit_ok;
}

int user_set_password(const config::loaded& cfg, const std::string& raw_email, const std::string& password) {
  const auto& s = cfg.values;
  std::string email = auth::normalize_email(raw_email);
  if (auto st = auth::validate_password(password); !st) {
    fmt::print(stderr, "zapd: {}\n", st.err().message);
    return k_exit_usage;
  }
  auto db = open_for_cli(s);
  if (!db) return k_exit_failure;
  auto hash = auth::hash_password(password, hash_params(s));
  if (!hash) {
    fmt::print(stderr, "zapd: {}\n", hash.err().message);
    return k_exit_failure;
  }
  auto v = db->writes().execute<std::int64_t>([&](store::connection& c) -> result<std::int64_t> {
    auto u = auth::find_user_by_email(c, email);
    if (!u) return std::move(u).err();
    if (!*u) return make_error(errc::not_found, "no account with this email");
    return auth::set_password_hash(c, (*u)->id, *hash);
  });
  db->stop();
  if (!v) {
    fmt::print(stderr, "zapd: {}: {}\n", email, v.err().message);
    return v.err().code == errc::not_found ? k_exit_usage : k_exit_failure;
  }
  fmt::print("password changed for {}; every session of this user has ended\n", email);
  return k_exit_ok;
}

int user_list(const config::loaded& cfg) {
  auto db = open_for_cli(cfg.values);
  if (!db) return k_exit_failure;
  auto users = db->reads().with([](store::connection& c) { return auth::list_users(c); });
  db->stop();
  if (!users) {
    fmt::print(stderr, "zapd: {}\n", users.err().message);
    return k_exit_failure;
  }
  fmt::print("{:<36}  {:<32}  {:<5}  {:<5}  {:<24}  {}\n", "ID", "EMAIL", "PLAN", "ADMIN", "CREATED", "NAME");
  for (const auto& u : *users)
    fmt::print("{:<36}  {:<32}  {:<5}  {:<5}  {:<24}  {}\n", u.id, u.email, u.plan, u.admin ? "yes" : "no", u.created_at, u.name);
  return k_exit_ok;
}

int migrate(const config::loaded& cfg, bool apply) {
  const auto& s = cfg.values;
  auto dir = ensure_writable_dir(s.data_dir);
  if (!dir) {
    log::error("zapd.config_error", {{"error", dir.err().message}});
    return k_exit_usage;
  }
  auto conn = store::open_write_connection(db_path(s), s.store_synchronous);
  if (!conn) {
    log::error("zapd.store_error", {{"error", conn.err().message}});
    return k_exit_failure;
  }
  const auto& all = store::embedded_migrations();
  if (apply) {
    auto n = store::migrate_up(*conn, all);
    if (!n) {
      log::error("zapd.migrate_failed", {{"error", n.err().message}});
      return k_exit_failure;
    }
    fmt::print("applied {} migration(s); schema version {}\n", *n, all.empty() ? 0 : all.back().version);
    return k_exit_ok;
  }
  auto st = store::migration_status(*conn, all);
  if (!st) {
    log::error("zapd.migrate_failed", {{"error", st.err().message}});
    return k_exit_failure;
  }
  int pending = 0;
  for (const auto& m : *st) {
    fmt::print("{:04}_{:<24} {}\n", m.version, m.name, m.applied ? "applied " + m.applied_at : std::string("pending"));
    pending += m.applied ? 0 : 1;
  }
  fmt::print("{} pending\n", pending);
  return k_exit_ok;
}

}  // namespace zapd::app
