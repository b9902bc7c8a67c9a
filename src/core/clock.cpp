#include "zapd/core/clock.hpp"

#include <ctime>

#include <fmt/format.h>

namespace zapd {

clock::~clock() = default;

std::int64_t clock::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
}

std::chrono::system_clock::time_point system_clock::now() const { return std::chrono::system_clock::now(); }

const clock& real_clock() {
  static const system_clock c;
  return c;
}

std::string iso_time_ms(std::int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, unix_ms % 1000);
}

}  // namespace zapd
