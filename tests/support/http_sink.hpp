#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zapd::test {

/// One request the sink received, complete (headers and body).
struct sink_request {
  std::string method;
  std::string target;  // as sent: path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::steady_clock::time_point at;  // when the whole request had arrived
  std::uint64_t connection = 0;              // which TCP connection (1, 2, ...): shows keep-alive

  /// The first header named `name` (case-insensitive), "" if absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  /// `target` without the query string.
  std::string path() const;
};

/// How the sink answers. Build one with the factories, adjust with the modifiers:
///   sink_reply::json(R"({"id":1})")                 200 application/json
///   sink_reply::status(500)                         any status, empty body
///   sink_reply::too_many(std::chrono::seconds(7))   429 + Retry-After: 7
///   sink_reply::redirect("http://...")              302 + Location
///   sink_reply::hang()                              never answers (until the client gives up
///                                                   or the sink stops)
///   sink_reply::text("ok").after(200ms)             answers after a delay (async: thousands
///                                                   of delayed connections cost no thread)
struct sink_reply {
  int code = 200;
  std::string body = "ok";
  std::string content_type = "text/plain";
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};
  bool never = false;  // hang
  bool close = false;  // Connection: close after this answer

  static sink_reply text(std::string body, int code = 200);
  static sink_reply json(std::string body, int code = 200);
  static sink_reply status(int code, std::string body = "");
  static sink_reply too_many(std::chrono::seconds retry_after);
  static sink_reply redirect(std::string location, int code = 302);
  static sink_reply hang();

  sink_reply& header(std::string name, std::string value);
  sink_reply& after(std::chrono::milliseconds d);
  sink_reply& closing();
};

/// Computes the answer per request (runs on the sink thread; keep it quick and thread-safe).
using sink_responder = std::function<sink_reply(const sink_request&)>;

/// A real HTTP/1.1 server on 127.0.0.1:<ephemeral port> for tests of code that calls out.
///
/// Records every request and answers by the rule whose path prefix is the longest match of
/// the request's path (default: 200 "ok"). Rules can change while it runs. Keep-alive is
/// honoured, so a client's connection reuse is visible in `sink_request::connection`.
///
/// Lifecycle: listening when constructed (port() is valid at once), one thread of its own
/// running Beast sessions on one io_context. `stop()` (or the destructor) closes the listener
/// and every connection, hanging and delayed ones included (their clients see the connection
/// close), then joins. Threading: every member function is safe from any thread.
class http_sink {
 public:
  http_sink();
  ~http_sink();
  http_sink(const http_sink&) = delete;
  http_sink& operator=(const http_sink&) = delete;

  std::uint16_t port() const;
  /// "http://127.0.0.1:<port>" + target.
  std::string url(std::string_view target = "/") const;

  /// Answer requests whose path starts with `prefix` with `reply` / with what `fn` returns.
  void on(std::string prefix, sink_reply reply);
  void on(std::string prefix, sink_responder fn);

  /// Every request so far, in arrival order.
  std::vector<sink_request> requests() const;
  std::size_t count() const;
  /// TCP connections accepted so far (a refused client must leave this at 0).
  std::uint64_t connections() const;
  /// Waits until at least `n` requests have arrived; false on timeout.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  /// Closes the listener and all connections, joins the thread. Idempotent.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zapd::test
