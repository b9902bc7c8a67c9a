#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace zapd::log {

enum class level { debug = 0, info, warn, error };
enum class format { human, json };

/// One structured field of a log line: `key=value` in human form, a JSON member in JSON form.
struct field {
  std::string_view key;
  std::string value;
  field(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  field(std::string_view k, std::string_view v) : key(k), value(v) {}
  field(std::string_view k, const char* v) : key(k), value(v) {}
  template <class T>
    requires std::is_arithmetic_v<T>
  field(std::string_view k, T v) : key(k), value(fmt::to_string(v)) {}
};

/// Process-wide logger settings. Call once at start-up, before threads start.
void configure(level min_level, format fmt);
bool parse_level(std::string_view s, level& out);
/// Whether a line at `lv` would be written (skip building costly fields when not).
bool enabled(level lv) noexcept;

/// Writes one line (one event) to stderr. Thread-safe: a line is written with a single write(2).
void write(level lv, std::string_view event, std::initializer_list<field> fields = {});

inline void debug(std::string_view ev, std::initializer_list<field> f = {}) { write(level::debug, ev, f); }
inline void info(std::string_view ev, std::initializer_list<field> f = {}) { write(level::info, ev, f); }
inline void warn(std::string_view ev, std::initializer_list<field> f = {}) { write(level::warn, ev, f); }
inline void error(std::string_view ev, std::initializer_list<field> f = {}) { write(level::error, ev, f); }

}  // namespace zapd::log
