#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace zapd::templates {

/// What a secret value is replaced with wherever it is recorded.
inline constexpr std::string_view mask_text = "********";

/// Replaces secret values wherever they occur: in a step's recorded input, its output (a
/// server may echo a token), its error (a URL or host name holding a secret), its warnings
/// and the log lines written about it. Besides each value as it is, the forms zapd itself
/// turns a value into on its way out are masked too: JSON string escaping (a body), percent-
/// encoding (a URL: upper- and lower-case hex, `+` for spaces, the whole-URL form) and the
/// header form (control characters as spaces). Every non-empty value is masked whatever its
/// length (rules in src/templates/README.md).
///
/// Matching is linear in the text for each form (Knuth-Morris-Pratt), so a long secret made
/// of one repeated byte against a long echo of that byte costs no more than any other text.
/// At a position where several forms match, the longest wins; the mask is never searched
/// again, so a value made of `*` cannot make it grow without bound.
///
/// Lifecycle: built once per run step from the step's secret values (holds copies of them).
/// Immutable after construction; any thread may use one concurrently.
class masker {
 public:
  masker() = default;
  /// Masks `values` (empty ones ignored).
  explicit masker(const std::vector<std::string>& values);
  /// Masks the values of a render context's `secrets` object (strings; others as JSON).
  static masker from_context(const nlohmann::json& ctx);

  bool empty() const noexcept { return forms_.empty(); }
  /// `s` with every occurrence of a value (or of one of its forms) replaced by `********`.
  std::string str(std::string_view s) const;
  /// Masks every string and object key of `v` in place, and replaces a number whose JSON
  /// text is exactly a value with the string `********`. Iterative: any depth is safe.
  void in_place(nlohmann::json& v) const;
  /// A masked copy of `v` (the copy recurses: for values of bounded depth).
  nlohmann::json value(const nlohmann::json& v) const;

 private:
  struct form {
    std::string text;
    std::vector<std::uint32_t> fail;  // KMP failure function of `text`
  };
  std::vector<form> forms_;  // distinct, non-empty
  std::vector<std::string> numbers_;  // values that a JSON number could spell exactly
};

}  // namespace zapd::templates
