// `zapd worker`: a worker of the Kafka fleet, no store.
#include <csignal>
#include <pthread.h>

#include <atomic>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "fleet.hpp"
#include "options.hpp"
#include "zapd/app/app.hpp"
#include "zapd/core/clock.hpp"
#include "zapd/core/log.hpp"
#include "zapd/http/metrics_routes.hpp"
#include "zapd/http/router.hpp"
#include "zapd/http/server.hpp"
#include "zapd/outbound/driver.hpp"
#include "zapd/outbound/http_client.hpp"
#include "zapd/outbound/policy.hpp"

namespace zapd::app {

int worker(const config::loaded& cfg) {
  const auto& s = cfg.values;
  if (s.queue_backend != "kafka") {
    log::error("worker.config_error", {{"error", "zapd worker needs queue.backend = \"kafka\" (env ZAPD_QUEUE_BACKEND=kafka): "
                                                 "with the embedded queue, `zapd serve` executes the steps itself"}});
    return k_exit_usage;
  }
  auto allow = outbound::policy::parse(s.actions_http_allow);
  if (!allow) {
    log::error("worker.config_error", {{"error", "actions.http.allow: " + allow.err().message}});
    return k_exit_usage;
  }
  // SIGINT/SIGTERM are taken by sigwait below: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  metrics::registry registry;
  auto f = prepare_fleet(s, false, registry);
  if (!f) {
    log::error("worker.kafka_error", {{"error", f.err().message}});
    return f.err().code == errc::invalid_argument ? k_exit_usage : k_exit_failure;
  }
  outbound::driver io(outbound_options(s));
  outbound::http_client http_out(io, *allow, kept_easy_handles(s));
  actions::executors executors;
  add_executors(executors, s, io, http_out);
  fleet::node node((*f)->settings, *(*f)->seal, executors, *(*f)->producer, real_clock(), registry,
                   fleet::node::options{static_cast<std::size_t>(s.queue_paid_concurrency),
                                        static_cast<std::size_t>(s.queue_free_concurrency),
                                        std::chrono::milliseconds(s.server_shutdown_grace_ms), std::chrono::minutes(10),
                                        worker_name()});

  // /healthz, /readyz (the node took work and did not refuse), /metrics on worker.listen.
  boost::asio::io_context ioc{1};
  http::router routes;
  std::optional<http::server> server;
  std::thread http_thread;
  if (!s.worker_listen.empty()) {
    routes.add(http::bhttp::verb::get, "/healthz", [](http::request&) -> boost::asio::awaitable<http::response> {
      co_return http::response::json(200, {{"status", "ok"}});
    });
    routes.add(http::bhttp::verb::get, "/readyz", [&node, &f](http::request&) -> boost::asio::awaitable<http::response> {
      if (node.refused()) co_return http::response::json(503, {{"status", "refused"}, {"why", "fleet key mismatch"}});
      if (!(*f)->producer->connected()) co_return http::response::json(503, {{"status", "unavailable"}, {"why", "no Kafka broker reachable"}});
      co_return http::response::json(200, {{"status", "ready"}});
    });
    http::add_metrics_route(routes, registry);
    auto colon = s.worker_listen.rfind(':');
    if (colon == std::string::npos) {
      log::error("worker.config_error", {{"error", "worker.listen must be address:port"}});
      return k_exit_usage;
    }
    auto so = server_options(s);
    so.host = s.worker_listen.substr(0, colon);
    try {
      so.port = static_cast<std::uint16_t>(std::stoi(s.worker_listen.substr(colon + 1)));
    } catch (...) {
      log::error("worker.config_error", {{"error", "worker.listen must be address:port"}});
      return k_exit_usage;
    }
    server.emplace(ioc, routes, so);
    auto port = server->start();
    if (!port) {
      log::error("worker.listen_failed", {{"error", port.err().message}});
      return k_exit_failure;
    }
    log::info("worker.listening", {{"addr", fmt::format("{}:{}", so.host, *port)}});
    http_thread = std::thread([&ioc] { ioc.run(); });
  }

  // A refusal ends the process too: a signal to ourselves wakes the wait. Listening before
  // the node starts, so the first message cannot refuse unheard.
  auto listening = node.refused_bell().listen([] { kill(getpid(), SIGTERM); });
  if (auto st = node.start(); !st) {
    node.refused_bell().forget(listening);
    log::error("worker.start_failed", {{"error", st.err().message}});
    if (server) server->stop();
    ioc.stop();
    if (http_thread.joinable()) http_thread.join();
    return k_exit_failure;
  }
  int sig = 0;
  sigwait(&sigs, &sig);
  node.refused_bell().forget(listening);
  const bool refused = node.refused();
  log::info("worker.stopping", {{"signal", refused ? "refused" : (sig == SIGINT ? "SIGINT" : "SIGTERM")}});
  node.stop();
  io.stop();
  if (server) server->stop();
  ioc.stop();
  if (http_thread.joinable()) http_thread.join();
  log::info("worker.stopped");
  return refused ? k_exit_usage : k_exit_ok;
}

}  // namespace zapd::app
