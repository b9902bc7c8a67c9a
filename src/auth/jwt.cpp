#include "zapd/auth/jwt.hpp"

#include <array>
#include <optional>

#include <nlohmann/json.hpp>
#include <sodium.h>

namespace zapd::auth {
namespace {

constexpr std::int64_t k_max_clock_skew_s = 60;
constexpr std::string_view k_key_context = "zapd.auth.session.v1";

using mac = std::array<unsigned char, crypto_auth_hmacsha256_BYTES>;

mac hmac(std::string_view key, std::string_view msg) {
  mac out{};
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof st);
  return out;
}

// Strict: only the URL-safe alphabet, no padding, no whitespace, no trailing bits.
std::optional<std::string> base64url_decode(std::string_view s) {
  std::string out(s.size() * 3 / 4 + 3, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), s.data(), s.size(), nullptr, &len,
                        &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != s.data() + s.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

error refuse(std::string why) { return make_error(errc::unauthorized, std::move(why)); }

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  if (sodium_init() < 0) return {};
  const auto variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), variant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string derive_session_key(std::string_view secret) {
  auto m = hmac(secret, k_key_context);
  return std::string(reinterpret_cast<const char*>(m.data()), m.size());
}

std::string sign_session(const session_claims& c, std::string_view key) {
  nlohmann::json claims = {{"sub", c.sub}, {"iat", c.iat}, {"exp", c.exp}, {"ver", c.ver}};
  std::string signing_input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(claims.dump());
  auto m = hmac(key, signing_input);
  return signing_input + "." + base64url_encode(std::string_view(reinterpret_cast<const char*>(m.data()), m.size()));
}

result<session_claims> verify_session(std::string_view token, std::string_view key, std::int64_t now) {
  if (sodium_init() < 0) return make_error(errc::internal, "libsodium failed to initialise");
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return refuse("token is not three dot-separated parts");

  auto header_text = base64url_decode(token.substr(0, dot1));
  if (!header_text) return refuse("token header is not base64url");
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  if (!header.is_object()) return refuse("token header is not a JSON object");
  // The alg is checked before the signature and only HS256 passes: "none" or an asymmetric
  // alg can never select another verification path.
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || alg->get<std::string>() != "HS256")
    return refuse("token alg is not HS256");

  auto sig = base64url_decode(token.substr(dot2 + 1));
  if (!sig || sig->size() != crypto_auth_hmacsha256_BYTES) return refuse("token signature is malformed");
  auto expected = hmac(key, token.substr(0, dot2));
  if (sodium_memcmp(expected.data(), sig->data(), expected.size()) != 0) return refuse("token signature does not match");

  auto payload_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload_text) return refuse("token claims are not base64url");
  auto p = nlohmann::json::parse(*payload_text, nullptr, false);
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
