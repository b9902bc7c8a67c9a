#include "zapd/core/json.hpp"
#include "zapd/auth/jwt.hpp"

#include <optional>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "zapd/core/crypto.hpp"

namespace zapd::auth {
namespace {

constexpr std::int64_t k_max_clock_skew_s = 60;
constexpr std::string_view k_key_context = "zapd.auth.session.v1";

std::optional<std::string> base64url_decode(std::string_view s) {
  return base64_decode(s, base64_alphabet::url_no_padding);
}

error refuse(std::string why) { return make_error(errc::unauthorized, std::move(why)); }

}  // namespace

std::string base64url_encode(std::string_view bytes) { return base64_encode(bytes, base64_alphabet::url_no_padding); }

std::string derive_session_key(std::string_view secret) {
  return hmac_sha256(secret, k_key_context);
}

std::string sign_session(const session_claims& c, std::string_view key) {
  nlohmann::json claims = {{"sub", c.sub}, {"iat", c.iat}, {"exp", c.exp}, {"ver", c.ver}};
  std::string signing_input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(claims.dump());
  return signing_input + "." + base64url_encode(hmac_sha256(key, signing_input));
}

result<session_claims> verify_session(std::string_view token, std::string_view key, std::int64_t now) {
  if (sodium_init() < 0) return make_error(errc::internal, "libsodium failed to initialise");
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return refuse("token is not three dot-separated parts");

  auto header_text = base64url_decode(token.substr(0, dot1));
  if (!header_text) return refuse("token header is not base64url");
  auto header = parse_json_or_discarded(*header_text, json_depth::api);
  if (!header.is_object()) return refuse("token header is not a JSON object");
  // The alg is checked before the signature and only HS256 passes: "none" or an asymmetric
  // alg can never select another verification path.
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || alg->get<std::string>() != "HS256")
    return refuse("token alg is not HS256");

  auto sig = base64url_decode(token.substr(dot2 + 1));
  if (!sig || sig->size() != crypto_auth_hmacsha256_BYTES) return refuse("token signature is malformed");
  if (!constant_time_equal(hmac_sha256(key, token.substr(0, dot2)), *sig)) return refuse("token signature does not match");

  auto payload_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload_text) return refuse("token claims are not base64url");
  auto p = parse_json_or_discarded(*payload_text, json_depth::api);
  if (!p.is_object()) return refuse("token claims are not a JSON object");
  auto get_int = [&p](const char* k) -> std::optional<std::int64_t> {
    auto it = p.find(k);
    if (it == p.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<std::int64_t>();
  };
  auto sub = p.find("sub");
  auto iat = get_int("iat");
  auto exp = get_int("exp");
  auto ver = get_int("ver");
  if (sub == p.end() || !sub->is_string() || sub->get<std::string>().empty() || !iat || !exp || !ver)
    return refuse("token claims sub, iat, exp, ver are missing or mistyped");
  if (now >= *exp) return refuse("token has expired");
  if (*iat > now + k_max_clock_skew_s) return refuse("token is issued in the future");
  return session_claims{sub->get<std::string>(), *iat, *exp, *ver};
}

}  // namespace zapd::auth
