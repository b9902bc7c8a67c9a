#pragma once
// Reads a running (or stopped) zapd's database from a test: committed state, through WAL.

#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "zapd/store/connection.hpp"

namespace zapd::test {

class db_view {
 public:
  explicit db_view(const std::string& db_path)
      : c_(std::move(store::connection::open(db_path, store::open_mode::read_only).value())) {}

  /// The first column of the one row `sql` returns, with `arg` bound to ?1 when given.
  std::int64_t count(const std::string& sql, const std::string& arg = "") {
    auto st = one_row(sql, arg);
    return st.int64(0);
  }
  std::string text(const std::string& sql, const std::string& arg = "") {
    auto st = one_row(sql, arg);
    return st.text(0);
  }
  store::connection& raw() { return c_; }

 private:
  store::statement one_row(const std::string& sql, const std::string& arg) {
    auto st = c_.prepare(sql);
    REQUIRE(st.ok());
    if (!arg.empty()) st->bind(1, arg);
    auto row = st->step();
    REQUIRE(row.ok());
    REQUIRE(*row);
    return std::move(st).value();
  }
  store::connection c_;
};

}  // namespace zapd::test
