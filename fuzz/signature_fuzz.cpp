// libFuzzer target for webhook signature checks: hooks::verify for every scheme
// (include/zapd/hooks/signature.hpp). See README.md.
//
// Input: one flags byte, then five parts separated by NUL:
//   secret \0 h1 \0 h2 \0 h3 \0 body
// The request's headers: webhook-id = h1, webhook-timestamp = h2, webhook-signature = h3,
// X-Hub-Signature-256 = Stripe-Signature = the hmac header = h1. flags bit 0: the hmac
// header is named "X-Custom-Sig" instead of "X-Signature"; bit 1: the secret gets a
// "whsec_" prefix (Standard Webhooks base64 key); bits 2-7: how many seconds before "now"
// the signers' timestamp is (0-63, inside the 300 s tolerance).
//
// Checked: no crash, sanitizer report or exception. And:
//   - every scheme returns ok or `unauthorized`; `none` always ok; an empty secret never ok;
//   - a fuzzed header that passes holds the correct MAC (hex or base64): nothing is
//     accepted without it (an empty, short or differently encoded MAC would show here);
//   - a refusal's message is valid UTF-8 and never holds the expected MAC;
//   - round trip: what each signer produces for this secret, id, time and body verifies,
//     also with leading/trailing blanks around the header value, and fails under another secret.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/core/crypto.hpp"
#include "zapd/core/json.hpp"
#include "zapd/hooks/signature.hpp"

namespace {

namespace hooks = zapd::hooks;
using hooks::scheme;

constexpr std::int64_t k_now = 1'700'000'000;

[[noreturn]] void fail(const char* what, scheme s, std::string_view secret, const std::string& more = {}) {
  std::fprintf(stderr, "signature_fuzz: %s (scheme %d)\nsecret: %.*s\n%s\n", what, static_cast<int>(s),
               static_cast<int>(secret.size()), secret.data(), more.c_str());
  std::abort();
}

std::string_view next_part(std::string_view& rest) {
  auto nul = rest.find('\0');
  auto part = rest.substr(0, nul);
  rest = nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);
  return part;
}

std::string lower(std::string_view s) { return zapd::to_lower(s); }

bool contains(std::string_view hay, std::string_view needle) { return !needle.empty() && hay.find(needle) != std::string_view::npos; }

std::optional<std::int64_t> parse_int(std::string_view s) {
  try {
    std::size_t used = 0;
    std::string t(s);
    if (t.empty() || !(std::isdigit(static_cast<unsigned char>(t[0])) || t[0] == '-')) return std::nullopt;
    long long v = std::stoll(t, &used);
    if (used != t.size()) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

// The key a Standard Webhooks secret stands for (as signature.cpp: whsec_ + base64, else bytes).
std::string standard_key(std::string_view secret) {
  if (secret.starts_with("whsec_"))
    if (auto k = zapd::base64_decode(secret.substr(6))) return *k;
  return std::string(secret);
}

// Whether `header` holds `mac` as lower/upper hex or base64.
bool holds_mac(std::string_view header, const std::string& mac) {
  return contains(lower(header), zapd::hex_encode(mac)) || contains(header, zapd::base64_encode(mac));
}

// The MACs a passing request must have carried, one per timestamp it could have used.
std::vector<std::string> expected_macs(scheme s, std::string_view secret, std::string_view h1, std::string_view h2,
                                       std::string_view body) {
  std::vector<std::string> out;
  switch (s) {
    case scheme::standard:
      if (auto ts = parse_int(zapd::trim(h2)))
        out.push_back(zapd::hmac_sha256(standard_key(secret), std::string(h1) + "." + std::to_string(*ts) + "." + std::string(body)));
      break;
    case scheme::stripe:
      for (auto part : zapd::split(h1, ','))
        if (part.starts_with("t="))
          if (auto ts = parse_int(part.substr(2)))
            out.push_back(zapd::hmac_sha256(secret, std::to_string(*ts) + "." + std::string(body)));
      break;
    case scheme::github:
    case scheme::hmac: out.push_back(zapd::hmac_sha256(secret, body)); break;
    case scheme::none: break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string secret(next_part(rest));
  const std::string h1(next_part(rest)), h2(next_part(rest)), h3(next_part(rest));
  const std::string_view body = rest;  // the remainder, NULs included
  if (flags & 2) secret = "whsec_" + secret;

  hooks::verify_options o;
  if (flags & 1) o.hmac_header = "X-Custom-Sig";
  const std::string hmac_name = lower(o.hmac_header);

  std::map<std::string, std::string> fuzzed = {{"webhook-id", h1},          {"webhook-timestamp", h2},
                                               {"webhook-signature", h3},   {"x-hub-signature-256", h1},
                                               {"stripe-signature", h1},    {hmac_name, h1}};
  auto lookup = [](const std::map<std::string, std::string>& m) {
    return [&m](std::string_view name) -> std::string {
      auto it = m.find(lower(name));
      return it == m.end() ? std::string{} : it->second;
    };
  };

  for (auto s : {scheme::none, scheme::standard, scheme::github, scheme::stripe, scheme::hmac}) {
    auto st = hooks::verify(s, secret, lookup(fuzzed), body, k_now, o);
    if (s == scheme::none) {
      if (!st) fail("scheme none refused", s, secret);
      continue;
    }
    const auto macs = expected_macs(s, secret, h1, h2, body);
    if (st) {
      if (secret.empty()) fail("accepted with an empty secret", s, secret);
      const std::string& sig_header = s == scheme::standard ? h3 : h1;
      bool carried = false;
      for (const auto& m : macs) carried = carried || holds_mac(sig_header, m);
      if (!carried) fail("accepted without the correct MAC", s, secret, "header: " + sig_header);
    } else {
      if (st.err().code != zapd::errc::unauthorized) fail("refusal is not unauthorized", s, secret, st.err().message);
      if (!valid_utf8(st.err().message)) fail("refusal message is not valid UTF-8", s, secret);
      for (const auto& m : macs)
        if (holds_mac(st.err().message, m)) fail("refusal message holds the expected MAC", s, secret, st.err().message);
    }
  }

  // Round trip through the signers.
  if (secret.empty()) return 0;
  const std::int64_t ts = k_now - (flags >> 2);
  const std::string id = h1.empty() ? "msg_1" : h1;
  std::map<std::string, std::string> signed_headers = {
      {"webhook-id", id},
      {"webhook-timestamp", std::to_string(ts)},
      {"webhook-signature", "v1,AAAA " + hooks::sign_standard(secret, id, ts, body) + " "},
      {"x-hub-signature-256", " " + hooks::sign_github(secret, body) + "\t"},
      {"stripe-signature", "v1=00," + hooks::sign_stripe(secret, ts, body)},
      {hmac_name, hooks::sign_hmac(secret, body) + " "},
  };
  const std::string other = secret + "x";
  for (auto s : {scheme::standard, scheme::github, scheme::stripe, scheme::hmac}) {
    auto st = hooks::verify(s, secret, lookup(signed_headers), body, k_now, o);
    if (!st) fail("a signer's output does not verify", s, secret, st.err().message);
    if (hooks::verify(s, other, lookup(signed_headers), body, k_now, o) &&
        !(s == scheme::standard && standard_key(other) == standard_key(secret)))
      fail("verified under another secret", s, secret);
  }
  // The hmac scheme also takes base64 and a "sha256=" prefix.
  std::map<std::string, std::string> b64 = {{hmac_name, "sha256=" + zapd::base64_encode(zapd::hmac_sha256(secret, body))}};
  if (!hooks::verify(scheme::hmac, secret, lookup(b64), body, k_now, o)) fail("base64 hmac does not verify", scheme::hmac, secret);
  return 0;
}
