#pragma once

#include <functional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "zapd/http/message.hpp"

namespace zapd::http {

/// A route handler: a coroutine that never throws for expected failures (it returns an
/// error response); an exception becomes a logged 500.
using handler = std::function<boost::asio::awaitable<response>(request&)>;

/// Maps (method, path pattern) to handlers. Patterns are '/'-separated literals and
/// `{name}` segments; a final `{*name}` takes the rest of the path. A trailing slash on the
/// request path is ignored. Unknown path -> 404 JSON; known path, other method -> 405 JSON
/// with `Allow`. Built at start-up, then read-only (safe to share between threads).
class router {
 public:
  void add(bhttp::verb method, std::string pattern, handler h);
  /// Runs for a path no route matches (any method); without one that is a 404 JSON.
  void fallback(handler h) { fallback_ = std::move(h); }

  /// Finds the handler and runs it; fills `req.params`.
  boost::asio::awaitable<response> dispatch(request& req) const;

 private:
  struct route {
    bhttp::verb method;
    std::vector<std::string> segments;
    handler h;
  };
  static bool match(const route& r, const std::vector<std::string_view>& parts, std::map<std::string, std::string>& params);
  std::vector<route> routes_;
  handler fallback_;
};

}  // namespace zapd::http
