#include "zapd/core/clock.hpp"

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

}  // namespace zapd
