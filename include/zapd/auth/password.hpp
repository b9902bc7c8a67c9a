#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "zapd/core/result.hpp"

namespace zapd::auth {

/// argon2id cost parameters (libsodium crypto_pwhash). Defaults are sized for a Raspberry Pi:
/// 3 passes over 32 MiB. OWASP's floor for argon2id is 2 passes over 19 MiB; libsodium's
/// "interactive" preset is 2 passes over 64 MiB. 32 MiB keeps `hash_threads` (default 2)
/// concurrent hashes at 64 MiB on a 1 GiB board. Figures: docs/ARCHITECTURE.md, "auth".
struct password_params {
  std::uint64_t opslimit = 3;
  std::size_t memlimit_bytes = 32u * 1024 * 1024;
};

/// Hashes with argon2id; the result is the self-describing "$argon2id$v=19$m=...,t=...,p=1$..."
/// string, so a later change of parameters still verifies older hashes. CPU- and memory-heavy:
/// call from the hash pool, never from an HTTP thread. `internal` only when memory runs out.
result<std::string> hash_password(std::string_view password, const password_params& p);

/// True when `password` matches `hash`. A malformed hash verifies false. Same cost as hashing.
bool verify_password(std::string_view hash, std::string_view password);

/// A fixed hash with the given parameters, used to verify against when the account does not
/// exist, so an unknown email costs the same time as a wrong password.
std::string make_dummy_hash(const password_params& p);

}  // namespace zapd::auth
