#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "zapd/actions/executor.hpp"
#include "zapd/auth/hash_pool.hpp"
#include "zapd/auth/options.hpp"
#include "zapd/config/config.hpp"
#include "zapd/core/files.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/hooks/ingest.hpp"
#include "zapd/hooks/rate_limit.hpp"
#include "zapd/http/auth_routes.hpp"
#include "zapd/http/hook_routes.hpp"
#include "zapd/http/router.hpp"
#include "zapd/http/run_routes.hpp"
#include "zapd/http/schedule_routes.hpp"
#include "zapd/http/server.hpp"
#include "zapd/http/zap_routes.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/outbound/driver.hpp"
#include "zapd/outbound/http_client.hpp"
#include "zapd/outbound/policy.hpp"
#include "zapd/outbox/relay.hpp"
#include "zapd/queue/sqlite_queue.hpp"
#include "zapd/schedule/scheduler.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/store/database.hpp"
#include "zapd/worker/pool.hpp"
#if ZAPD_WITH_KAFKA
#include "fleet.hpp"
#endif

namespace zapd::app {

/// What `serve` needs before anything starts, each part fallible: the data dir and its lock,
/// the session secret, the migrated database, the secrets key, and the config values that
/// parse into something (`actions.http.allow`, `server.trusted_proxies`). `prepare` logs what
/// failed and returns the exit code instead.
struct prepared {
  file_lock dir_lock;
  std::string session_secret;
  std::unique_ptr<store::database> db;
  secrets::box box;
  outbound::policy allow;
  outbound::cidr_set trusted_proxies;
  // Made here so the fallible parts below can register their metrics.
  std::unique_ptr<metrics::registry> metrics = std::make_unique<metrics::registry>();
#if ZAPD_WITH_KAFKA
  std::unique_ptr<fleet_prepared> fleet;  // queue.backend = kafka: key, producer, topics
#endif
};
/// Either everything is ready, or the exit code (`k_exit_usage` / `k_exit_failure`).
struct prepare_result {
  std::optional<prepared> ready;
  int exit_code = 0;
};
prepare_result prepare(const config::settings& s);

/// Everything `zapd serve` runs. The members are declared (so constructed) in start order,
/// each from the ones before it, and `stop()` takes them down in the reverse order: the one
/// shutdown path, whether the listener failed to bind or a signal ended a normal run.
///
/// Lifecycle: construct (nothing runs yet); `start()` (leases left by a dead process
/// released, relay, workers); `listen()`; `run()` (HTTP threads until SIGINT/SIGTERM and the
/// drain); `stop()` (idempotent; the destructor calls it).
class services {
 public:
  services(const config::settings& s, prepared p);
  ~services();
  services(const services&) = delete;
  services& operator=(const services&) = delete;

  /// Error: a part could not start (the fleet's consumers); logged by the caller.
  status start();
  /// Binds the listener: the port, or the error (logged by the caller).
  result<std::uint16_t> listen();
  /// Serves until a signal, then drains connections (up to `server.shutdown_grace_ms`).
  void run();
  /// 1. HTTP threads joined; 2. the hash pool runs what is queued; 3. the worker stops
  /// claiming and gives back what it could not finish; 4. the outbound driver completes every
  /// transfer; 5. the relay finishes its batch; 6. the writer commits what is queued.
  void stop();

 private:
  const config::settings& s_;
  prepared p_;
  const auth::options auth_opts_;
  auth::hash_pool hashes_;
  http::auth_api accounts_;
  metrics::registry& registry_;  // p_.metrics
  std::uint64_t store_collector_ = 0;
  // The spine: runs recorded by hooks -> the embedded queue (in the same transaction with
  // outbox.direct on, the default; else outbox -> relay -> queue) -> workers.
  // The hand-overs, created before the components that ring or listen.
  wakeup outbox_ready_;  // rung for outbox rows (outbox.direct off, rows left by an older version); the relay listens
  wakeup jobs_ready_;    // rung by the relay and by the queue for a job that waits for a claim; the workers listen
  wakeup none_;          // nobody listens: step_due() when the queue rings jobs_ready_ itself
  queue::sqlite_queue jobs_;
  // The bell a producer rings after committing a due step: the relay's when it is an outbox
  // row; none when its job went straight into the queue, which rings the workers' bell
  // itself, and only when the job was not handed to a free slot (queue::sqlite_queue::options::ready).
  wakeup& step_due() { return jobs_.direct() ? none_ : outbox_ready_; }
#if ZAPD_WITH_KAFKA
  // queue.backend = kafka: the relay publishes to the fleet's topics, the recorder records
  // the fleet's results, and the node is this process's worker of the fleet (not the pool).
  std::unique_ptr<fleet_primary> fleet_;
#endif
  queue::queue& relay_queue();
  outbox::relay relay_;
  outbound::driver outbound_io_;
  outbound::http_client http_out_;
  actions::executors executors_;
  worker::pool workers_;
  schedule::scheduler scheduler_;  // schedule zaps -> runs (+ outbox rows), like ingestion
  hooks::zap_cache zap_cache_;
  hooks::rate_limiter limiter_;
  http::zap_routes_deps zap_deps_;
  http::hook_routes_deps hook_deps_;
  http::run_routes_deps run_deps_;
  http::schedule_routes_deps schedule_deps_;
  http::router routes_;
  // One io_context per HTTP thread: the first also runs the acceptor, signals and timers;
  // connections are spread over all of them, each served by its thread alone. The extra
  // ones are declared before `ioc_` so they are destroyed after it: an accept pending on
  // `ioc_` at shutdown holds a socket of one of them.
  std::vector<std::unique_ptr<boost::asio::io_context>> extra_contexts_;
  boost::asio::io_context ioc_{1};
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> keep_running_;
  std::optional<http::server> server_;
  std::vector<std::thread> http_threads_;
  bool stopped_ = false;
  std::atomic<bool> backlogged_{false};  // the outbox is past outbox.max_depth (watch_backlog)
};

}  // namespace zapd::app
