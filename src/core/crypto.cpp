#include "zapd/core/crypto.hpp"

#include <sodium.h>

namespace zapd {
namespace {

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

int variant_of(base64_alphabet a) {
  return a == base64_alphabet::standard ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
}

// libsodium must be initialised before its base64/hex helpers pick their implementations.
bool ready() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

}  // namespace

std::string hmac_sha256(std::string_view key, std::string_view msg) {
  ready();
  std::string out(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, bytes_of(key), key.size());
  crypto_auth_hmacsha256_update(&st, bytes_of(msg), msg.size());
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(out.data()));
  sodium_memzero(&st, sizeof st);
  return out;
}

std::string sha256(std::string_view data) {
  ready();
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()), bytes_of(data), data.size());
  return out;
}

std::string base64_encode(std::string_view bytes, base64_alphabet a) {
  ready();
  const int v = variant_of(a);
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), v), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes_of(bytes), bytes.size(), v);
  out.pop_back();  // the terminating NUL
  return out;
}

std::optional<std::string> base64_decode(std::string_view text, base64_alphabet a) {
  ready();
  // Only the alphabet's own characters: libsodium 1.0.18 decodes some bytes >= 0x80 as if they
  // were '/' (signature_fuzz found "...a\xff..." accepted for "...a/..."), so a MAC had more
  // than one accepted spelling.
  for (unsigned char c : text) {
    const bool common = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '=';
    const bool own = a == base64_alphabet::standard ? (c == '+' || c == '/') : (c == '-' || c == '_');
    if (!common && !own) return std::nullopt;
  }
  std::string out(text.size() * 3 / 4 + 3, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, &end, variant_of(a)) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

std::string hex_encode(std::string_view bytes) {
  ready();
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes_of(bytes), bytes.size());
  out.pop_back();
  return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
  ready();
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out(text.size() / 2, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr, &len,
                     &end) != 0 ||
      end != text.data() + text.size() || len != out.size())
    return std::nullopt;
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  ready();
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace zapd
