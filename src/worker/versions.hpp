#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/zaps/definition.hpp"

namespace zapd::store {
class connection;
}

namespace zapd::worker {

/// A zap version as the worker uses it. Versions are immutable, so this is built once per
/// version and cached.
struct version_info {
  zaps::definition definition;
  std::string name;  // the version's zap name (`{{run.zapName}}`, the email executor's sender name)
  // The secrets it references anywhere: revealed for each of its steps so their values can be
  // masked in everything recorded for the run (a secret used by step 1 and echoed back by its
  // server must not show in step 2's input either).
  std::vector<std::string> secrets;
};

/// Parsed zap versions by (zap, version), read through `zaps::version_at` on a miss; bounded
/// (cleared wholesale past 1,024 entries). Threading: thread-safe.
class version_cache {
 public:
  result<std::shared_ptr<const version_info>> get(store::connection& c, const std::string& zap_id, std::int64_t version);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const version_info>> map_;
};

}  // namespace zapd::worker
