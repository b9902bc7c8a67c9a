#include "zapd/outbound/http_client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <exception>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "zapd/core/json.hpp"
#include "zapd/core/log.hpp"
#include "zapd/outbound/curl_lazy.hpp"

namespace zapd::outbound {

namespace {

using clock = std::chrono::steady_clock;

/// Response headers kept per response; more is treated as a broken or hostile server.
constexpr std::size_t max_header_bytes = 64 * 1024;
constexpr std::size_t max_method_length = 32;
/// Refused addresses quoted in one message (a name can resolve to many).
constexpr std::size_t max_quoted_refusals = 3;
constexpr const char* user_agent = "zapd";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

bool has_header(const header_list& h, std::string_view name) {
  return std::any_of(h.begin(), h.end(), [&](const auto& kv) { return iequals(kv.first, name); });
}

errc code_for(failure_kind k) {
  switch (k) {
    case failure_kind::refused_by_policy: return errc::forbidden;
    case failure_kind::bad_request: return errc::invalid_argument;
    case failure_kind::none:
    case failure_kind::network:
    case failure_kind::timeout: break;
  }
  return errc::unavailable;
}

outcome failed(failure_kind k, std::string message) {
  return outcome{result<response>(make_error(code_for(k), std::move(message))), k};
}

/// Why `r` cannot be sent, or nothing.
std::optional<std::string> invalid(const request& r) {
  if (!is_token(r.method) || r.method.size() > max_method_length)
    return fmt::format("\"{}\" is not an HTTP method", r.method);
  CURLU* u = curl_url();
  auto rc = curl_url_set(u, CURLUPART_URL, r.url.c_str(), 0);
  std::optional<std::string> why;
  if (rc != CURLUE_OK) {
    why = fmt::format("\"{}\" is not a valid URL ({})", r.url, curl_url_strerror(rc));
  } else {
    char* scheme = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || scheme == nullptr ||
        !(iequals(scheme, "http") || iequals(scheme, "https"))) {
      why = fmt::format("\"{}\": only http and https URLs can be called", r.url);
    }
    curl_free(scheme);
  }
  curl_url_cleanup(u);
  if (why) return why;
  for (const auto& [name, value] : r.headers) {
    if (!is_token(name)) return fmt::format("\"{}\" is not a valid header name", name);
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      return fmt::format("the value of header {} contains a line break or NUL", name);
  }
  if (r.timeout.count() <= 0) return std::string("the timeout must be positive");
  if (r.max_redirects < 0) return std::string("max_redirects must not be negative");
  return std::nullopt;
}

/// The host of the URL libcurl is connecting for right now (it moves on with each redirect).
std::string current_host(CURL* easy) {
  char* url = nullptr;
  if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == nullptr) return {};
  std::string out;
  CURLU* u = curl_url();
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
    char* host = nullptr;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host != nullptr) out = host;
    curl_free(host);
  }
  curl_url_cleanup(u);
  return out;
}

}  // namespace

/// Finished requests' easy handles, for the next requests (taken by `send` on any thread,
/// given back on the driver thread). A handle keeps its options from the last request:
/// `configure` sets every option any request sets, on every request.
struct http_client::handle_pool {
  explicit handle_pool(std::size_t cap) : cap(cap) {}
  const std::size_t cap;
  std::mutex mu;
  std::vector<CURL*> idle;
  std::atomic<std::size_t> made{0};

  CURL* take() {
    {
      std::lock_guard lk(mu);
      if (!idle.empty()) {
        CURL* e = idle.back();
        idle.pop_back();
        return e;
      }
    }
    CURL* e = curl_easy_init();
    if (e != nullptr) ++made;
    return e;
  }

  void give(CURL* e) {
    // Nothing it points to outlives the request: clear what libcurl could touch before the
    // next request sets its own.
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, nullptr);
    {
      std::lock_guard lk(mu);
      if (idle.size() < cap) {
        idle.push_back(e);
        return;
      }
    }
    curl_easy_cleanup(e);
  }

  ~handle_pool() {
    for (CURL* e : idle) curl_easy_cleanup(e);
  }
};

namespace {

/// One request in flight: everything libcurl's callbacks write into and its options point to.
struct transfer {
  request req;
  response resp;
  http_client::callback cb;
  std::shared_ptr<const policy> rules;
  std::shared_ptr<http_client::handle_pool> handles;
  clock::time_point started = clock::now();
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {};
  std::size_t header_bytes = 0;
  bool headers_too_big = false;
  // Connect attempts of the current hop (reset when a response starts), for classification.
  int allowed_in_hop = 0;
  std::vector<std::string> refused_in_hop;

  ~transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);  // never handed to the driver: not reused
    curl_slist_free_all(headers);
  }
};

size_t on_body(char* data, size_t size, size_t n, void* userp) {
  auto* t = static_cast<transfer*>(userp);
  const size_t len = size * n;
  const size_t room = t->req.max_body - std::min(t->req.max_body, t->resp.body.size());
  if (len <= room) {
    t->resp.body.append(data, len);
    return len;
  }
  t->resp.body.append(data, room);
  t->resp.truncated = true;
  return CURL_WRITEFUNC_ERROR;  // stop reading: the body is as long as we keep
}

size_t on_header(char* data, size_t size, size_t n, void* userp) {
  auto* t = static_cast<transfer*>(userp);
  const size_t len = size * n;
  std::string_view line(data, len);
  if (line.starts_with("HTTP/")) {
    // A new response (after a 1xx or a redirect): keep only the last one's headers, and
    // what is connected next belongs to a new hop.
    t->resp.headers.clear();
    t->header_bytes = 0;
    t->allowed_in_hop = 0;
    t->refused_in_hop.clear();
  }
  t->header_bytes += len;
  if (t->header_bytes > max_header_bytes) {
    t->headers_too_big = true;
    return CURL_WRITEFUNC_ERROR;
  }
  if (line.starts_with("HTTP/")) return len;
  if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    // obs-fold: a continuation of the previous header's value.
    auto more = trim(line);
    if (!t->resp.headers.empty() && !more.empty()) {
      t->resp.headers.back().second.append(" ").append(more);
    }
    return len;
  }
  line = trim(line);
  auto colon = line.find(':');
  if (line.empty() || colon == std::string_view::npos) return len;
  t->resp.headers.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  return len;
}

/// CURLOPT_OPENSOCKETFUNCTION: the SSRF guard, on the exact address about to be connected.
curl_socket_t on_open_socket(void* userp, curlsocktype purpose, curl_sockaddr* addr) {
  auto* t = static_cast<transfer*>(userp);
  if (purpose != CURLSOCKTYPE_IPCXN) {
    t->refused_in_hop.emplace_back("a socket that is not an outgoing IP connection");
    return CURL_SOCKET_BAD;
  }
  auto ip = ip_address::from_sockaddr(&addr->addr, addr->addrlen);
  if (!ip) {
    t->refused_in_hop.push_back(fmt::format("an address of family {} (not IPv4 or IPv6)", addr->family));
    return CURL_SOCKET_BAD;
  }
  std::string host = t->rules->has_hosts() ? current_host(t->easy) : std::string();
  if (auto why = t->rules->refusal(*ip, host)) {
    t->refused_in_hop.push_back(std::move(*why));
    return CURL_SOCKET_BAD;
  }
  ++t->allowed_in_hop;
  int fd = ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

std::string refusal_message(const std::vector<std::string>& refused) {
  std::string list;
  for (std::size_t i = 0; i < refused.size() && i < max_quoted_refusals; ++i) {
    if (i > 0) list += ", ";
    list += refused[i];
  }
  if (refused.size() > max_quoted_refusals) list += fmt::format(" and {} more", refused.size() - max_quoted_refusals);
  return fmt::format("refused: {} (allow {} with {})", list, refused.size() == 1 ? "it" : "them", allow_key);
}

outcome classify_failure(const transfer& t, CURLcode code) {
  std::string detail = t.errbuf[0] != '\0' ? std::string(t.errbuf) : std::string(curl_easy_strerror(code));
  if (!t.refused_in_hop.empty() && t.allowed_in_hop == 0) {
    return failed(failure_kind::refused_by_policy, refusal_message(t.refused_in_hop));
  }
  if (t.headers_too_big) {
    return failed(failure_kind::network, fmt::format("network: the response headers exceed {} KiB", max_header_bytes / 1024));
  }
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return failed(failure_kind::timeout, fmt::format("timeout: no complete answer within {} ms ({})",
                                                       t.req.timeout.count(), detail));
    case CURLE_UNSUPPORTED_PROTOCOL:
      return failed(failure_kind::refused_by_policy,
                    fmt::format("refused: a redirect led to a URL that is not http or https ({})", detail));
    case CURLE_URL_MALFORMAT:
      return failed(failure_kind::bad_request, fmt::format("bad request: {}", detail));
    case CURLE_ABORTED_BY_CALLBACK:
      return failed(failure_kind::network, "network: aborted because outbound HTTP is shutting down");
    default:
      if (!t.refused_in_hop.empty()) {
        // Some addresses were refused, the others failed: say both, it is a network failure.
        detail += "; also " + refusal_message(t.refused_in_hop);
      }
      return failed(failure_kind::network, fmt::format("network: {}", detail));
  }
}

void deliver(http_client::callback& cb, outcome o) {
  if (!cb) return;
  try {
    cb(std::move(o));
  } catch (const std::exception& e) {
    log::error("outbound.http_callback_threw", {{"error", e.what()}});
  } catch (...) {
    log::error("outbound.http_callback_threw", {{"error", "unknown exception"}});
  }
}

/// On the driver thread, once the easy handle has left the multi handle.
void complete(const std::shared_ptr<transfer>& t, CURLcode code) {
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t->started);
  bool answered = code == CURLE_OK || (code == CURLE_WRITE_ERROR && t->resp.truncated && !t->headers_too_big);
  std::optional<outcome> o;
  if (answered) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    char* url = nullptr;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
    t->resp.status = status;
    t->resp.effective_url = url != nullptr ? url : t->req.url;
    t->resp.duration = elapsed;
    o.emplace(outcome{result<response>(std::move(t->resp)), failure_kind::none});
  } else {
    o.emplace(classify_failure(*t, code));
  }
  // Give the handle back before the callback: a callback that sends again may take it.
  t->handles->give(t->easy);
  t->easy = nullptr;
  deliver(t->cb, std::move(*o));
}

/// Sets every option on t->easy. Error: why the request cannot be sent.
std::optional<std::string> configure(transfer& t) {
  CURL* e = t.easy;
  const auto& r = t.req;
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption opt, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, value);
  };
  set(CURLOPT_URL, r.url.c_str());
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(CURLOPT_PROXY, "");  // "" = no proxy, even if http_proxy is set in the environment
  set(CURLOPT_FOLLOWLOCATION, r.follow_redirects ? 1L : 0L);
  set(CURLOPT_MAXREDIRS, static_cast<long>(r.max_redirects));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  set(CURLOPT_ERRORBUFFER, t.errbuf);
  set(CURLOPT_USERAGENT, user_agent);
  set(CURLOPT_WRITEFUNCTION, &on_body);
  set(CURLOPT_WRITEDATA, &t);
  set(CURLOPT_HEADERFUNCTION, &on_header);
  set(CURLOPT_HEADERDATA, &t);
  set(CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
  set(CURLOPT_OPENSOCKETDATA, &t);

  // The handle may come from an earlier request (http_client::handle_pool): each branch sets
  // the method from scratch. HTTPGET resets POST and NOBODY; POSTFIELDS selects POST.
  const bool head = r.method == "HEAD";
  const bool sends_body = !head && (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH");
  const char* custom = nullptr;
  if (head) {
    set(CURLOPT_HTTPGET, 1L);
    set(CURLOPT_NOBODY, 1L);
  } else if (sends_body) {
    set(CURLOPT_NOBODY, 0L);
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    set(CURLOPT_POSTFIELDS, r.body.data());
    if (r.method != "POST") custom = r.method.c_str();
  } else {
    set(CURLOPT_HTTPGET, 1L);
    if (r.method != "GET") custom = r.method.c_str();
  }
  set(CURLOPT_CUSTOMREQUEST, custom);

  for (const auto& [name, value] : r.headers) {
    // "Name;" is libcurl's way to send a header with an empty value.
    auto line = value.empty() ? name + ";" : name + ": " + value;
    t.headers = curl_slist_append(t.headers, line.c_str());
  }
  if (!has_header(r.headers, "Expect")) t.headers = curl_slist_append(t.headers, "Expect:");
  if (sends_body && !has_header(r.headers, "Content-Type")) {
    t.headers = curl_slist_append(t.headers, "Content-Type:");  // not libcurl's form-urlencoded guess
  }
  set(CURLOPT_HTTPHEADER, t.headers);
  if (rc != CURLE_OK) return fmt::format("cannot set up the transfer: {}", curl_easy_strerror(rc));
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view failure_name(failure_kind k) noexcept {
  switch (k) {
    case failure_kind::none: return "none";
    case failure_kind::network: return "network";
    case failure_kind::timeout: return "timeout";
    case failure_kind::refused_by_policy: return "refused_by_policy";
    case failure_kind::bad_request: return "bad_request";
  }
  return "network";
}

bool retryable(failure_kind k) noexcept { return k == failure_kind::network || k == failure_kind::timeout; }

http_client::http_client(driver& d, policy p, std::size_t kept_handles)
    : driver_(d), policy_(std::make_shared<const policy>(std::move(p))), handles_(std::make_shared<handle_pool>(kept_handles)) {}

std::size_t http_client::handles_made() const noexcept { return handles_->made.load(); }

status http_client::send(request r, callback cb) {
  auto t = std::make_shared<transfer>();
  t->req = std::move(r);
  t->cb = std::move(cb);
  t->rules = policy_;
  t->handles = handles_;

  if (auto why = curl_unavailable()) {
    // Not the request's fault, but nothing a retry fixes either: the step fails with it.
    auto bad = std::make_shared<outcome>(failed(failure_kind::bad_request, *why));
    return driver_.post([t, bad] { deliver(t->cb, std::move(*bad)); });
  }
  std::optional<std::string> why = invalid(t->req);
  if (!why) {
    t->easy = handles_->take();
    if (t->easy == nullptr) {
      why = "cannot create a transfer (out of memory?)";
    } else {
      why = configure(*t);
    }
  }
  if (why) {
    // Delivered like any other outcome: later, on the driver thread.
    auto bad = std::make_shared<outcome>(failed(failure_kind::bad_request, "bad request: " + *why));
    return driver_.post([t, bad] { deliver(t->cb, std::move(*bad)); });
  }
  CURL* easy = t->easy;
  return driver_.add(easy, [t](CURLcode code) { complete(t, code); });
}

}  // namespace zapd::outbound
