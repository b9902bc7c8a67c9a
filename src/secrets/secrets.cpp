#include "zapd/secrets/secrets.hpp"

#include <sodium.h>

#include <algorithm>

#include <fmt/format.h>

#include "zapd/core/files.hpp"

namespace zapd::secrets {
namespace {

std::string associated(std::string_view user_id, std::string_view name) {
  return fmt::format("zapd-secret:{}:{}", user_id, name);
}

std::string to_base64(const unsigned char* p, std::size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), p, n, sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();  // the terminating NUL
  return out;
}

}  // namespace

result<box> box::from_hex(const std::string& hex) {
  if (sodium_init() < 0) return make_error(errc::internal, "libsodium failed to initialise");
  box b;
  b.key_.resize(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
  std::size_t len = 0;
  if (hex.size() < 64 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(b.key_.data()), b.key_.size(), hex.data(), 64, nullptr, &len,
                     nullptr) != 0 ||
      len != b.key_.size())
    return make_error(errc::invalid_argument, "secrets key: expected 64 hex characters");
  return b;
}

std::string box::fingerprint() const {
  unsigned char h[8];
  static constexpr char k_what[] = "zapd key fingerprint";
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(k_what), sizeof k_what - 1,
                     reinterpret_cast<const unsigned char*>(key_.data()), key_.size());
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : h) {
    out += k_hex[c >> 4];
    out += k_hex[c & 15];
  }
  return out;
}

result<box> box::load_or_create(const std::string& key_path) {
  auto hex = load_or_create_secret(key_path);
  if (!hex) return std::move(hex).err();
  return from_hex(*hex);
}

std::string box::seal(std::string_view user_id, std::string_view name, std::string_view plaintext) const {
  std::string ad = associated(user_id, name);
  std::vector<unsigned char> buf(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + plaintext.size() +
                                 crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned char* nonce = buf.data();
  randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, nonce,
      reinterpret_cast<const unsigned char*>(key_.data()));
  return to_base64(buf.data(), crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + clen);
}

result<std::string> box::open(std::string_view user_id, std::string_view name, std::string_view sealed) const {
  std::vector<unsigned char> buf(sealed.size());
  std::size_t len = 0;
  if (sodium_base642bin(buf.data(), buf.size(), sealed.data(), sealed.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
    return make_error(errc::internal, fmt::format("secret '{}' is not readable", name));
  std::string ad = associated(user_id, name);
  std::string out(len, '\0');
  unsigned long long mlen = 0;
  const unsigned char* nonce = buf.data();
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &mlen, nullptr, nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
          len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
          nonce, reinterpret_cast<const unsigned char*>(key_.data())) != 0)
    return make_error(errc::internal, fmt::format("secret '{}' does not decrypt (wrong key or tampered)", name));
  out.resize(mlen);
  return out;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

status put(store::connection& c, const box& b, const std::string& user_id, const std::string& name, const std::string& value) {
  auto q = c.prepare(
      "INSERT INTO secrets(user_id, name, sealed) VALUES(?, ?, ?) "
      "ON CONFLICT(user_id, name) DO UPDATE SET sealed = excluded.sealed, "
      "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')");
  if (!q) return std::move(q).err();
  return q->bind_all(user_id, name, b.seal(user_id, name, value)).run();
}

status remove(store::connection& c, const std::string& user_id, const std::string& name) {
  auto q = c.prepare("DELETE FROM secrets WHERE user_id = ? AND name = ?");
  if (!q) return std::move(q).err();
  auto st = q->bind_all(user_id, name).run();
  if (!st) return st;
  if (c.changes() == 0) return make_error(errc::not_found, fmt::format("no secret named '{}'", name));
  return {};
}

result<std::vector<secret_meta>> list(store::connection& c, const std::string& user_id) {
  auto q = c.prepare("SELECT name, created_at, updated_at FROM secrets WHERE user_id = ? ORDER BY name");
  if (!q) return std::move(q).err();
  q->bind(1, user_id);
  return q->collect<secret_meta>([](store::statement& r) { return secret_meta{r.text(0), r.text(1), r.text(2)}; });
}

result<std::set<std::string>> names(store::connection& c, const std::string& user_id) {
  auto l = list(c, user_id);
  if (!l) return std::move(l).err();
  std::set<std::string> out;
  for (auto& m : *l) out.insert(std::move(m.name));
  return out;
}

namespace {

template <class Wanted>
result<std::map<std::string, std::string>> reveal_where(store::connection& c, const box& b, const std::string& user_id,
                                                        Wanted wanted) {
  auto q = c.prepare("SELECT name, sealed FROM secrets WHERE user_id = ?");
  if (!q) return std::move(q).err();
  q->bind(1, user_id);
  std::map<std::string, std::string> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).err();
    if (!*row) break;
    auto name = q->text(0);
    if (!wanted(name)) continue;
    auto v = b.open(user_id, name, q->text(1));
    if (!v) return std::move(v).err();
    out[name] = std::move(*v);
  }
  return out;
}

}  // namespace

result<std::map<std::string, std::string>> reveal_all(store::connection& c, const box& b, const std::string& user_id) {
  return reveal_where(c, b, user_id, [](const std::string&) { return true; });
}

result<std::map<std::string, std::string>> reveal(store::connection& c, const box& b, const std::string& user_id,
                                                  const std::vector<std::string>& names) {
  if (names.empty()) return std::map<std::string, std::string>{};
  return reveal_where(c, b, user_id,
                      [&names](const std::string& name) { return std::binary_search(names.begin(), names.end(), name); });
}

}  // namespace zapd::secrets
