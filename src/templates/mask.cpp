#include "mask.hpp"

#include <algorithm>

#include "zapd/core/json.hpp"
#include "escape.hpp"

namespace zapd::templates::detail {

masker::masker(const nlohmann::json& ctx) {
  if (!ctx.is_object()) return;
  auto it = ctx.find("secrets");
  if (it == ctx.end() || !it->is_object()) return;
  for (const auto& v : *it) {
    std::string s = v.is_string() ? v.get<std::string>() : v.is_null() ? std::string{} : dump_safe(v);
    if (s.empty()) continue;
    first_[static_cast<unsigned char>(s.front())] = true;
    secrets_.push_back(std::move(s));
  }
  std::sort(secrets_.begin(), secrets_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::string masker::str(std::string_view s) const {
  if (secrets_.empty()) return std::string(s);
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (first_[static_cast<unsigned char>(s[i])]) {
      auto hit = std::find_if(secrets_.begin(), secrets_.end(), [&](const std::string& sec) {
        return s.compare(i, sec.size(), sec) == 0;
      });
      if (hit != secrets_.end()) {
        out += mask_text;
        i += hit->size();
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

nlohmann::json masker::value(const nlohmann::json& v) const {
  if (secrets_.empty()) return v;
  if (v.is_string()) return str(v.get_ref<const std::string&>());
  if (v.is_array()) {
    auto out = nlohmann::json::array();
    for (const auto& item : v) out.push_back(value(item));
    return out;
  }
  if (v.is_object()) {
    auto out = nlohmann::json::object();
    for (const auto& [k, item] : v.items()) out[str(k)] = value(item);
    return out;
  }
  return v;
}

}  // namespace zapd::templates::detail
