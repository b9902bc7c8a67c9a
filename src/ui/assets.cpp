#include "zapd/ui/assets.hpp"

#include <algorithm>

namespace zapd::ui {

const asset* find(std::string_view path) {
  const auto& all = embedded();
  auto it = std::lower_bound(all.begin(), all.end(), path, [](const asset& a, std::string_view p) { return a.path < p; });
  return it != all.end() && it->path == path ? &*it : nullptr;
}

bool immutable(const asset& a) { return a.path.starts_with("/assets/"); }

}  // namespace zapd::ui
