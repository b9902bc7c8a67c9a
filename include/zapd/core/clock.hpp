#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace zapd {

/// Wall clock seam: production uses system_clock; tests substitute a fake to move time.
/// Thread-safe; implementations must be callable from any thread.
class clock {
 public:
  virtual ~clock();
  virtual std::chrono::system_clock::time_point now() const = 0;
  std::int64_t now_ms() const;
};

class system_clock final : public clock {
 public:
  std::chrono::system_clock::time_point now() const override;
};

/// ISO-8601 UTC with milliseconds: 2026-11-23T10:00:00.123Z.
std::string iso_time_ms(std::int64_t unix_ms);

/// The process's real clock (a static instance).
const clock& real_clock();

}  // namespace zapd
