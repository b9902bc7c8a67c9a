#include "http_sink.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace zapd::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::uint64_t request_body_limit = 64ull * 1024 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string sink_request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return "";
}

bool sink_request::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& kv) { return iequals(kv.first, name); });
}

std::string sink_request::path() const { return target.substr(0, target.find('?')); }

sink_reply sink_reply::text(std::string body, int code) {
  sink_reply r;
  r.code = code;
  r.body = std::move(body);
  return r;
}

sink_reply sink_reply::json(std::string body, int code) {
  auto r = text(std::move(body), code);
  r.content_type = "application/json";
  return r;
}

sink_reply sink_reply::status(int code, std::string body) { return text(std::move(body), code); }

sink_reply sink_reply::too_many(std::chrono::seconds retry_after) {
  auto r = text("slow down", 429);
  r.header("Retry-After", std::to_string(retry_after.count()));
  return r;
}

sink_reply sink_reply::redirect(std::string location, int code) {
  auto r = text("", code);
  r.header("Location", std::move(location));
  return r;
}

sink_reply sink_reply::hang() {
  sink_reply r;
  r.never = true;
  return r;
}

sink_reply& sink_reply::header(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

sink_reply& sink_reply::after(std::chrono::milliseconds d) {
  delay = d;
  return *this;
}

sink_reply& sink_reply::closing() {
  close = true;
  return *this;
}

struct http_sink::impl {
  struct session;

  // Shared with test threads (mu).
  mutable std::mutex mu;
  mutable std::condition_variable arrived;
  std::vector<sink_request> received;
  std::vector<std::pair<std::string, sink_responder>> rules;
  std::atomic<std::uint64_t> accepted{0};

  // Sink thread only. Declared before `io` so they outlive the handlers io destroys.
  bool stopping = false;
  std::uint64_t next_id = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<session>> sessions;

  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::uint16_t port = 0;
  std::thread thread;
  std::mutex stop_mu;
  bool stopped = false;

  struct session : std::enable_shared_from_this<session> {
    session(impl& o, tcp::socket s, std::uint64_t i) : owner(o), sock(std::move(s)), timer(o.io), id(i) {}
    ~session() { owner.sessions.erase(id); }

    impl& owner;
    tcp::socket sock;
    asio::steady_timer timer;
    std::uint64_t id;
    beast::flat_buffer buf;
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> res;
    bool keep_alive = false;
    std::array<char, 1024> scratch{};

    void read() {
      parser.emplace();
      parser->body_limit(request_body_limit);
      http::async_read(sock, buf, *parser,
                       [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(const error_code& ec) {
      if (ec || owner.stopping) {
        close();
        return;
      }
      auto req = parser->release();
      sink_request r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& f : req) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      r.body = std::move(req.body());
      r.at = std::chrono::steady_clock::now();
      r.connection = id;
      auto reply = owner.decide(r);
      owner.record(std::move(r));
      if (reply.never) {
        wait_for_close();
        return;
      }
      keep_alive = req.keep_alive() && !reply.close;
      res = {};
      res.version(req.version());
      res.result(static_cast<unsigned>(reply.code));
      res.set(http::field::server, "zapd-test-sink");
      res.set(http::field::content_type, reply.content_type);
      for (auto& [k, v] : reply.headers) res.insert(k, v);
      res.body() = std::move(reply.body);
      res.keep_alive(keep_alive);
      res.prepare_payload();
      if (req.method() == http::verb::head) res.body().clear();  // keeps the Content-Length
      if (reply.delay.count() > 0) {
        timer.expires_after(reply.delay);
        timer.async_wait([self = shared_from_this()](const error_code& e) {
          if (e || self->owner.stopping) {
            self->close();
            return;
          }
          self->write();
        });
        return;
      }
      write();
    }

    void write() {
      http::async_write(sock, res, [self = shared_from_this()](const error_code& ec, std::size_t) {
        if (ec || !self->keep_alive || self->owner.stopping) {
          self->close();
          return;
        }
        self->read();
      });
    }

    /// A hanging request: read (and drop) whatever comes until the client closes or we stop.
    void wait_for_close() {
      sock.async_read_some(asio::buffer(scratch), [self = shared_from_this()](const error_code& ec, std::size_t) {
        if (ec || self->owner.stopping) {
          self->close();
          return;
        }
        self->wait_for_close();
      });
    }

    void close() {
      error_code ignored;
      timer.cancel();
      sock.shutdown(tcp::socket::shutdown_both, ignored);
      sock.close(ignored);
    }
  };

  sink_reply decide(const sink_request& r) {
    sink_responder fn;
    {
      std::lock_guard lk(mu);
      auto path = r.path();
      std::size_t best = 0;
      for (const auto& [prefix, responder] : rules) {
        if (path.starts_with(prefix) && (!fn || prefix.size() >= best)) {
          fn = responder;
          best = prefix.size();
        }
      }
    }
    return fn ? fn(r) : sink_reply{};
  }

  void record(sink_request r) {
    {
      std::lock_guard lk(mu);
      received.push_back(std::move(r));
    }
    arrived.notify_all();
  }

  void accept() {
    acceptor.async_accept([this](const error_code& ec, tcp::socket s) {
      if (stopping) return;
      if (!ec) {
        ++accepted;
        auto id = ++next_id;
        auto sess = std::make_shared<session>(*this, std::move(s), id);
        sessions.emplace(id, sess);
        sess->read();
      }
      accept();
    });
  }
};

http_sink::http_sink() : impl_(std::make_unique<impl>()) {
  auto& d = *impl_;
  d.rules.emplace_back("", [](const sink_request&) { return sink_reply{}; });
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  d.acceptor.open(ep.protocol());
  d.acceptor.set_option(tcp::acceptor::reuse_address(true));
  d.acceptor.bind(ep);
  d.acceptor.listen(asio::socket_base::max_listen_connections);
  d.port = d.acceptor.local_endpoint().port();
  d.accept();
  d.thread = std::thread([&d] { d.io.run(); });
}

http_sink::~http_sink() { stop(); }

std::uint16_t http_sink::port() const { return impl_->port; }

std::string http_sink::url(std::string_view target) const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + std::string(target);
}

void http_sink::on(std::string prefix, sink_reply reply) {
  on(std::move(prefix), [reply = std::move(reply)](const sink_request&) { return reply; });
}

void http_sink::on(std::string prefix, sink_responder fn) {
  std::lock_guard lk(impl_->mu);
  auto& rules = impl_->rules;
  auto it = std::find_if(rules.begin(), rules.end(), [&](const auto& r) { return r.first == prefix; });
  if (it != rules.end()) {
    it->second = std::move(fn);
  } else {
    rules.emplace_back(std::move(prefix), std::move(fn));
  }
}

std::vector<sink_request> http_sink::requests() const {
  std::lock_guard lk(impl_->mu);
  return impl_->received;
}

std::size_t http_sink::count() const {
  std::lock_guard lk(impl_->mu);
  return impl_->received.size();
}

std::uint64_t http_sink::connections() const { return impl_->accepted.load(); }

bool http_sink::wait_for(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lk(impl_->mu);
  return impl_->arrived.wait_for(lk, timeout, [&] { return impl_->received.size() >= n; });
}

void http_sink::stop() {
  auto& d = *impl_;
  std::lock_guard lk(d.stop_mu);
  if (d.stopped) return;
  d.stopped = true;
  asio::post(d.io, [&d] {
    d.stopping = true;
    error_code ignored;
    d.acceptor.close(ignored);
    std::vector<std::shared_ptr<impl::session>> live;  // closing may end sessions: collect first
    for (auto& [id, weak] : d.sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) s->close();
  });
  if (d.thread.joinable()) d.thread.join();
}

}  // namespace zapd::test
