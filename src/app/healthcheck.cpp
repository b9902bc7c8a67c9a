// `zapd healthcheck`: one blocking GET /readyz against the configured listen address, for a
// container's HEALTHCHECK or a monitoring script (no curl needed).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "zapd/app/app.hpp"

namespace zapd::app {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t k_body_limit = 64 * 1024;
constexpr std::size_t k_reason_chars = 200;

struct probe {
  std::string error;  // empty when an answer arrived
  int status = 0;
  std::string body;
};

asio::awaitable<void> get_readyz(std::string host, std::uint16_t port, probe& out) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.error = "cannot resolve " + host + ": " + ec.message();
    co_return;
  }
  beast::tcp_stream stream(ex);
  co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.error = ec.message();
    co_return;
  }
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/readyz", 11};
  req.set(bhttp::field::host, host);
  req.set(bhttp::field::user_agent, "zapd-healthcheck");
  req.set(bhttp::field::connection, "close");
  co_await bhttp::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.error = "sending the request: " + ec.message();
    co_return;
  }
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(k_body_limit);
  co_await bhttp::async_read(stream, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.error = "reading the answer: " + ec.message();
    co_return;
  }
  out.status = static_cast<int>(parser.get().result_int());
  out.body = parser.get().body();
}

// The body on one short line, for the reason printed on stderr.
std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  if (s.size() > k_reason_chars) s = s.substr(0, k_reason_chars) + "...";
  return s;
}

}  // namespace

int healthcheck(const config::loaded& cfg, std::chrono::milliseconds timeout) {
  const auto& s = cfg.values;
  // A wildcard listen address is reached on loopback.
  std::string host = s.listen_host;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (s.listen_port == 0) {
    fmt::print(stderr, "zapd: healthcheck: server.listen '{}' has port 0 (picked at start): give the real one, e.g. --listen {}:8080\n",
               s.server_listen, host);
    return k_exit_failure;
  }
  const std::string url = fmt::format("http://{}:{}/readyz", host.find(':') != std::string::npos ? "[" + host + "]" : host, s.listen_port);

  asio::io_context ioc(1);
  probe p;
  bool done = false;
  asio::co_spawn(ioc, get_readyz(host, s.listen_port, p), [&done, &p](std::exception_ptr e) {
    done = true;
    if (e && p.error.empty()) p.error = "unexpected failure";
  });
  ioc.run_for(timeout);
  if (!done) p.error = fmt::format("no answer within {} ms", timeout.count());
  if (!p.error.empty()) {
    fmt::print(stderr, "zapd: healthcheck: {}: {}\n", url, p.error);
    return k_exit_failure;
  }
  if (p.status != 200) {
    fmt::print(stderr, "zapd: healthcheck: {} answered {}: {}\n", url, p.status, one_line(p.body));
    return k_exit_failure;
  }
  fmt::print("{}: 200 ready\n", url);
  return k_exit_ok;
}

}  // namespace zapd::app
