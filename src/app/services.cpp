#include "services.hpp"

#include "zapd/outbox/outbox.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "options.hpp"
#include "zapd/actions/catalog.hpp"
#include "zapd/app/app.hpp"
#include "zapd/core/log.hpp"
#include "zapd/http/health_routes.hpp"
#include "zapd/http/metrics_routes.hpp"
#include "zapd/http/ui_routes.hpp"
#include "zapd/runs/runs.hpp"

namespace zapd::app {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

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
asio::awaitable<void> housekeeping(asio::io_context& ioc, store::database& db, queue::store_publisher* jobs,
                                   std::int64_t dedup_window_ms, std::int64_t retention_ms, const std::atomic<bool>& stopping) {
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

// With a queue outside the store: every 500 ms, whether the outbox holds more than `max_depth`
// steps (the queue is not taking them), for ingestion to answer 503 instead of piling up more.
asio::awaitable<void> watch_backlog(asio::io_context& ioc, store::database& db, std::int64_t max_depth,
                                    std::atomic<bool>& backlogged, const std::atomic<bool>& stopping) {
  asio::steady_timer t(ioc);
  while (!stopping) {
    t.expires_after(std::chrono::milliseconds(500));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) break;
    auto b = db.reads().with([](store::connection& c) { return outbox::measure(c, real_clock().now_ms()); });
    if (!b) continue;
    const bool full = b->depth >= max_depth;
    if (full != backlogged.exchange(full)) {
      if (full) log::warn("outbox.backlog_full", {{"depth", b->depth}, {"max_depth", max_depth}, {"answer", "503 to webhooks"}});
      else log::info("outbox.backlog_cleared", {{"depth", b->depth}});
    }
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

prepare_result prepare(const config::settings& s) {
  auto fail = [](const char* event, const std::string& error, int code) {
    log::error(event, {{"error", error}});
    return prepare_result{std::nullopt, code};
  };
  auto dir = ensure_writable_dir(s.data_dir);
  if (!dir) return fail("zapd.config_error", dir.err().message, k_exit_usage);
  // One serving process per data dir: the embedded queue's recovery relies on it.
  auto dir_lock = lock_file((fs::path(s.data_dir) / "zapd.lock").string());
  if (!dir_lock) return fail("zapd.data_dir_locked", dir_lock.err().message, k_exit_usage);
  auto secret = load_or_create_secret((fs::path(s.data_dir) / "secret.key").string());
  if (!secret) return fail("zapd.secret_error", secret.err().message, k_exit_usage);
  auto allow = outbound::policy::parse(s.actions_http_allow);
  if (!allow) return fail("zapd.config_error", "actions.http.allow: " + allow.err().message, k_exit_usage);
  auto proxies = outbound::cidr_set::parse(s.server_trusted_proxies);
  if (!proxies) return fail("zapd.config_error", "server.trusted_proxies: " + proxies.err().message, k_exit_usage);
  auto db = store::database::open(db_options(s, true));
  if (!db) {
    log::error("zapd.store_error", {{"error", db.err().message}, {"path", db_path(s)}});
    return prepare_result{std::nullopt, k_exit_failure};
  }
  auto box = secrets::box::load_or_create((fs::path(s.data_dir) / "secrets.key").string());
  if (!box) {
    (*db)->stop();
    return fail("zapd.secret_error", box.err().message, k_exit_usage);
  }
  prepared out{std::move(*dir_lock), std::move(*secret), std::move(*db), std::move(*box), std::move(*allow), std::move(*proxies)};
  if (s.queue_backend == "kafka") {
#if ZAPD_WITH_KAFKA
    auto f = prepare_fleet(s, true, *out.metrics);
    if (!f) {
      out.db->stop();
      return fail("zapd.kafka_error", f.err().message, f.err().code == errc::invalid_argument ? k_exit_usage : k_exit_failure);
    }
    out.fleet = std::move(*f);
#else
    out.db->stop();
    return fail("zapd.config_error", "queue.backend = kafka: this zapd was built without Kafka (ZAPD_WITH_KAFKA=OFF)", k_exit_usage);
#endif
  }
  return prepare_result{std::move(out), k_exit_ok};
}

services::services(const config::settings& s, prepared p)
    : s_(s),
      p_(std::move(p)),
      auth_opts_(auth_options(s, p_.session_secret)),
      hashes_(auth_opts_.hash_threads, auth_opts_.hash_queue),
      accounts_(*p_.db, hashes_, auth_opts_, real_clock()),
      registry_(*p_.metrics),
      store_collector_(add_store_metrics(registry_, p_.db->writes())),
      jobs_(*p_.db, real_clock(), registry_, queue_options(s, jobs_ready_)),
#if ZAPD_WITH_KAFKA
      fleet_(p_.fleet ? std::make_unique<fleet_primary>(*p_.fleet, *p_.db, p_.box, executors_, registry_, outbox_ready_, s)
                      : nullptr),
#endif
      relay_(*p_.db, relay_queue(), registry_, outbox_ready_, jobs_ready_, relay_options(s)),
      outbound_io_(outbound_options(s)),
      http_out_(outbound_io_, p_.allow, kept_easy_handles(s)),
      workers_({*p_.db, jobs_, executors_, p_.box, real_clock(), registry_, jobs_ready_, outbox_ready_}, worker_options(s)),
      scheduler_(*p_.db, &jobs_, real_clock(), registry_, step_due()),
      zap_cache_(p_.db->reads(), p_.box, real_clock(), std::chrono::milliseconds(s.hooks_cache_ms)),
      limiter_(real_clock()),
      zap_deps_{*p_.db,
                actions::catalog::builtin(),
                p_.box,
                accounts_.authenticate(),
                s.server_public_url,
                zaps::limits{static_cast<std::size_t>(s.zaps_max_actions), static_cast<std::size_t>(s.zaps_max_bytes),
                             s.schedule_min_interval_seconds},
                [this](const std::string& user_id) {
                  zap_cache_.forget_user(user_id);
                  scheduler_.zaps_changed();  // an edited, disabled or deleted schedule applies at once
                }},
      hook_deps_{*p_.db,
                 zap_cache_,
                 limiter_,
                 registry_,
                 real_clock(),
                 plan_rates(s.hooks_free_zap_rate, s.hooks_free_user_rate, s.hooks_burst_seconds),
                 plan_rates(s.hooks_paid_zap_rate, s.hooks_paid_user_rate, s.hooks_burst_seconds),
                 static_cast<std::size_t>(s.hooks_max_depth),
                 s.hooks_dedup_window_seconds * 1000,
                 &jobs_,
                 [this] { step_due().ring(); },
                 [this] { return backlogged_.load(std::memory_order_relaxed); }},
      run_deps_{*p_.db, accounts_.authenticate(), real_clock(), [this] { step_due().ring(); }, &jobs_},
      schedule_deps_{accounts_.authenticate(), s.schedule_min_interval_seconds, real_clock()} {
  add_executors(executors_, s, outbound_io_, http_out_);
  if (s.email_smtp_url.empty())
    log::warn("email.unconfigured", {{"hint", "set email.smtp_url (env ZAPD_EMAIL_SMTP_URL): email steps fail until then"}});

  http::add_health_routes(routes_, *p_.db);
  accounts_.add_routes(routes_);
  http::add_zap_routes(routes_, zap_deps_);
  http::add_hook_routes(routes_, hook_deps_);
  http::add_metrics_route(routes_, registry_);
  http::add_run_routes(routes_, run_deps_);
  http::add_schedule_routes(routes_, schedule_deps_);
  http::add_ui_routes(routes_);

  const std::size_t threads = http_threads(s);
  std::vector<asio::io_context*> conn_contexts = {&ioc_};
  for (std::size_t i = 1; i < threads; ++i) {
    extra_contexts_.push_back(std::make_unique<asio::io_context>(1));
    conn_contexts.push_back(extra_contexts_.back().get());
    keep_running_.push_back(asio::make_work_guard(*extra_contexts_.back()));
  }
  auto so = server_options(s);
  if (!p_.trusted_proxies.empty())
    so.trusted_proxy = [this](std::string_view ip) { return p_.trusted_proxies.contains(ip); };
  server_.emplace(ioc_, conn_contexts, routes_, std::move(so));
}

services::~services() { stop(); }

queue::queue& services::relay_queue() {
#if ZAPD_WITH_KAFKA
  if (fleet_) return fleet_->steps;
#endif
  return jobs_;
}

status services::start() {
  if (auto n = jobs_.release_all_leases(); !n) {
    log::warn("queue.release_failed", {{"error", n.err().message}});
  } else if (*n > 0) {
    log::info("queue.leases_released", {{"jobs", *n}, {"why", "left by a previous process"}});
  }
  relay_.start();
#if ZAPD_WITH_KAFKA
  if (fleet_) {
    if (auto st = fleet_->recorder.start(); !st) return st;
    if (s_.worker_enabled == "on") {
      if (auto st = fleet_->node.start(); !st) return st;
    } else {
      log::info("worker.disabled", {{"why", "worker.enabled = off: the fleet's `zapd worker` processes execute the steps"}});
    }
    scheduler_.start();
    return {};
  }
#endif
  if (s_.worker_enabled == "on") workers_.start();
  else log::info("worker.disabled", {{"why", "worker.enabled = off: steps are queued, not executed"}});
  scheduler_.start();
  return {};
}

result<std::uint16_t> services::listen() { return server_->start(); }

void services::run() {
  std::atomic<bool> stopping{false};
  asio::co_spawn(ioc_,
                 housekeeping(ioc_, *p_.db, &jobs_, s_.hooks_dedup_window_seconds * 1000, s_.runs_retention_days * 86'400'000,
                              stopping),
                 asio::detached);
#if ZAPD_WITH_KAFKA
  if (fleet_) asio::co_spawn(ioc_, watch_backlog(ioc_, *p_.db, s_.outbox_max_depth, backlogged_, stopping), asio::detached);
#endif
  asio::signal_set signals(ioc_, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("zapd.stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    stopping = true;
    server_->stop();
    asio::co_spawn(ioc_, drain(ioc_, *server_, std::chrono::milliseconds(s_.server_shutdown_grace_ms)), asio::detached);
  });
  for (auto& c : extra_contexts_) http_threads_.emplace_back([ctx = c.get()] { ctx->run(); });
  ioc_.run();  // returns when drain() stops it: every connection has ended
}

void services::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& c : extra_contexts_) c->stop();
  for (auto& t : http_threads_) t.join();
  http_threads_.clear();
  // Hash jobs still queued complete into the (stopped) io_context before it is destroyed.
  hashes_.stop();
  // No new schedule runs once shutdown begins (a slot cut short fires after the restart).
  scheduler_.stop();
  // Workers stop claiming and give back what is still running; the driver then completes
  // every transfer (their late results find the lease gone).
  workers_.stop();
#if ZAPD_WITH_KAFKA
  // The fleet's worker in this process finishes what it runs (or gives it back), like the pool.
  if (fleet_) fleet_->node.stop();
#endif
  outbound_io_.stop();
  relay_.stop();
#if ZAPD_WITH_KAFKA
  // Results not recorded yet are read again at the next start (their offsets stay).
  if (fleet_) fleet_->recorder.stop();
#endif
  registry_.remove_collector(store_collector_);
  p_.db->stop();
}

}  // namespace zapd::app
