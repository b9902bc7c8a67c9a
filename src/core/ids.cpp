#include "zapd/core/ids.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>

#include <sodium.h>

#include "zapd/core/crypto.hpp"

namespace zapd {
namespace {
struct sodium_init_once {
  sodium_init_once() {
    if (sodium_init() < 0) std::abort();  // no usable randomness: nothing safe can run
  }
};
void ensure_sodium() { static sodium_init_once once; }
}  // namespace

std::string random_hex(std::size_t n) {
  ensure_sodium();
  std::string bytes(n, '\0');
  randombytes_buf(bytes.data(), n);
  return hex_encode(bytes);
}

namespace {
std::string format_uuid(const std::array<unsigned char, 16>& b) {
  std::string out = hex_encode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  for (std::size_t dash : {8, 13, 18, 23}) out.insert(dash, 1, '-');
  return out;
}

// Random bytes for ids, drawn from libsodium 256 bytes at a time per thread: an id on the
// ingest path took a getrandom() system call of its own. The bytes are libsodium's, each handed
// out once and then wiped from the pool, so an id is as unguessable as before (a zap id is part
// of a webhook URL that may carry no signature). Tokens and keys (random_hex) still draw
// straight from libsodium.
constexpr std::size_t k_id_pool = 256;
void id_random(unsigned char* out, std::size_t n) {
  assert(n <= k_id_pool);
  thread_local std::array<unsigned char, k_id_pool> pool{};
  thread_local std::size_t used = pool.size();
  if (used + n > pool.size()) {
    randombytes_buf(pool.data(), pool.size());
    used = 0;
  }
  std::copy_n(pool.data() + used, n, out);
  sodium_memzero(pool.data() + used, n);  // a byte is handed out once
  used += n;
}
}  // namespace

std::string new_uuid() {
  ensure_sodium();
  std::array<unsigned char, 16> b{};
  id_random(b.data(), b.size());
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return format_uuid(b);
}

std::string new_uuid_v7(std::int64_t unix_ms) {
  ensure_sodium();
  std::array<unsigned char, 16> b{};
  id_random(b.data(), b.size());
  // (ms << 12 | counter), shared by every thread: each id takes the next value at or after
  // the start of its millisecond.
  static std::atomic<std::uint64_t> last{0};
  const std::uint64_t start = (static_cast<std::uint64_t>(unix_ms) & 0xffff'ffff'ffffULL) << 12;
  std::uint64_t prev = last.load(std::memory_order_relaxed);
  std::uint64_t next = 0;
  do {
    next = start > prev ? start : prev + 1;
  } while (!last.compare_exchange_weak(prev, next, std::memory_order_relaxed));
  const std::uint64_t ms = next >> 12;
  const auto counter = static_cast<unsigned>(next & 0xfff);
  for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (counter >> 8));  // version 7, counter high bits
  b[7] = static_cast<unsigned char>(counter & 0xff);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 9562 variant
  return format_uuid(b);
}

}  // namespace zapd
