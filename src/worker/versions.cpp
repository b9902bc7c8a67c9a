#include "versions.hpp"

#include <fmt/format.h>

#include "zapd/templates/template.hpp"
#include "zapd/zaps/zaps.hpp"

namespace zapd::worker {

result<std::shared_ptr<const version_info>> version_cache::get(store::connection& c, const std::string& zap_id,
                                                               std::int64_t version) {
  std::string key = fmt::format("{}:{}", zap_id, version);
  {
    std::lock_guard lk(mu_);
    if (auto it = map_.find(key); it != map_.end()) return it->second;
  }
  auto v = zaps::version_at(c, zap_id, version);
  if (!v) return std::move(v).err();
  auto secrets = templates::referenced_secrets(v->definition.to_json());
  auto shared = std::make_shared<const version_info>(version_info{std::move(v->definition), std::move(v->name), std::move(secrets)});
  std::lock_guard lk(mu_);
  if (map_.size() >= 1024) map_.clear();
  map_.emplace(std::move(key), shared);
  return shared;
}

}  // namespace zapd::worker
