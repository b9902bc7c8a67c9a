#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "zapd/core/clock.hpp"

namespace zapd::test {

/// A clock that moves only when the test says so. Thread-safe.
class fake_clock final : public zapd::clock {
 public:
  explicit fake_clock(std::int64_t start_ms = 1'700'000'000'000) : ms_(start_ms) {}
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms_.load()));
  }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }

 private:
  std::atomic<std::int64_t> ms_;
};

}  // namespace zapd::test
