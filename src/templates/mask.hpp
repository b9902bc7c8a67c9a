#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace zapd::templates::detail {

inline constexpr std::string_view mask_text = "********";

/// Replaces the values of a context's secrets wherever they occur in a string (a step output
/// that echoes a token must not show it in the recorded input either).
///
/// Lifecycle: built per render from the context; holds copies of the secret values.
class masker {
 public:
  explicit masker(const nlohmann::json& ctx);
  bool empty() const noexcept { return secrets_.empty(); }
  /// `s` with every secret value replaced by `********`, in one left-to-right pass (the mask
  /// is never searched again, so secrets made of `*` cannot make it grow without bound).
  std::string str(std::string_view s) const;
  /// `v` with every string (and object key) masked. Recursive: callers bound the depth.
  nlohmann::json value(const nlohmann::json& v) const;

 private:
  std::vector<std::string> secrets_;  // non-empty, longest first
  std::array<bool, 256> first_{};     // first bytes of the secrets, to skip positions quickly
};

}  // namespace zapd::templates::detail
