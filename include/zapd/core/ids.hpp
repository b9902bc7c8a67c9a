#pragma once

#include <cstdint>
#include <string>

namespace zapd {

/// A random UUIDv4 (122 random bits from libsodium's CSPRNG), lower-case hex with dashes.
std::string new_uuid();

/// A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, a 12-bit counter within the
/// millisecond (RFC 9562 method 3), then 62 random bits. Ids made later in this process sort
/// later, even within one millisecond (so "newest first" ties break right), and rows keyed by
/// them are appended to their B-trees instead of scattered. If `unix_ms` goes backwards or a
/// millisecond's 4096 ids run out, the id keeps counting from the last one.
std::string new_uuid_v7(std::int64_t unix_ms);
/// `n` random bytes as lower-case hex (2n characters).
std::string random_hex(std::size_t n);

}  // namespace zapd
