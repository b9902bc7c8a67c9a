#pragma once

#include <array>

namespace zapd::fleet {

// Label values of the fleet's per-outcome counters, indexed succeeded, retry, failed, filtered
// (the recorder's decided verdict, the worker's executed one).
inline constexpr std::array<const char*, 4> k_outcomes = {"succeeded", "retry", "failed", "filtered"};

}  // namespace zapd::fleet
