#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "scan.hpp"

namespace zapd::templates::detail {

/// What is wrong with a call (unknown filter, wrong argument count or type, an argument no
/// value could satisfy such as an unknown time zone), or empty when it may be applied.
/// The semantics of each filter are in README.md.
std::string check_filter(const filter_call& f);

/// Applies a checked call to `v` in place. False when it cannot (the value is not a time, a
/// result would pass `max_bytes`, ...): `v` is then unchanged and `problem` says why without
/// quoting the value (it may hold a secret). Iterative and bounded: never recurses on `v`,
/// never throws.
bool apply_filter(const filter_call& f, nlohmann::json& v, std::size_t max_bytes, std::string& problem);

/// True when `f` is `default` (a missing value is then expected, not warned about).
inline bool is_default(const filter_call& f) { return f.name == "default"; }

}  // namespace zapd::templates::detail
