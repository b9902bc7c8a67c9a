#include "zapd/auth/password.hpp"

#include <sodium.h>

#include <string>

namespace zapd::auth {

result<std::string> hash_password(std::string_view password, const password_params& p) {
  if (sodium_init() < 0) return make_error(errc::internal, "libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), p.opslimit, p.memlimit_bytes,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    return make_error(errc::internal, "password hashing ran out of memory");
  return std::string(out);
}

bool verify_password(std::string_view hash, std::string_view password) {
  if (sodium_init() < 0) return false;
  // crypto_pwhash_str_verify wants a NUL-terminated string of at most STRBYTES.
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  std::string h(hash);
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

// Verifying costs what the parameters written in the string say (crypto_pwhash_str_verify
// reads them from it), so the dummy is assembled, not computed: the same "$argon2id$..."
// form with this installation's parameters, a random salt and a random tag that no password
// produces. Computing it was an argon2 run at every start (~0.1 s and 32 MiB touched with the
// defaults) before the server could answer.
std::string make_dummy_hash(const password_params& p) {
  if (sodium_init() < 0) return {};
  constexpr int variant = sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  unsigned char salt[crypto_pwhash_SALTBYTES];
  unsigned char tag[32];  // crypto_pwhash_str's tag length
  randombytes_buf(salt, sizeof salt);
  randombytes_buf(tag, sizeof tag);
  char salt64[sodium_base64_ENCODED_LEN(sizeof salt, variant)];
  char tag64[sodium_base64_ENCODED_LEN(sizeof tag, variant)];
  sodium_bin2base64(salt64, sizeof salt64, salt, sizeof salt, variant);
  sodium_bin2base64(tag64, sizeof tag64, tag, sizeof tag, variant);
  return "$argon2id$v=19$m=" + std::to_string(p.memlimit_bytes / 1024) + ",t=" + std::to_string(p.opslimit) + ",p=1$" +
         salt64 + "$" + tag64;
}

}  // namespace zapd::auth
