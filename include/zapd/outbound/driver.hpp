#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include <curl/curl.h>

#include "zapd/core/result.hpp"

namespace zapd::outbound {

/// Runs libcurl transfers (any protocol: HTTP now, SMTP later) on one curl multi handle
/// driven by Asio, so thousands of slow transfers are in flight on ONE thread.
///
/// The driver owns an io_context and the thread that runs it. libcurl tells it which sockets
/// to watch (CURLMOPT_SOCKETFUNCTION) and when to wake up (CURLMOPT_TIMERFUNCTION); it waits
/// with Asio (epoll) and calls curl_multi_socket_action. Every curl call happens on that
/// thread, which is why no lock guards the multi handle and why an easy handle belongs to the
/// driver from `add` until its `done` runs. The multi handle shares one DNS cache and one
/// connection pool among all transfers (HTTP keep-alive and HTTP/2 multiplexing included).
///
/// Lifecycle: the constructor starts the thread and makes no curl call: the multi handle is
/// made on the driver thread by the first transfer, so a driver that never runs one never
/// loads libcurl (curl_lazy.hpp); if it cannot be made, that transfer's `done` gets
/// CURLE_FAILED_INIT. `stop(grace)` refuses new work, lets
/// transfers in flight run for up to `grace`, aborts the rest, closes every connection and
/// joins the thread; the destructor calls `stop()`. Every accepted `add` gets its `done`
/// called exactly once, before stop() returns.
///
/// Threading: `add`, `post`, `in_flight` and `stop` are safe from any thread (stop not from a
/// `done` or a posted function: it would wait for itself). `done` and posted functions run
/// on the driver thread and must not block: they delay every other transfer. Exceptions
/// they throw are logged and swallowed.
///
/// Name resolution: this libcurl uses its threaded resolver, so a name that is not in the DNS
/// cache costs one short-lived thread while it resolves (IP literals and cached names cost
/// none). `max_total_connections` bounds those too, since a transfer waiting for a
/// connection slot has not started resolving.
class driver {
 public:
  struct options {
    /// CURLMOPT_MAX_TOTAL_CONNECTIONS: open connections at once; transfers beyond it wait in
    /// libcurl's queue (their timeout keeps running). 0 = no limit.
    long max_total_connections = 0;
    /// CURLMOPT_MAX_HOST_CONNECTIONS: per host and port. 0 = no limit.
    long max_host_connections = 0;
    /// CURLMOPT_MAXCONNECTS: connections kept open (in use or idle; an ended transfer's
    /// connection is closed when more are open). 0 = libcurl's default, 4 x the transfers in
    /// progress at that moment: whenever concurrency dips it closes connections that the
    /// next transfers open again (at 5,000 steps/s to one sink, 1 in 6 steps paid a new TCP
    /// connection). Set it to at least the transfers that can run at once: below that, every
    /// ended transfer closes its connection (zapd: `app::outbound_options`).
    long max_idle_connections = 64;
  };

  /// Called once per transfer with its outcome: CURLE_OK, the transfer's own error, or
  /// CURLE_ABORTED_BY_CALLBACK when stop() aborted it.
  using done_fn = std::function<void(CURLcode)>;

  driver();
  explicit driver(options opts);
  ~driver();
  driver(const driver&) = delete;
  driver& operator=(const driver&) = delete;

  /// Hands `easy` (fully configured) to the driver. Ok: `done` will be called exactly once,
  /// on the driver thread, after the easy handle has left the multi handle, so `done` may
  /// clean it up or reuse it. The caller keeps ownership of `easy` and of whatever its
  /// options point to until then. The driver sets CURLOPT_CLOSESOCKETFUNCTION/DATA on it
  /// (to stop watching a socket before it is closed); set no other socket callbacks than
  /// CURLOPT_OPENSOCKETFUNCTION and CURLOPT_SOCKOPTFUNCTION.
  /// Error (`unavailable` once stop() has begun): nothing was taken, `done` will not be called.
  status add(CURL* easy, done_fn done);

  /// Runs `fn` on the driver thread (e.g. to deliver a result the caller computed without
  /// curl, in the same order and on the same thread as transfer results). Ok: it will run,
  /// even if stop() begins meanwhile. Error (`unavailable` once stop() has begun): it will not.
  status post(std::function<void()> fn);

  /// Transfers accepted by `add` whose `done` has not run yet.
  std::size_t in_flight() const noexcept;

  /// Sockets registered with epoll so far. A connection's socket is registered once, when
  /// curl first asks to watch it, and stays so until curl closes it: requests that reuse a
  /// kept-alive connection add none.
  std::size_t registrations() const noexcept;

  /// Refuses new work, waits up to `grace` for transfers in flight, aborts the rest (their
  /// `done` gets CURLE_ABORTED_BY_CALLBACK), closes all connections, joins the thread.
  /// Idempotent; later calls only wait for the first to finish.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds{0});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zapd::outbound
