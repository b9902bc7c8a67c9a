#include "zapd/core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

namespace zapd::log {
namespace {

std::atomic<level> g_level{level::info};
std::atomic<format> g_format{format::human};

std::string_view level_name(level lv) {
  switch (lv) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

// Human form quotes a value only when it holds a space, quote or '=' so lines stay greppable.
void append_human_value(std::string& out, std::string_view v) {
  bool plain = !v.empty() && v.find_first_of(" \"=\t\n") == std::string_view::npos;
  if (plain) {
    out += v;
    return;
  }
  out += nlohmann::json(std::string(v)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

bool enabled(level lv) noexcept { return lv >= g_level.load(std::memory_order_relaxed); }

void configure(level min_level, format f) {
  g_level = min_level;
  g_format = f;
}

bool parse_level(std::string_view s, level& out) {
  if (s == "debug") out = level::debug;
  else if (s == "info") out = level::info;
  else if (s == "warn") out = level::warn;
  else if (s == "error") out = level::error;
  else return false;
  return true;
}

void write(level lv, std::string_view event, std::initializer_list<field> fields) {
  if (lv < g_level.load(std::memory_order_relaxed)) return;
  std::string line;
  if (g_format.load(std::memory_order_relaxed) == format::json) {
    nlohmann::ordered_json j;
    j["ts"] = timestamp();
    j["level"] = level_name(lv);
    j["event"] = event;
    for (const auto& f : fields) j[std::string(f.key)] = f.value;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = fmt::format("{} {:5} {}", timestamp(), level_name(lv), event);
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      append_human_value(line, f.value);
    }
  }
  line += '\n';
  // One write(2) per line keeps lines from different threads whole.
  ssize_t off = 0;
  while (off < static_cast<ssize_t>(line.size())) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += n;
  }
}

}  // namespace zapd::log
