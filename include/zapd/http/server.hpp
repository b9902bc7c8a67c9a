#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "zapd/core/result.hpp"
#include "zapd/http/router.hpp"

namespace zapd::http {

/// The HTTP/1.1 listener and its sessions (Beast over Asio).
///
/// Each accepted connection runs as one coroutine on its own strand: read a request (with
/// `body_limit` and `read_timeout`), dispatch it through the router, write the answer, repeat
/// while keep-alive. Protocol errors are answered here as JSON (400, 408, 413) since no route
/// sees them; so is framing a proxy in front could read differently (request smuggling: a
/// Transfer-Encoding other than `chunked`, one with a Content-Length, folded header lines).
/// Every answered request is logged with method, path (`loggable_path`: no query string, a
/// webhook URL cut after the user id), status and duration.
///
/// Lifecycle: `start` binds and accepts; `stop` closes the acceptor and idle connections and
/// lets busy ones finish their current request, then close. `active()` reaches 0 once all
/// connections are gone. Thread-safe: `stop` and `active` may be called from any thread.
/// The client behind a request from `peer` (addresses in canonical form, IPv4-mapped IPv6 as
/// IPv4): `peer` itself unless `trusted(peer)`; then the rightmost X-Forwarded-For address
/// that is not trusted (proxies append the address they saw, so entries left of the last
/// untrusted one may be forged), or the rightmost hop when every hop is trusted. A malformed
/// entry ends the walk at the last good hop (or `peer`).
std::string client_address(const std::string& peer, std::string_view forwarded_for,
                           const std::function<bool(std::string_view)>& trusted);

/// `target` as logs show it: the path without the query string, and a webhook URL cut after
/// the user id (`/hooks/catch/{userId}/…`): the zap id in it is the webhook's credential.
std::string loggable_path(std::string_view target);

class server {
 public:
  struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    std::size_t body_limit = 1024 * 1024;
    std::chrono::milliseconds read_timeout{30'000};
    /// Whether a peer address (text, as Asio prints it) is a trusted reverse proxy; unset =
    /// none is. A trusted peer's X-Forwarded-For names the client (`client_address`).
    std::function<bool(std::string_view)> trusted_proxy;
  };

  server(boost::asio::io_context& ioc, const router& r, options opts);
  /// Accepts on `ioc` and spreads connections round-robin over `conn_contexts` (one
  /// io_context per thread: each thread has its own epoll and no handler crosses threads).
  server(boost::asio::io_context& ioc, std::vector<boost::asio::io_context*> conn_contexts, const router& r, options opts);
  ~server();

  /// Binds and starts accepting; returns the bound port (useful with port 0).
  result<std::uint16_t> start();
  void stop();
  std::size_t active() const;

  struct connection;  // one accepted socket; defined in server.cpp

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> session(std::shared_ptr<connection> c);

  boost::asio::io_context& ioc_;
  std::vector<boost::asio::io_context*> conn_contexts_;
  std::size_t next_context_ = 0;  // accept loop only
  const router& router_;
  options opts_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::list<std::weak_ptr<connection>> conns_;
};

}  // namespace zapd::http
