#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"

namespace zapd::http {

namespace bhttp = boost::beast::http;

/// One parsed request as handlers see it: the Beast message plus what routing found.
struct request {
  bhttp::request<bhttp::string_body> msg;
  std::string path;                           // percent-encoded path, no query
  std::string query;                          // raw query string, without '?'
  std::map<std::string, std::string> params;  // route parameters, decoded
  std::string remote;                         // peer address
  std::chrono::steady_clock::time_point started;

  /// Header value or empty.
  std::string header(std::string_view name) const;
  /// Decoded query parameters (last one wins for repeated names).
  std::map<std::string, std::string> query_params() const;
  const std::string& body() const { return msg.body(); }
};

/// A response under construction; the session turns it into a Beast message.
struct response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static response json(unsigned status, const nlohmann::json& j);
  response& with_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

/// `errc` -> HTTP status: the one place that mapping lives.
unsigned status_for(errc e) noexcept;

/// `{"error":{"code","message"[,"details"]}}` with the status for `e.code`.
response error_response(const error& e, const std::optional<nlohmann::json>& details = std::nullopt);
response error_response(errc code, std::string message);

/// Decodes %XX and (when `plus_is_space`) '+'. Returns nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

/// Parses a JSON body; a 400-class error naming the problem when it is not valid JSON.
result<nlohmann::json> parse_json_body(const request& req);

}  // namespace zapd::http
