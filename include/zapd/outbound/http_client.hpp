#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/outbound/driver.hpp"
#include "zapd/outbound/policy.hpp"

namespace zapd::outbound {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One outbound HTTP request (an action's call to a user's URL).
struct request {
  std::string method = "GET";  // any token; HEAD sends no body and reads none
  std::string url;             // http:// or https:// only
  header_list headers;         // sent as given; an empty value sends an empty header
  std::string body;            // sent for every method when not empty, and always for POST/PUT/PATCH
  std::chrono::milliseconds timeout{30'000};  // the whole exchange, redirects included
  bool follow_redirects = false;
  int max_redirects = 5;
  std::size_t max_body = 256 * 1024;  // bytes of response body kept; see response::truncated
};

/// What the server answered. Any status is a response: a 500 or a 410 is not a failure here
/// (whether to retry it is the caller's decision).
struct response {
  long status = 0;
  header_list headers;  // of the last response only when redirects were followed
  std::string body;
  /// The body was longer than max_body: `body` holds its first max_body bytes and the
  /// transfer was cut there (the connection is closed, not drained, so an endless or huge
  /// body costs at most max_body of memory and no more bandwidth).
  bool truncated = false;
  std::chrono::milliseconds duration{};  // from send() to the callback
  std::string effective_url;             // after redirects

  /// The first header named `name` (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
};

/// Why a request produced no response.
enum class failure_kind {
  none,               // not a failure: a response arrived
  network,            // DNS, connect, TLS, reset, shutting down...: retry later
  timeout,            // request.timeout passed: retry later
  refused_by_policy,  // the SSRF guard refused every address (or a non-http redirect): do not retry
  bad_request,        // the request itself is invalid (URL, method, header), or libcurl could
                      // not be loaded (curl_lazy.hpp): do not retry
};

std::string_view failure_name(failure_kind k) noexcept;

/// Whether a failure of this kind may succeed if tried again (network errors and timeouts).
bool retryable(failure_kind k) noexcept;

/// What the callback receives: `res` holds the response or the error, and `kind` says which
/// failure it was (`none` exactly when `res` holds a response). Error messages start with
/// the kind and say what to do, e.g. "refused: 127.0.0.1 is a loopback address (allow it
/// with actions.http.allow)". Error codes: network/timeout -> unavailable, refused_by_policy
/// -> forbidden, bad_request -> invalid_argument.
struct outcome {
  result<response> res;
  failure_kind kind = failure_kind::none;

  bool ok() const noexcept { return res.ok(); }
  bool retryable() const noexcept { return outbound::retryable(kind); }
};

/// Asynchronous HTTP(S) over a `driver`, behind the SSRF `policy`.
///
/// Every request has an easy handle to itself while it runs (a finished request's handle is
/// kept for a later one, up to `kept_handles`, ~16 KiB each: making and freeing one per
/// request was 3 % of the drain's CPU; every option below is set again on it for each
/// request), with: http/https only (redirects too), no proxy
/// (environment proxies would bypass the address check), no signals, the request's total
/// timeout, redirects only when asked, `Expect: 100-continue` off, no default Content-Type,
/// response headers and body captured (body up to max_body), and the policy checked in
/// CURLOPT_OPENSOCKETFUNCTION on every address libcurl is about to connect to (each address
/// a name resolves to, each redirect hop). A refused address never sees a packet.
///
/// Lifecycle: needs the driver to outlive it and every callback. Threading: `send` is safe
/// from any thread; callbacks run on the driver thread and must not block.
class http_client {
 public:
  using callback = std::function<void(outcome)>;

  /// `kept_handles`: finished requests' easy handles kept for the next requests; as many as
  /// run at once (the worker's slots) lets every request of a steady load reuse one.
  http_client(driver& d, policy p, std::size_t kept_handles = 32);

  /// Starts `r`. Ok: `cb` will be called exactly once on the driver thread, with a response
  /// or a failure (invalid requests too, as bad_request; so is "libcurl could not be loaded:
  /// ..."). The first send loads libcurl (curl_lazy.hpp). Error (`unavailable`: the driver is
  /// stopping): nothing was started and `cb` will not be called.
  status send(request r, callback cb);

  /// Easy handles made so far (a request reuses a finished request's handle when one is kept).
  std::size_t handles_made() const noexcept;

  /// The kept handles (http_client.cpp); declared here for the requests in flight, which
  /// hold it so that a handle can be given back after the client is gone.
  struct handle_pool;

 private:
  driver& driver_;
  std::shared_ptr<const policy> policy_;
  std::shared_ptr<handle_pool> handles_;
};

}  // namespace zapd::outbound
