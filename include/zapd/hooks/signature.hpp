#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "zapd/core/result.hpp"

namespace zapd::hooks {

/// How a zap's webhook proves its sender (the trigger's `signature` field).
enum class scheme {
  none,
  standard,  // Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature "v1,<base64>" ...
  github,    // X-Hub-Signature-256: sha256=<hex HMAC of the body>
  stripe,    // Stripe-Signature: t=<unix>,v1=<hex HMAC of "t.body">[,v1=...]
  hmac,      // a configurable header holding the HMAC-SHA256 of the body (hex or base64, optional "sha256=")
};
std::optional<scheme> parse_scheme(std::string_view s) noexcept;

/// Header lookup (case-insensitive by the caller's convention): the value or empty.
using header_fn = std::function<std::string(std::string_view name)>;

struct verify_options {
  std::string hmac_header = "X-Signature";   // scheme::hmac
  std::chrono::seconds tolerance{300};       // standard, stripe: allowed |now - timestamp|
};

/// Checks a request's signature. Every comparison of a computed MAC is constant-time.
/// Standard Webhooks and Stripe accept any of several listed signatures (key rotation) and
/// refuse timestamps outside `tolerance`. A Standard Webhooks secret "whsec_<base64>" is
/// base64-decoded; any other secret is used as its bytes.
/// Failure: `unauthorized` with a message saying what was wrong (never the expected value).
status verify(scheme s, std::string_view secret, const header_fn& header, std::string_view body, std::int64_t now_s,
              const verify_options& o = {});

// Signers: what a sender computes. Used by tests, and by outgoing requests that sign.
/// "v1,<base64 HMAC of id.timestamp.body>"
std::string sign_standard(std::string_view secret, std::string_view id, std::int64_t timestamp, std::string_view body);
/// "sha256=<hex HMAC of body>"
std::string sign_github(std::string_view secret, std::string_view body);
/// "t=<timestamp>,v1=<hex HMAC of timestamp.body>"
std::string sign_stripe(std::string_view secret, std::int64_t timestamp, std::string_view body);
/// "<hex HMAC of body>"
std::string sign_hmac(std::string_view secret, std::string_view body);

}  // namespace zapd::hooks
