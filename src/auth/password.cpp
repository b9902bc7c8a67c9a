#include "zapd/auth/password.hpp"

#include <sodium.h>

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

std::string make_dummy_hash(const password_params& p) {
  auto h = hash_password("zapd dummy password, never matches a login", p);
  return h ? *h : std::string();
}

}  // namespace zapd::auth
