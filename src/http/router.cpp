#include "zapd/http/router.hpp"

#include <fmt/format.h>

#include "zapd/core/log.hpp"
#include "zapd/http/server.hpp"

namespace zapd::http {
namespace {

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  while (!p.empty()) {
    auto slash = p.find('/');
    out.push_back(p.substr(0, slash));
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

void router::add(bhttp::verb method, std::string pattern, handler h) {
  route r{method, {}, std::move(h)};
  for (auto s : split_path(pattern)) r.segments.emplace_back(s);
  routes_.push_back(std::move(r));
}

bool router::match(const route& r, const std::vector<std::string_view>& parts, std::map<std::string, std::string>& params) {
  params.clear();
  std::size_t i = 0;
  for (; i < r.segments.size(); ++i) {
    const std::string& seg = r.segments[i];
    if (seg.starts_with("{*")) {
      std::string rest;
      for (std::size_t j = i; j < parts.size(); ++j) {
        if (j > i) rest += '/';
        rest += parts[j];
      }
      params[seg.substr(2, seg.size() - 3)] = rest;
      return true;
    }
    if (i >= parts.size()) return false;
    if (seg.front() == '{') {
      auto decoded = percent_decode(parts[i], false);
      if (!decoded) return false;
      params[seg.substr(1, seg.size() - 2)] = *decoded;
    } else if (seg != parts[i]) {
      return false;
    }
  }
  return i == parts.size();
}

boost::asio::awaitable<response> router::dispatch(request& req) const {
  auto parts = split_path(req.path);
  std::vector<std::string> allowed;
  const route* found = nullptr;
  std::map<std::string, std::string> params;
  for (const auto& r : routes_) {
    if (!match(r, parts, params)) continue;
    if (r.method == req.msg.method()) {
      found = &r;
      break;
    }
    allowed.emplace_back(bhttp::to_string(r.method));
  }
  const handler* h = found ? &found->h : nullptr;
  if (!found && allowed.empty() && fallback_) {
    h = &fallback_;
    params.clear();
  } else if (!found) {
    if (allowed.empty()) co_return error_response(errc::not_found, fmt::format("no route for {}", req.path));
    auto res = error_response(errc::method_not_allowed,
                              fmt::format("{} is not allowed on {}; allowed: {}", std::string(req.msg.method_string()),
                                          req.path, fmt::join(allowed, ", ")));
    res.with_header("Allow", fmt::format("{}", fmt::join(allowed, ", ")));
    co_return res;
  }
  req.params = std::move(params);
  try {
    co_return co_await (*h)(req);
  } catch (const std::exception& e) {
    log::error("http.handler_threw", {{"path", loggable_path(req.path)}, {"error", e.what()}});
  }
  co_return error_response(errc::internal, "internal error");
}

}  // namespace zapd::http
