#pragma once

#include <cstdint>
#include <string>

namespace zapd {

/// A random UUIDv4 (122 random bits from libsodium's CSPRNG), lower-case hex with dashes.
std::string new_uuid();

/// A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids made later
/// sort later, so rows keyed by them are appended to their B-trees instead of scattered.
std::string new_uuid_v7(std::int64_t unix_ms);
/// `n` random bytes as lower-case hex (2n characters).
std::string random_hex(std::size_t n);

}  // namespace zapd
