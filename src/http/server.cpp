#include "zapd/http/server.hpp"

#include <optional>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include "zapd/core/json.hpp"
#include "zapd/core/log.hpp"

namespace zapd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct server::connection {
  explicit connection(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  std::atomic<bool> idle{true};  // waiting for the first byte of a request
};

namespace {

constexpr std::size_t k_header_limit = 16 * 1024;
// After refusing a request early (413), read at most this much more so the client sees the
// answer instead of a reset, then close.
constexpr std::size_t k_drain_limit = 4 * 1024 * 1024;
constexpr std::chrono::seconds k_drain_time{2};

/// Moves the body out of `r`. A HEAD answer keeps the Content-Length of the GET, without a body.
bhttp::response<bhttp::string_body> to_beast(response& r, unsigned version, bool keep_alive, bool head) {
  bhttp::response<bhttp::string_body> m{static_cast<bhttp::status>(r.status), version};
  m.set(bhttp::field::server, "zapd");
  if (!r.content_type.empty()) m.set(bhttp::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) m.insert(k, v);
  m.body() = std::move(r.body);
  m.keep_alive(keep_alive);
  m.prepare_payload();
  // A 304 has no body, and a Content-Length on it would have to be the 200's (RFC 9110 8.6).
  if (r.status == 304) m.erase(bhttp::field::content_length);
  if (head) m.body().clear();
  return m;
}

// Errors Beast's parser reports for a malformed request (as opposed to I/O failures).
bool is_protocol_error(const beast::error_code& ec) { return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category(); }

/// The session's read buffer as Beast's parser sees it while it reads a request header,
/// watching the bytes the parser consumes for obs-fold (a header line starting with SP or
/// HTAB continues the previous one). Beast unfolds such lines silently, so they can only be
/// seen here. A DynamicBuffer (v1) over the `flat_buffer`; live for one async_read_header.
class fold_watch {
 public:
  using const_buffers_type = beast::flat_buffer::const_buffers_type;
  using mutable_buffers_type = beast::flat_buffer::mutable_buffers_type;

  explicit fold_watch(beast::flat_buffer& b) : b_(b) {}
  std::size_t size() const { return b_.size(); }
  std::size_t max_size() const { return b_.max_size(); }
  std::size_t capacity() const { return b_.capacity(); }
  const_buffers_type data() const { return b_.data(); }
  mutable_buffers_type prepare(std::size_t n) { return b_.prepare(n); }
  void commit(std::size_t n) { b_.commit(n); }
  void consume(std::size_t n) {
    // A flat buffer's readable bytes are one contiguous range.
    const auto d = b_.data();
    std::string_view consumed(static_cast<const char*>(d.data()), std::min(n, d.size()));
    for (char ch : consumed) {
      if (after_lf_ && (ch == ' ' || ch == '\t')) folded_ = true;
      after_lf_ = ch == '\n';
    }
    b_.consume(n);
  }
  bool folded() const { return folded_; }

 private:
  beast::flat_buffer& b_;
  bool after_lf_ = false;  // kept across calls: the parser may consume a header in pieces
  bool folded_ = false;
};

// A request a proxy in front of zapd could frame differently from Beast is refused (request
// smuggling): the only Transfer-Encoding taken is exactly `chunked`, never together with a
// Content-Length, and folded header lines are not unfolded. Empty when the header is fine.
std::string framing_problem(const bhttp::request<bhttp::string_body>& m, bool folded) {
  if (folded) return "folded header lines (obs-fold) are not accepted";
  auto [first, last] = m.equal_range(bhttp::field::transfer_encoding);
  if (first == last) return {};
  if (m.count(bhttp::field::content_length) > 0) return "a request must not have both Content-Length and Transfer-Encoding";
  // Beast trims the value's surrounding whitespace.
  if (std::next(first) != last || !beast::iequals(first->value(), "chunked"))
    return "Transfer-Encoding must be exactly chunked";
  return {};
}

}  // namespace

server::server(asio::io_context& ioc, const router& r, options opts) : server(ioc, {&ioc}, r, std::move(opts)) {}

server::server(asio::io_context& ioc, std::vector<asio::io_context*> conn_contexts, const router& r, options opts)
    : ioc_(ioc),
      conn_contexts_(std::move(conn_contexts)),
      router_(r),
      opts_(std::move(opts)),
      acceptor_(asio::make_strand(ioc)) {
  if (conn_contexts_.empty()) conn_contexts_.push_back(&ioc);
}

server::~server() = default;

result<std::uint16_t> server::start() {
  beast::error_code ec;
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) return make_error(errc::invalid_argument, fmt::format("server.listen: '{}' is not an IP address", opts_.host));
  tcp::endpoint ep{addr, opts_.port};
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(errc::unavailable, fmt::format("cannot listen on {}:{}: {}", opts_.host, opts_.port, ec.message()));
  auto port = acceptor_.local_endpoint().port();
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  return port;
}

void server::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  std::lock_guard lk(mu_);
  for (auto& w : conns_) {
    auto c = w.lock();
    if (!c || !c->idle) continue;
    // Close an idle connection on its own strand; a busy one closes after its answer.
    asio::post(c->stream.get_executor(), [c] {
      if (c->idle) c->stream.socket().close();
    });
  }
}

std::size_t server::active() const {
  std::lock_guard lk(mu_);
  std::size_t n = 0;
  for (const auto& w : conns_) n += w.expired() ? 0 : 1;
  return n;
}

asio::awaitable<void> server::accept_loop() {
  while (!stopping_) {
    asio::io_context& home = *conn_contexts_[next_context_++ % conn_contexts_.size()];
    auto [ec, sock] = co_await acceptor_.async_accept(asio::make_strand(home), use_tuple);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) break;
      log::warn("http.accept_failed", {{"error", ec.message()}});
      continue;
    }
    auto c = std::make_shared<connection>(std::move(sock));
    {
      std::lock_guard lk(mu_);
      conns_.remove_if([](const auto& w) { return w.expired(); });
      conns_.push_back(c);
    }
    asio::co_spawn(c->stream.get_executor(), session(c), asio::detached);
  }
}

namespace {

/// `text` as an address in canonical form, IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack
/// listener reports for IPv4 peers) as plain IPv4, so one client is one key; empty if malformed.
std::string canonical_ip(std::string_view text) {
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  beast::error_code ec;
  auto addr = asio::ip::make_address(std::string(text), ec);
  if (ec) return {};
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string();
  return addr.to_string();
}

}  // namespace

std::string client_address(const std::string& peer, std::string_view forwarded_for,
                           const std::function<bool(std::string_view)>& trusted) {
  std::string self = canonical_ip(peer);
  if (self.empty()) self = peer;
  if (!trusted || !trusted(self)) return self;
  // Walk from the right: each hop was appended by the proxy to its right, so the first
  // untrusted one is the client. If every hop is trusted, keep the rightmost (what the
  // nearest proxy saw): entries further left may have been written by the client itself.
  std::string rightmost;
  auto hops = forwarded_for.empty() ? std::vector<std::string_view>{} : split(forwarded_for, ',');
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    std::string ip = canonical_ip(*it);
    if (ip.empty()) return rightmost.empty() ? self : rightmost;
    if (!trusted(ip)) return ip;
    if (rightmost.empty()) rightmost = ip;
  }
  return rightmost.empty() ? self : rightmost;
}

std::string loggable_path(std::string_view target) {
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  // Anywhere and in any case: the router strips extra leading slashes, and a mistyped or
  // absolute-form URL still names the zap. A target without its leading slash
  // ("hooks/catch/u/z", which Beast accepts and the router routes; router_fuzz found it)
  // counts as starting at one.
  constexpr std::string_view hooks = "/hooks/catch/";
  auto cut_after_user = [&](std::size_t user_start) -> std::optional<std::string> {
    auto user_end = path.find('/', user_start);
    if (user_end == std::string_view::npos || user_end + 1 == path.size()) return std::nullopt;
    return std::string(path.substr(0, user_end + 1)) + "\u2026";
  };
  if (!path.empty() && path.front() != '/' && beast::iequals(path.substr(0, hooks.size() - 1), hooks.substr(1)))
    return cut_after_user(hooks.size() - 1).value_or(std::string(path));
  for (std::size_t i = 0; i + hooks.size() <= path.size(); ++i) {
    if (!beast::iequals(path.substr(i, hooks.size()), hooks)) continue;
    if (auto cut = cut_after_user(i + hooks.size())) return *cut;
    break;
  }
  return std::string(path);
}

namespace {
// A connection's read deadline (see session): one timer, re-armed for each request.
struct read_deadline {
  explicit read_deadline(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::uint64_t request = 0;  // the request being read; an expiry of an earlier one is ignored
  bool armed = false;         // false once the read is over
  bool fired = false;         // the expiry cancelled this request's read
};
}  // namespace

asio::awaitable<void> server::session(std::shared_ptr<connection> c) {
  beast::flat_buffer buf;
  std::string remote;
  {
    beast::error_code ec;
    auto ep = c->stream.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string();
  }
  auto deadline = std::make_shared<read_deadline>(c->stream.get_executor());
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(opts_.body_limit);
    parser.header_limit(k_header_limit);
    // Idle until a whole header has arrived: stop() may close the connection meanwhile.
    // Once the header is in, the request is in flight and gets its answer.
    c->idle = true;
    if (stopping_) break;
    // The read deadline is a timer of our own, not the stream's: Beast closes the socket when
    // its expiry fires, and a slow client is owed a 408 on it. The timer only cancels the
    // pending read (the connection's thread runs both, so the flags need no lock).
    c->stream.expires_never();
    const std::uint64_t reading = ++deadline->request;
    deadline->armed = true;
    deadline->fired = false;
    deadline->timer.expires_after(opts_.read_timeout);
    deadline->timer.async_wait([deadline, c, reading](const beast::error_code& e) {
      if (e || !deadline->armed || deadline->request != reading) return;
      deadline->fired = true;
      beast::error_code ignored;
      c->stream.socket().cancel(ignored);
    });
    fold_watch watched(buf);
    auto [ec, n] = co_await bhttp::async_read_header(c->stream, watched, parser, use_tuple);
    c->idle = false;
    std::string refused = ec ? std::string() : framing_problem(parser.get(), watched.folded());
    if (!ec && refused.empty() && !parser.is_done())
      std::tie(ec, n) = co_await bhttp::async_read(c->stream, buf, parser, use_tuple);
    deadline->armed = false;
    deadline->timer.cancel();
    if (deadline->fired && ec == asio::error::operation_aborted) ec = beast::error::timeout;
    auto started = std::chrono::steady_clock::now();

    std::optional<response> early;
    if (!refused.empty()) {
      early = error_response(errc::invalid_argument, refused);
    } else if ((ec == bhttp::error::bad_content_length && parser.get().count(bhttp::field::transfer_encoding) > 0) ||
               (ec == bhttp::error::bad_transfer_encoding && parser.get().count(bhttp::field::content_length) > 0)) {
      // Beast stops at the second of the two headers; name the pair, not just that one.
      early = error_response(errc::invalid_argument, "a request must not have both Content-Length and Transfer-Encoding");
    } else if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::bad_descriptor) {
      break;
    } else if (ec == bhttp::error::body_limit) {
      early = error_response(errc::payload_too_large,
                             fmt::format("request body exceeds the limit of {} bytes", opts_.body_limit));
    } else if (ec == bhttp::error::header_limit) {
      early = error_response(errc::headers_too_large, "request headers are too large");
    } else if (ec == beast::error::timeout) {
      if (!parser.got_some()) break;  // an idle keep-alive connection timed out: just close
      early = error_response(errc::timeout, "timed out reading the request");
    } else if (ec && is_protocol_error(ec)) {
      early = error_response(errc::invalid_argument, fmt::format("malformed HTTP request: {}", ec.message()));
    } else if (ec) {
      log::debug("http.read_failed", {{"error", ec.message()}});
      break;
    }

    if (early) {
      // The connection's framing is unknown after a parse error: answer and close.
      // A 413 is found once the headers are parsed, so method and target are known then.
      std::string method(parser.get().method_string());
      std::string target(parser.get().target());
      if (method.empty()) method = "-";
      if (target.empty()) target = "-";
      auto msg = to_beast(*early, 11, false, false);
      c->stream.expires_after(opts_.read_timeout);
      co_await bhttp::async_write(c->stream, msg, use_tuple);
      log::info("http.request", {{"method", method}, {"path", loggable_path(target)}, {"status", early->status},
                                 {"ms", 0}, {"remote", remote}});
      beast::error_code sec;
      c->stream.socket().shutdown(tcp::socket::shutdown_send, sec);
      if (early->status == 413) {
        // Drain what the client is still sending so it reads our answer, not a reset.
        c->stream.expires_after(k_drain_time);
        std::size_t drained = 0;
        std::array<char, 16 * 1024> scratch{};
        while (drained < k_drain_limit) {
          auto [rec, got] = co_await c->stream.async_read_some(asio::buffer(scratch), use_tuple);
          if (rec) break;
          drained += got;
        }
      }
      break;
    }

    request req;
    req.msg = parser.release();
    std::string_view target = req.msg.target();
    auto qpos = target.find('?');
    req.path = std::string(target.substr(0, qpos));
    if (qpos != std::string_view::npos) req.query = std::string(target.substr(qpos + 1));
    req.remote = remote;
    if (opts_.trusted_proxy) {
      // Several X-Forwarded-For lines are one list, in order (RFC 9110 5.3).
      std::string forwarded;
      for (auto [it, end] = req.msg.equal_range("X-Forwarded-For"); it != end; ++it) {
        if (!forwarded.empty()) forwarded += ',';
        forwarded += it->value();
      }
      req.remote = client_address(remote, forwarded, opts_.trusted_proxy);
    }
    req.started = started;

    response res = co_await router_.dispatch(req);
    bool keep_alive = req.msg.keep_alive() && !stopping_;
    auto msg = to_beast(res, req.msg.version(), keep_alive, req.msg.method() == bhttp::verb::head);
    c->stream.expires_after(opts_.read_timeout);
    auto [wec, wn] = co_await bhttp::async_write(c->stream, msg, use_tuple);
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    if (log::enabled(log::level::info))
      log::info("http.request", {{"method", std::string(req.msg.method_string())}, {"path", loggable_path(req.path)},
                                 {"status", res.status}, {"ms", fmt::format("{:.2f}", ms)}, {"remote", req.remote}});
    if (wec || !keep_alive) break;
  }
  beast::error_code ec;
  c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  c->stream.socket().close(ec);
}

}  // namespace zapd::http
