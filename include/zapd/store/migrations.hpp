#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::store {

/// One numbered file from schema/ (e.g. 0001_init.sql), compiled into the binary.
struct migration {
  int version;
  std::string name;
  std::string_view sql;
};

/// The migrations embedded at build time, ordered by version.
const std::vector<migration>& embedded_migrations();

struct migration_state {
  int version;
  std::string name;
  bool applied;
  std::string applied_at;  // empty when pending
};

/// Each known migration and whether it is applied. Fails if the database holds a version
/// this binary does not know (it was migrated by a newer zapd).
result<std::vector<migration_state>> migration_status(connection& c, const std::vector<migration>& all);

/// Applies every pending migration in ONE transaction; returns how many were applied.
result<int> migrate_up(connection& c, const std::vector<migration>& all);

}  // namespace zapd::store
