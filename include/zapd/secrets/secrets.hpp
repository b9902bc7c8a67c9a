#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::secrets {

/// Encrypts per-user secret values at rest (XChaCha20-Poly1305 from libsodium). The key is
/// 32 random bytes kept in data_dir/secrets.key (mode 0600). The user id and secret name are
/// bound as associated data, so a row copied to another user or name does not decrypt.
/// Immutable after construction; thread-safe.
class box {
 public:
  /// Loads the key file, creating it on first use.
  static result<box> load_or_create(const std::string& key_path);
  /// A box with a given 64-hex-character key (tests).
  static result<box> from_hex(const std::string& hex);

  std::string seal(std::string_view user_id, std::string_view name, std::string_view plaintext) const;
  result<std::string> open(std::string_view user_id, std::string_view name, std::string_view sealed) const;
  /// 16 hex characters naming the key (a keyed hash of nothing, so it reveals nothing of it):
  /// tells two processes whether they hold the same key.
  std::string fingerprint() const;

 private:
  std::string key_;  // raw 32 bytes
};

struct secret_meta {
  std::string name;
  std::string created_at;
  std::string updated_at;
};

/// A valid name: 1..64 of [A-Za-z0-9_-].
bool valid_name(std::string_view name);
constexpr std::size_t k_max_value_bytes = 64 * 1024;

// Store operations; the write ones run on the writer thread inside its transaction.
status put(store::connection& c, const box& b, const std::string& user_id, const std::string& name,
           const std::string& value);
status remove(store::connection& c, const std::string& user_id, const std::string& name);
result<std::vector<secret_meta>> list(store::connection& c, const std::string& user_id);
result<std::set<std::string>> names(store::connection& c, const std::string& user_id);
/// Every secret of the user, decrypted (for rendering action configs at run time).
result<std::map<std::string, std::string>> reveal_all(store::connection& c, const box& b, const std::string& user_id);
/// The user's secrets among `names` (sorted, as `templates::referenced_secrets` gives them),
/// decrypted; a name with no secret is left out. Only those are decrypted.
result<std::map<std::string, std::string>> reveal(store::connection& c, const box& b, const std::string& user_id,
                                                  const std::vector<std::string>& names);

}  // namespace zapd::secrets
