#include "zapd/hooks/signature.hpp"

#include <charconv>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "zapd/core/crypto.hpp"
#include "zapd/core/json.hpp"

namespace zapd::hooks {
namespace {

error refuse(std::string why) { return make_error(errc::unauthorized, std::move(why)); }

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

status check_timestamp(std::int64_t ts, std::int64_t now_s, std::chrono::seconds tolerance, std::string_view header) {
  // No subtraction of an untrusted value: it could overflow.
  if (ts < now_s - tolerance.count() || ts > now_s + tolerance.count())
    return refuse(fmt::format("{} is more than {} seconds from the server's clock", header, tolerance.count()));
  return {};
}

std::string standard_key(std::string_view secret) {
  if (secret.starts_with("whsec_")) {
    if (auto k = base64_decode(secret.substr(6))) return *k;
  }
  return std::string(secret);
}

status verify_standard(std::string_view secret, const header_fn& header, std::string_view body, std::int64_t now_s,
                       const verify_options& o) {
  std::string id = header("webhook-id");
  std::string ts_text = header("webhook-timestamp");
  std::string sigs = header("webhook-signature");
  if (id.empty() || ts_text.empty() || sigs.empty())
    return refuse("missing webhook-id, webhook-timestamp or webhook-signature header");
  auto ts = parse_int(trim(ts_text));
  if (!ts) return refuse("webhook-timestamp is not a Unix time in seconds");
  if (auto st = check_timestamp(*ts, now_s, o.tolerance, "webhook-timestamp"); !st) return st;
  const std::string expected = hmac_sha256(standard_key(secret), fmt::format("{}.{}.{}", id, *ts, body));
  bool any_v1 = false;
  // Several signatures separated by spaces, each "version,base64"; any valid v1 passes.
  for (auto item : split(sigs, ' ')) {
    if (!item.starts_with("v1,")) continue;
    any_v1 = true;
    auto mac = base64_decode(item.substr(3));
    if (mac && constant_time_equal(expected, *mac)) return {};
  }
  return refuse(any_v1 ? "webhook-signature does not match" : "webhook-signature holds no v1 signature");
}

status verify_github(std::string_view secret, const header_fn& header, std::string_view body) {
  std::string sig = header("X-Hub-Signature-256");
  if (sig.empty()) return refuse("missing X-Hub-Signature-256 header");
  std::string_view v = trim(sig);
  if (!v.starts_with("sha256=")) return refuse("X-Hub-Signature-256 does not start with sha256=");
  auto mac = hex_decode(v.substr(7));
  if (!mac || !constant_time_equal(hmac_sha256(secret, body), *mac)) return refuse("X-Hub-Signature-256 does not match");
  return {};
}

status verify_stripe(std::string_view secret, const header_fn& header, std::string_view body, std::int64_t now_s,
                     const verify_options& o) {
  std::string sig = header("Stripe-Signature");
  if (sig.empty()) return refuse("missing Stripe-Signature header");
  std::optional<std::int64_t> ts;
  std::vector<std::string_view> v1;
  for (auto part : split(sig, ',')) {
    auto eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    auto k = part.substr(0, eq);
    auto v = part.substr(eq + 1);
    if (k == "t") ts = parse_int(v);
    if (k == "v1") v1.push_back(v);
  }
  if (!ts) return refuse("Stripe-Signature has no valid t= timestamp");
  if (v1.empty()) return refuse("Stripe-Signature holds no v1 signature");
  if (auto st = check_timestamp(*ts, now_s, o.tolerance, "Stripe-Signature timestamp"); !st) return st;
  const std::string expected = hmac_sha256(secret, fmt::format("{}.{}", *ts, body));
  for (auto v : v1) {
    auto mac = hex_decode(v);
    if (mac && constant_time_equal(expected, *mac)) return {};
  }
  return refuse("Stripe-Signature does not match");
}

status verify_hmac(std::string_view secret, const header_fn& header, std::string_view body, const verify_options& o) {
  std::string sig = header(o.hmac_header);
  if (sig.empty()) return refuse(fmt::format("missing {} header", o.hmac_header));
  std::string_view v = trim(sig);
  if (v.starts_with("sha256=")) v.remove_prefix(7);
  const std::string expected = hmac_sha256(secret, body);
  auto mac = v.size() == 64 ? hex_decode(v) : base64_decode(v);
  if (!mac || !constant_time_equal(expected, *mac)) return refuse(fmt::format("{} does not match", o.hmac_header));
  return {};
}

}  // namespace

std::optional<scheme> parse_scheme(std::string_view s) noexcept {
  if (s.empty() || s == "none") return scheme::none;
  if (s == "standard") return scheme::standard;
  if (s == "github") return scheme::github;
  if (s == "stripe") return scheme::stripe;
  if (s == "hmac") return scheme::hmac;
  return std::nullopt;
}

status verify(scheme s, std::string_view secret, const header_fn& header, std::string_view body, std::int64_t now_s,
              const verify_options& o) {
  if (s == scheme::none) return {};
  if (secret.empty()) return refuse("the zap's signing secret is not set; save it under Secrets");
  switch (s) {
    case scheme::standard: return verify_standard(secret, header, body, now_s, o);
    case scheme::github: return verify_github(secret, header, body);
    case scheme::stripe: return verify_stripe(secret, header, body, now_s, o);
    case scheme::hmac: return verify_hmac(secret, header, body, o);
    case scheme::none: break;
  }
  return {};
}

std::string sign_standard(std::string_view secret, std::string_view id, std::int64_t timestamp, std::string_view body) {
  return "v1," + base64_encode(hmac_sha256(standard_key(secret), fmt::format("{}.{}.{}", id, timestamp, body)));
}

std::string sign_github(std::string_view secret, std::string_view body) {
  return "sha256=" + hex_encode(hmac_sha256(secret, body));
}

std::string sign_stripe(std::string_view secret, std::int64_t timestamp, std::string_view body) {
  return fmt::format("t={},v1={}", timestamp, hex_encode(hmac_sha256(secret, fmt::format("{}.{}", timestamp, body))));
}

std::string sign_hmac(std::string_view secret, std::string_view body) { return hex_encode(hmac_sha256(secret, body)); }

}  // namespace zapd::hooks
