#include "zapd/actions/executor.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

#include "zapd/core/json.hpp"

namespace zapd::actions {

executor::~executor() = default;

templates::options executor::render_options(std::string_view, const nlohmann::json&) const { return {}; }

void executors::add(std::string id, std::unique_ptr<executor> e) { map_[std::move(id)] = std::move(e); }

executor* executors::find(const std::string& id) const {
  auto it = map_.find(id);
  return it == map_.end() ? nullptr : it->second.get();
}

bool status_matches(long status, std::string_view spec) {
  if (spec.empty()) spec = "2xx";
  for (auto item : split(spec, ',')) {
    if (item.size() == 3 && (item.substr(1) == "xx" || item.substr(1) == "XX")) {
      if (item[0] >= '1' && item[0] <= '5' && status / 100 == item[0] - '0') return true;
      continue;
    }
    long v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec == std::errc{} && p == item.data() + item.size() && v == status) return true;
  }
  return false;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, std::int64_t now_ms) {
  constexpr std::int64_t k_cap_ms = 24LL * 3600 * 1000;
  value = trim(value);
  if (value.empty()) return std::nullopt;
  std::int64_t secs = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
  if (ec == std::errc{} && p == value.data() + value.size()) {
    if (secs < 0) return std::nullopt;
    return std::chrono::milliseconds(std::min(secs, k_cap_ms / 1000) * 1000);
  }
  // An HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  std::string text(value);
  if (!strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  const std::int64_t at_ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  return std::chrono::milliseconds(std::clamp<std::int64_t>(at_ms - now_ms, 0, k_cap_ms));
}

}  // namespace zapd::actions
