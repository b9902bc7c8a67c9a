// bench/e2e.sh's latency load in C++: fixed-rate webhooks and a recording sink in one
// process, for rates Python cannot send on a 2-core box next to zapd (5,000/s and up).
//
//   e2e_load URL SINK_PORT RATE SECONDS [CONNECTIONS]
//
// Sends RATE webhooks a second for SECONDS to URL (http://127.0.0.1:PORT/hooks/catch/...)
// over CONNECTIONS keep-alive connections (default 64), each due at start + i/RATE and
// handed to the first idle connection, and records the time of each 200 by the runId in its
// body. A sink on 127.0.0.1:SINK_PORT answers every request 200 "{}" and records when it
// first saw each run (the part of its Idempotency-Key before the last ':'). Then it waits up
// to 30 s for every acknowledged run to reach the sink and prints what bench/e2e_tool.py
// prints (one clock, std::chrono::steady_clock, for both ends):
//
//   sent N webhooks in T s (R/s), A answered 200, E other answers, D steps received by the sink
//   latency 2xx -> sink: p50 X ms, p99 Y ms, max Z ms
//
// Exit 0 when every webhook was answered 200 and reached the sink, 1 otherwise, 2 on usage.
// Sender and sink each run on a thread of their own.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct shared_state {
  std::mutex mu;
  std::unordered_map<std::string, clock_type::time_point> acked;     // run id -> its 200
  std::unordered_map<std::string, clock_type::time_point> received;  // run id -> at the sink
  std::vector<std::string> errors;
};

// --- the sink --------------------------------------------------------------------------
asio::awaitable<void> sink_session(tcp::socket sock, shared_state& st) {
  beast::flat_buffer buf;
  beast::error_code ec;
  for (;;) {
    http::request<http::string_body> req;
    co_await http::async_read(sock, buf, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    const auto now = clock_type::now();
    if (auto it = req.find("Idempotency-Key"); it != req.end()) {
      std::string key(it->value());
      if (auto colon = key.rfind(':'); colon != std::string::npos) key.resize(colon);
      std::lock_guard lk(st.mu);
      st.received.emplace(std::move(key), now);
    }
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = "{}";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_await http::async_write(sock, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !req.keep_alive()) co_return;
  }
}

asio::awaitable<void> sink_accept(tcp::acceptor& acc, shared_state& st) {
  for (;;) {
    beast::error_code ec;
    tcp::socket s = co_await acc.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    s.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acc.get_executor(), sink_session(std::move(s), st), asio::detached);
  }
}

// --- the sender ------------------------------------------------------------------------
struct sender_state {
  std::deque<int> due;  // webhooks whose time has come, not yet sent
  bool finished = false;
  asio::steady_timer wake;  // idle connections wait on it (cancelled when work arrives)
  explicit sender_state(asio::any_io_executor ex) : wake(ex, clock_type::time_point::max()) {}
};

std::string run_id_of(const std::string& body) {
  constexpr std::string_view key = "\"runId\":\"";
  auto p = body.find(key);
  if (p == std::string::npos) return {};
  p += key.size();
  auto e = body.find('"', p);
  return e == std::string::npos ? std::string() : body.substr(p, e - p);
}

asio::awaitable<void> sender_conn(tcp::endpoint ep, std::string host, std::string target, sender_state& ss,
                                  shared_state& st) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket sock(ex);
  beast::error_code ec;
  co_await sock.async_connect(ep, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    std::lock_guard lk(st.mu);
    st.errors.push_back("connect: " + ec.message());
    co_return;
  }
  sock.set_option(tcp::no_delay(true), ec);
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, host);
  req.set(http::field::content_type, "application/json");
  req.body() = R"({"event":"e2e","comment":{"email":"ada@example.com"}})";
  req.prepare_payload();
  beast::flat_buffer buf;
  for (;;) {
    while (ss.due.empty() && !ss.finished) {
      co_await ss.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ss.due.empty()) co_return;
    ss.due.pop_front();
    co_await http::async_write(sock, req, asio::redirect_error(asio::use_awaitable, ec));
    http::response<http::string_body> res;
    if (!ec) co_await http::async_read(sock, buf, res, asio::redirect_error(asio::use_awaitable, ec));
    const auto now = clock_type::now();
    std::lock_guard lk(st.mu);
    if (ec) {
      st.errors.push_back("connection: " + ec.message());
      co_return;  // this connection is done; the others carry on
    }
    if (res.result() == http::status::ok) {
      if (auto id = run_id_of(res.body()); !id.empty()) st.acked.emplace(std::move(id), now);
      else st.errors.push_back("200 without a runId");
    } else {
      st.errors.push_back(std::to_string(res.result_int()));
    }
  }
}

// Hands webhook i to the connections at start + i/rate.
asio::awaitable<void> pacer(double rate, int total, sender_state& ss, clock_type::time_point& start, clock_type::time_point& end) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer t(ex);
  start = clock_type::now();
  for (int i = 0; i < total; ++i) {
    const auto at = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(i / rate));
    if (at > clock_type::now()) {
      t.expires_at(at);
      co_await t.async_wait(asio::use_awaitable);
    }
    ss.due.push_back(i);
    ss.wake.cancel();
  }
  ss.finished = true;
  ss.wake.cancel();
  end = clock_type::now();
}

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: e2e_load URL SINK_PORT RATE SECONDS [CONNECTIONS]\n");
    return 2;
  }
  const std::string url = argv[1];
  const auto sink_port = static_cast<unsigned short>(std::stoi(argv[2]));
  const double rate = std::stod(argv[3]);
  const double seconds = std::stod(argv[4]);
  const int conns = argc > 5 ? std::stoi(argv[5]) : 64;
  const std::string prefix = "http://";
  if (url.rfind(prefix, 0) != 0 || rate <= 0 || seconds <= 0 || conns < 1) {
    std::fprintf(stderr, "e2e_load: URL must be http://HOST:PORT/PATH, RATE, SECONDS and CONNECTIONS > 0\n");
    return 2;
  }
  const auto slash = url.find('/', prefix.size());
  const std::string hostport = url.substr(prefix.size(), slash - prefix.size());
  const std::string target = slash == std::string::npos ? "/" : url.substr(slash);
  const auto colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "e2e_load: URL needs a port\n");
    return 2;
  }
  const tcp::endpoint ep(asio::ip::make_address(hostport.substr(0, colon)),
                         static_cast<unsigned short>(std::stoi(hostport.substr(colon + 1))));

  shared_state st;
  asio::io_context sink_ioc;
  tcp::acceptor acc(sink_ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), sink_port), true);
  acc.listen(4096);
  asio::co_spawn(sink_ioc, sink_accept(acc, st), asio::detached);
  std::thread sink_thread([&] { sink_ioc.run(); });

  const int total = static_cast<int>(rate * seconds);
  asio::io_context send_ioc;
  sender_state ss(send_ioc.get_executor());
  clock_type::time_point start, end;
  for (int i = 0; i < conns; ++i) asio::co_spawn(send_ioc, sender_conn(ep, hostport, target, ss, st), asio::detached);
  asio::co_spawn(send_ioc, pacer(rate, total, ss, start, end), asio::detached);
  send_ioc.run();

  // Every acknowledged run should reach the sink; wait up to 30 s for the last ones.
  const auto deadline = clock_type::now() + 30s;
  for (;;) {
    {
      std::lock_guard lk(st.mu);
      std::size_t got = 0;
      for (const auto& [id, t] : st.acked) got += st.received.count(id);
      if (got >= st.acked.size()) break;
    }
    if (clock_type::now() > deadline) break;
    std::this_thread::sleep_for(50ms);
  }
  asio::post(sink_ioc, [&] { sink_ioc.stop(); });
  sink_thread.join();

  std::vector<double> lat;
  lat.reserve(st.acked.size());
  for (const auto& [id, t] : st.acked)
    if (auto it = st.received.find(id); it != st.received.end()) lat.push_back(ms(it->second - t));
  std::sort(lat.begin(), lat.end());
  const double took = std::chrono::duration<double>(end - start).count();
  std::printf("sent %d webhooks in %.1f s (%.0f/s), %zu answered 200, %zu other answers, %zu steps received by the sink\n",
              total, took, took > 0 ? total / took : 0.0, st.acked.size(), st.errors.size(), lat.size());
  if (!st.errors.empty()) std::printf("first other answer: %s\n", st.errors.front().c_str());
  if (!lat.empty()) {
    auto pct = [&](double p) { return lat[std::min(lat.size() - 1, static_cast<std::size_t>(p / 100 * (lat.size() - 1) + 0.5))]; };
    std::printf("latency 2xx -> sink: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", pct(50), pct(99), lat.back());
  }
  return lat.size() == st.acked.size() && st.acked.size() == static_cast<std::size_t>(total) ? 0 : 1;
}
