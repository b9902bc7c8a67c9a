#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace zapd {

/// Small byte-level crypto helpers over libsodium, shared by session tokens (auth),
/// webhook signature checks (hooks) and outgoing request signing (actions). Pure functions,
/// thread-safe. Byte strings are carried in std::string.

/// HMAC-SHA256 of `msg` under `key`: 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view msg);

/// SHA-256 of `data`: 32 raw bytes.
std::string sha256(std::string_view data);

enum class base64_alphabet {
  standard,        // RFC 4648 section 4, with '=' padding
  url_no_padding,  // RFC 4648 section 5, no padding (JWT)
};
std::string base64_encode(std::string_view bytes, base64_alphabet a = base64_alphabet::standard);
/// Strict decode: the whole input must be valid in that alphabet. Nullopt otherwise.
std::optional<std::string> base64_decode(std::string_view text, base64_alphabet a = base64_alphabet::standard);

/// Lower-case hex of `bytes`.
std::string hex_encode(std::string_view bytes);
/// Hex (either case) to bytes; nullopt on odd length or a non-hex character.
std::optional<std::string> hex_decode(std::string_view text);

/// Compares in time that depends only on the lengths (never on where they differ).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace zapd
