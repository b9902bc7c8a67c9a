#pragma once
// Column `col` of every row a statement gives, one line each: EXPLAIN's opcodes, a query plan.

#include <string>

#include <catch2/catch.hpp>

#include "zapd/store/database.hpp"

namespace zapd::test {

inline std::string column_lines(store::database& db, const std::string& sql, int col) {
  return db.reads().with([&](store::connection& c) {
    auto st = c.prepare(sql);
    REQUIRE(st.ok());
    std::string out;
    for (;;) {
      auto row = st->step();
      REQUIRE(row.ok());
      if (!*row) break;
      out += st->text(col) + "\n";
    }
    return out;
  });
}

}  // namespace zapd::test
