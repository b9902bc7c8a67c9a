#pragma once

#include <string>

namespace zapd {

/// A random UUIDv4 (122 random bits from libsodium's CSPRNG), lower-case hex with dashes.
std::string new_uuid();

/// `n` random bytes as lower-case hex (2n characters).
std::string random_hex(std::size_t n);

}  // namespace zapd
