// The read limits of the real binary's HTTP server, over raw sockets: a header block over
// 16 KiB is answered 431 and a request that does not arrive within server.read_timeout_ms is
// answered 408, both as JSON errors (error.code from http::status_for's errc), and the
// connection is closed; the server keeps serving others.
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <string>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "raw_http.hpp"
#include "api_helpers.hpp"
#include "zapd/core/json.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr std::size_t k_header_limit = 16 * 1024;  // src/http/server.cpp

using exchange = zapd::test::raw_answer;

// Sends `bytes` on a new connection, then reads until the server closes it or `patience` passes.
exchange send_and_wait(std::uint16_t port, const std::string& bytes, std::chrono::seconds patience = std::chrono::seconds(10)) {
  return zapd::test::send_raw_until_close(port, bytes, patience);
}

// The JSON body of a raw HTTP answer (after the blank line), or a discarded value.
nlohmann::json body_of(const std::string& answer) {
  auto at = answer.find("\r\n\r\n");
  if (at == std::string::npos) return nlohmann::json::value_t::discarded;
  return zapd::parse_json_or_discarded(std::string_view(answer).substr(at + 4), zapd::json_depth::api);
}

// A GET /healthz whose header block (request line to the blank line) is `size` bytes.
std::string request_of_size(std::size_t size) {
  const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Padding: ";
  const std::string tail = "\r\n\r\n";
  REQUIRE(size > head.size() + tail.size());
  return head + std::string(size - head.size() - tail.size(), 'p') + tail;
}

}  // namespace

TEST_CASE("http limits: a header block over 16 KiB is answered 431 headers_too_large and closed") {
  zapd_process z(k_fast_hashing);

  // Just under the limit is an ordinary request.
  auto fits = send_and_wait(z.port(), request_of_size(k_header_limit - 512));
  INFO(fits.answer.substr(0, 200));
  CHECK(fits.answer.starts_with("HTTP/1.1 200"));

  for (std::size_t size : {k_header_limit + 64, 4 * k_header_limit}) {
    INFO("header block of " << size << " bytes");
    auto r = send_and_wait(z.port(), request_of_size(size));
    INFO(r.answer.substr(0, 300));
    CHECK(r.answer.starts_with("HTTP/1.1 431"));
    CHECK(r.answer.find("Connection: close") != std::string::npos);
    auto j = body_of(r.answer);
    REQUIRE(j.is_object());
    CHECK(j["error"]["code"] == "headers_too_large");
    CHECK(j["error"]["message"] == "request headers are too large");
    CHECK(r.closed);
  }
  CHECK(z.request("GET", "/healthz").status == 200);
  CHECK(z.log().find("status=431") != std::string::npos);
}

// The read deadline is the server's own timer, which cancels the read rather than closing the
// socket (Beast's stream expiry would close it, and the 408 went to a closed socket).
TEST_CASE("http limits: headers that never finish within server.read_timeout_ms are answered 408 timeout and closed") {
  zapd_process z(serve_args({"server.read_timeout_ms=400"}));

  // Headers that stop short of their blank line, and then nothing.
  auto r = send_and_wait(z.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  INFO(r.answer);
  CHECK(r.closed);
  // The server's timer, not ours: it waited about read_timeout_ms (it started at accept).
  CHECK(r.waited >= milliseconds(300));
  CHECK(r.waited < milliseconds(5000));
  REQUIRE(r.answer.starts_with("HTTP/1.1 408"));
  CHECK(r.answer.find("Connection: close") != std::string::npos);
  auto j = body_of(r.answer);
  REQUIRE(j.is_object());
  CHECK(j["error"]["code"] == "timeout");
  CHECK(j["error"]["message"] == "timed out reading the request");

  // A body that stops short of its Content-Length gets the same answer.
  auto body = send_and_wait(z.port(), "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  INFO(body.answer);
  REQUIRE(body.answer.starts_with("HTTP/1.1 408"));
  CHECK(body_of(body.answer)["error"]["code"] == "timeout");
}

TEST_CASE("http limits: a request not read within server.read_timeout_ms is cut off, trickling does not extend it") {
  zapd_process z(serve_args({"server.read_timeout_ms=400"}));

  // Headers that stop short of their blank line: the server gives up after read_timeout_ms
  // and says so in its access log (the answer itself: see the case above).
  auto r = send_and_wait(z.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  CHECK(r.closed);
  CHECK(r.waited >= milliseconds(300));
  CHECK(r.waited < milliseconds(5000));

  // Headers trickled a byte every 50 ms do not extend the deadline.
  {
    asio::io_context ioc;
    asio::ip::tcp::socket sock(ioc);
    sock.connect({asio::ip::make_address("127.0.0.1"), z.port()});
    const std::string slow = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnopqrstuvwxyz0123456789";
    const auto start = steady_clock::now();
    boost::system::error_code ec;
    for (char c : slow) {
      asio::write(sock, asio::buffer(&c, 1), ec);
      if (ec) break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    // Cut off after about 400 ms, long before the ~4 s the trickle takes.
    CHECK(ec);
    CHECK(steady_clock::now() - start < milliseconds(3000));
  }

  // A connection that sends nothing is closed without an answer (an idle keep-alive, not a request).
  auto idle = send_and_wait(z.port(), "");
  CHECK(idle.answer.empty());
  CHECK(idle.closed);
  CHECK(idle.waited < milliseconds(5000));

  CHECK(z.request("GET", "/healthz").status == 200);
  const std::string log = z.log();
  CHECK(log.find("method=GET path=/healthz status=408") != std::string::npos);
}
