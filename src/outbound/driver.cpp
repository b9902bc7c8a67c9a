#include "zapd/outbound/driver.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "zapd/core/log.hpp"
#include "zapd/outbound/curl_lazy.hpp"

namespace zapd::outbound {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

template <class Fn, class... Args>
void guarded(std::string_view what, Fn& fn, Args&&... args) {
  try {
    fn(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    log::error("outbound.callback_threw", {{"callback", what}, {"error", e.what()}});
  } catch (...) {
    log::error("outbound.callback_threw", {{"callback", what}, {"error", "unknown exception"}});
  }
}

}  // namespace

struct driver::impl {
  /// One socket libcurl asked us to watch. The descriptor wraps curl's fd without owning
  /// it: `forget` releases it (deregistering it from epoll) before curl closes the fd.
  ///
  /// A connection's socket (`kept`) stays registered while the connection waits idle in
  /// curl's pool: curl says CURL_POLL_REMOVE when a transfer ends and asks again when the
  /// next one starts on that connection, and registering it anew each time cost three
  /// epoll_ctl calls and an ioctl per request (docs/BENCHMARKS.md, twelfth pass). That is
  /// safe because every wait Asio starts re-arms the descriptor with EPOLL_CTL_MOD, which
  /// reports a readiness that is already there (nothing depends on an edge seen while idle),
  /// and because curl (7.88) closes a connection's socket, once connected, only through
  /// CURLOPT_CLOSESOCKETFUNCTION (on_close_socket, which forgets it first). A socket still
  /// connecting is closed with a plain close() when its attempt fails or times out (and so is
  /// a happy-eyeballs loser), and curl only ever watches such a socket for writing; so a
  /// socket is kept only once curl has asked to read from it (a TCP socket, then: the
  /// connection's own). Every other socket (connecting ones, the threaded resolver's
  /// socketpair) is forgotten at CURL_POLL_REMOVE, as before: its fd number may already
  /// belong to the next socket.
  struct watch {
    explicit watch(asio::io_context& io, curl_socket_t s) : desc(io), fd(s) {}
    ~watch() {
      if (desc.is_open()) (void)desc.release();
    }
    asio::posix::stream_descriptor desc;
    curl_socket_t fd;
    int want = 0;          // CURL_POLL_IN / CURL_POLL_OUT bits
    bool reading = false;  // an async_wait(read) is pending
    bool writing = false;
    bool gone = false;     // curl said CURL_POLL_REMOVE or closed it
    bool tcp = false;      // a stream socket of AF_INET or AF_INET6 (is_tcp)
    bool kept = false;     // a TCP socket curl has read from: registered until curl closes it
  };

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  asio::steady_timer timer{io};        // libcurl's single timeout
  bool timer_armed = false;            // `timer` has a wait pending (driver thread only)
  bool timeout_posted = false;         // a 0 ms timeout is queued for the next turn
  asio::steady_timer grace_timer{io};  // stop(grace)
  options opts;
  // Made by the first start() on the driver thread, not by the constructor: loading libcurl
  // (src/outbound/curl_lazy.cpp) waits until the first transfer. Null until then, after
  // finish(), or when libcurl could not be loaded / the multi handle could not be made.
  CURLM* multi = nullptr;
  std::unordered_map<CURL*, done_fn> transfers;
  std::unordered_map<curl_socket_t, std::shared_ptr<watch>> watches;
  bool draining = false;  // stop() began: finish when the last transfer is done
  bool finished = false;  // everything aborted and closed; new starts complete at once

  std::mutex mu;
  bool stopping = false;  // guarded by mu: refuse add/post
  std::atomic<std::size_t> in_flight{0};
  std::atomic<std::size_t> registrations{0};
  std::mutex join_mu;
  std::thread thread;

  // --- libcurl callbacks (driver thread) ---

  static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
    auto* self = static_cast<impl*>(userp);
    if (what == CURL_POLL_REMOVE) {
      auto it = self->watches.find(s);
      if (it != self->watches.end() && it->second->kept) {
        it->second->want = 0;  // idle in curl's pool: a pending wait that fires is ignored
        return 0;
      }
      self->forget(s);
      return 0;
    }
    auto& w = self->watches[s];
    if (!w) {
      w = std::make_shared<watch>(self->io, s);
      error_code ec;
      w->desc.assign(s, ec);
      if (ec) {
        // Unwatchable: the transfer will end by its own timeout rather than hang forever.
        log::error("outbound.watch_failed", {{"fd", s}, {"error", ec.message()}});
        self->watches.erase(s);
        return 0;
      }
      w->tcp = is_tcp(s);
      ++self->registrations;
    }
    if ((what & CURL_POLL_IN) && w->tcp) w->kept = true;
    w->want = what;
    self->arm(w);
    return 0;
  }

  // libcurl moves its one timeout several times per transfer. Re-arming an Asio timer is a
  // timerfd_settime syscall each time (17 % of the driver's CPU at 7k requests/s), so: 0 ms
  // is a post to the next turn, a timer already due no later than the new deadline is kept
  // (an early CURL_SOCKET_TIMEOUT is harmless: curl then reports the timeout that is left),
  // and "no timeout" (-1) leaves a pending wake-up in place for the same reason.
  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<impl*>(userp);
    if (timeout_ms < 0) return 0;
    // Never call back into curl from here: run it from the io loop.
    if (timeout_ms == 0) {
      if (!self->timeout_posted) {
        self->timeout_posted = true;
        asio::post(self->io, [self] {
          self->timeout_posted = false;
          self->socket_action(CURL_SOCKET_TIMEOUT, 0);
          self->ensure_timer();
        });
      }
      return 0;
    }
    const auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    if (self->timer_armed && self->timer.expiry() <= due) return 0;
    self->timer_armed = true;
    self->timer.expires_at(due);
    self->timer.async_wait([self](const error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      self->timer_armed = false;
      self->socket_action(CURL_SOCKET_TIMEOUT, 0);
      self->ensure_timer();
    });
    return 0;
  }

  // After a timeout-driven action, a wake-up must be pending whenever curl has a deadline.
  // libcurl reports its deadline again after CURL_SOCKET_TIMEOUT today; this asks it
  // directly instead of relying on that.
  void ensure_timer() {
    if (multi == nullptr || timer_armed || timeout_posted) return;
    long ms = -1;
    if (curl_multi_timeout(multi, &ms) != CURLM_OK || ms < 0) return;
    on_timer(multi, ms, this);
  }

  // A TCP socket. Not a UDP one: a libcurl built with c-ares reads its DNS sockets (closed
  // by c-ares, no callback), and HTTP/3 runs over UDP.
  static bool is_tcp(curl_socket_t s) {
    int domain = 0;
    int type = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(s, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return false;
    len = sizeof type;
    if (::getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return false;
    return (domain == AF_INET || domain == AF_INET6) && type == SOCK_STREAM;
  }

  static int on_close_socket(void* clientp, curl_socket_t s) {
    static_cast<impl*>(clientp)->forget(s);
    return ::close(s);
  }

  // --- the loop (driver thread) ---

  void arm(const std::shared_ptr<watch>& w) {
    if ((w->want & CURL_POLL_IN) && !w->reading) {
      w->reading = true;
      w->desc.async_wait(asio::posix::stream_descriptor::wait_read,
                         [this, w](const error_code& ec) { on_ready(w, CURL_CSELECT_IN, ec); });
    }
    if ((w->want & CURL_POLL_OUT) && !w->writing) {
      w->writing = true;
      w->desc.async_wait(asio::posix::stream_descriptor::wait_write,
                         [this, w](const error_code& ec) { on_ready(w, CURL_CSELECT_OUT, ec); });
    }
  }

  void on_ready(const std::shared_ptr<watch>& w, int direction, const error_code& ec) {
    const int wanted = direction == CURL_CSELECT_IN ? CURL_POLL_IN : CURL_POLL_OUT;
    (direction == CURL_CSELECT_IN ? w->reading : w->writing) = false;
    if (w->gone || ec == asio::error::operation_aborted) return;
    // curl may have lost interest in this direction while the wait was pending.
    if (!(w->want & wanted)) return;
    socket_action(w->fd, ec ? CURL_CSELECT_ERR : direction);
    // After an error, wait only when curl asks again: re-arming at once could fail at once,
    // again and again (a wait on a descriptor epoll no longer knows fails with ENOENT).
    if (!w->gone && !ec) arm(w);
  }

  void forget(curl_socket_t s) {
    auto it = watches.find(s);
    if (it == watches.end()) return;
    auto w = std::move(it->second);
    watches.erase(it);
    w->gone = true;
    if (w->desc.is_open()) (void)w->desc.release();  // pending waits complete with operation_aborted
  }

  void socket_action(curl_socket_t s, int events) {
    if (multi == nullptr) return;
    int running = 0;
    auto rc = curl_multi_socket_action(multi, s, events, &running);
    if (rc != CURLM_OK) log::error("outbound.socket_action_failed", {{"error", curl_multi_strerror(rc)}});
    reap();
  }

  void reap() {
    int left = 0;
    while (multi != nullptr) {
      CURLMsg* m = curl_multi_info_read(multi, &left);
      if (m == nullptr) break;
      if (m->msg != CURLMSG_DONE) continue;
      CURL* easy = m->easy_handle;
      CURLcode code = m->data.result;  // read before remove_handle frees the message
      complete(easy, code);
    }
    if (draining && transfers.empty()) finish();
  }

  void complete(CURL* easy, CURLcode code) {
    curl_multi_remove_handle(multi, easy);
    auto it = transfers.find(easy);
    if (it == transfers.end()) return;
    auto done = std::move(it->second);
    transfers.erase(it);
    deliver(done, code);
  }

  void deliver(done_fn& done, CURLcode code) {
    --in_flight;
    if (done) guarded("done", done, code);
  }

  void start(CURL* easy, done_fn done) {
    if (finished) {
      deliver(done, CURLE_ABORTED_BY_CALLBACK);
      return;
    }
    if (multi == nullptr && !make_multi()) {
      deliver(done, CURLE_FAILED_INIT);
      return;
    }
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &impl::on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
    auto rc = curl_multi_add_handle(multi, easy);
    if (rc != CURLM_OK) {
      log::error("outbound.add_failed", {{"error", curl_multi_strerror(rc)}});
      deliver(done, CURLE_FAILED_INIT);
      return;
    }
    transfers.emplace(easy, std::move(done));
  }

  /// The multi handle, on the first transfer (driver thread). False when it cannot be made
  /// (libcurl could not be loaded, or out of memory): that transfer fails, the next tries again.
  bool make_multi() {
    if (auto why = curl_unavailable()) {
      log::error("outbound.no_multi", {{"error", *why}});
      return false;
    }
    multi = curl_multi_init();
    if (multi == nullptr) {
      log::error("outbound.no_multi", {{"error", "curl_multi_init failed"}});
      return false;
    }
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &impl::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &impl::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    if (opts.max_total_connections > 0)
      curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts.max_total_connections);
    if (opts.max_host_connections > 0) curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, opts.max_host_connections);
    if (opts.max_idle_connections > 0) curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, opts.max_idle_connections);
    return true;
  }

  void begin_stop(std::chrono::milliseconds grace) {
    draining = true;
    if (transfers.empty() || grace.count() <= 0) {
      finish();
      return;
    }
    grace_timer.expires_after(grace);
    grace_timer.async_wait([this](const error_code& ec) {
      if (ec != asio::error::operation_aborted) finish();
    });
  }

  /// Aborts what is left, closes every connection, lets the io loop run dry.
  void finish() {
    if (finished) return;
    finished = true;
    auto left = std::move(transfers);
    transfers.clear();
    for (auto& [easy, done] : left) curl_multi_remove_handle(multi, easy);  // left is empty without a multi
    for (auto& [easy, done] : left) deliver(done, CURLE_ABORTED_BY_CALLBACK);
    timer.cancel();
    grace_timer.cancel();
    if (multi != nullptr) {  // never made when no transfer ever started: curl stays unloaded
      curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, nullptr);
      curl_multi_cleanup(multi);  // closes cached connections (through on_close_socket)
      multi = nullptr;
    }
    for (auto& [fd, w] : watches) {
      w->gone = true;
      if (w->desc.is_open()) (void)w->desc.release();
    }
    watches.clear();
    guard.reset();
  }

  void run() {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        log::error("outbound.loop_threw", {{"error", e.what()}});
      }
    }
  }
};

driver::driver() : driver(options{}) {}

driver::driver(options opts) : impl_(std::make_unique<impl>()) {
  auto& d = *impl_;
  d.opts = opts;  // the multi handle is made on the driver thread by the first transfer
  d.thread = std::thread([&d] { d.run(); });
}

driver::~driver() { stop(); }

status driver::add(CURL* easy, done_fn done) {
  auto& d = *impl_;
  if (easy == nullptr) return make_error(errc::invalid_argument, "no easy handle");
  std::lock_guard lk(d.mu);
  if (d.stopping) return make_error(errc::unavailable, "outbound transfers are shutting down");
  ++d.in_flight;
  // Posted under the lock so that nothing accepted can be queued behind stop()'s begin_stop.
  asio::post(d.io, [&d, easy, done = std::move(done)]() mutable { d.start(easy, std::move(done)); });
  return {};
}

status driver::post(std::function<void()> fn) {
  auto& d = *impl_;
  std::lock_guard lk(d.mu);
  if (d.stopping) return make_error(errc::unavailable, "outbound transfers are shutting down");
  asio::post(d.io, [fn = std::move(fn)]() mutable { guarded("post", fn); });
  return {};
}

std::size_t driver::in_flight() const noexcept { return impl_->in_flight.load(); }

std::size_t driver::registrations() const noexcept { return impl_->registrations.load(); }

void driver::stop(std::chrono::milliseconds grace) {
  auto& d = *impl_;
  {
    std::lock_guard lk(d.mu);
    if (!d.stopping) {
      d.stopping = true;
      asio::post(d.io, [&d, grace] { d.begin_stop(grace); });
    }
  }
  if (std::this_thread::get_id() == d.thread.get_id()) return;  // from a callback: cannot wait for itself
  std::lock_guard jl(d.join_mu);
  if (d.thread.joinable()) d.thread.join();
}

}  // namespace zapd::outbound
