#include "zapd/http/message.hpp"

#include <fmt/format.h>

#include "zapd/core/json.hpp"

namespace zapd::http {

std::string request::header(std::string_view name) const {
  auto it = msg.find(boost::beast::string_view(name.data(), name.size()));
  if (it == msg.end()) return {};
  return std::string(it->value());
}

std::map<std::string, std::string> request::query_params() const {
  std::map<std::string, std::string> out;
  std::string_view q = query;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto k = percent_decode(pair.substr(0, eq), true);
    auto v = eq == std::string_view::npos ? std::optional<std::string>("") : percent_decode(pair.substr(eq + 1), true);
    if (k && v) out[*k] = *v;
  }
  return out;
}

response response::json(unsigned status, const nlohmann::json& j) {
  response r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

unsigned status_for(errc e) noexcept {
  switch (e) {
    case errc::ok: return 200;
    case errc::invalid_argument: return 400;
    case errc::unauthorized: return 401;
    case errc::forbidden: return 403;
    case errc::not_found: return 404;
    case errc::method_not_allowed: return 405;
    case errc::already_exists:
    case errc::disabled:
    case errc::invalid_state:
    case errc::lease_lost:
    case errc::constraint: return 409;
    case errc::schema_mismatch: return 500;
    case errc::timeout: return 408;
    case errc::headers_too_large: return 431;
    case errc::gone: return 410;
    case errc::payload_too_large: return 413;
    case errc::too_many_requests: return 429;
    case errc::overloaded: return 503;
    case errc::unavailable: return 503;
    case errc::internal: return 500;
  }
  return 500;
}

response error_response(const error& e, const std::optional<nlohmann::json>& details) {
  nlohmann::json err = {{"code", errc_name(e.code)}, {"message", e.message}};
  if (details) {
    err["details"] = *details;
  } else if (!e.details.empty()) {
    auto& list = err["details"] = nlohmann::json::array();
    for (const auto& d : e.details) list.push_back({{"path", d.path}, {"message", d.message}});
  }
  auto r = response::json(status_for(e.code), {{"error", err}});
  if (e.code == errc::overloaded) r.with_header("Retry-After", "1");
  return r;
}

response error_response(errc code, std::string message) { return error_response(make_error(code, std::move(message))); }

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

result<nlohmann::json> parse_json_body(const request& req) {
  if (req.body().empty()) return make_error(errc::invalid_argument, "request body is empty; expected JSON");
  return parse_json(req.body(), json_depth::api, "request body");
}

}  // namespace zapd::http
