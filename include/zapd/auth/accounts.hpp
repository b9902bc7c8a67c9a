#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::auth {

/// A row of `users` (schema/0002_accounts.sql).
struct user {
  std::string id;
  std::string email;
  std::string name;
  std::string password_hash;
  std::string plan;  // "free" | "paid"
  bool admin = false;
  std::int64_t token_version = 0;
  std::string created_at;  // ISO 8601 UTC
};

/// A row of `api_tokens`, without the hash (never shown once created).
struct api_token_info {
  std::string id;
  std::string name;
  std::string created_at;
  std::optional<std::string> last_used_at;
  bool revoked = false;
};

// ---- input rules (pure; the same for the API and the CLI) ----

/// Trims surrounding whitespace and lower-cases ASCII.
std::string normalize_email(std::string_view raw);
/// `invalid_argument` naming the field ("username" for the API's email field is the caller's
/// choice: `field` is used in the message).
status validate_email(std::string_view normalized, std::string_view field = "email");
status validate_password(std::string_view password, std::string_view field = "password");
status validate_name(std::string_view name, std::string_view field = "name");
status validate_token_name(std::string_view name);

// ---- API token secrets ----

/// A new API token: "zapd_" + 48 hex characters (192 random bits). Shown to its owner once.
std::string new_api_token();
/// What is stored and looked up: SHA-256 of the token, hex. (The token carries 192 random bits,
/// so a fast hash is enough; a slow one would only slow every API call.)
std::string hash_api_token(std::string_view token);
bool looks_like_api_token(std::string_view token);

// ---- store operations: each runs on a connection the caller owns (the writer for writes,
// a borrowed reader for reads). None blocks on anything but SQLite. ----

struct new_user {
  std::string email;  // normalized and validated
  std::string name;
  std::string password_hash;
  std::string plan;
};

/// Inserts a user; the first user of the installation becomes an admin. `already_exists` when the
/// email is taken. Returns the stored row.
result<user> insert_user(store::connection& c, const new_user& u);
result<std::optional<user>> find_user_by_email(store::connection& c, std::string_view email);
result<std::optional<user>> find_user_by_id(store::connection& c, std::string_view id);
result<std::vector<user>> list_users(store::connection& c);
/// Ends every session of the user; returns the new token version. `not_found` if no such user.
result<std::int64_t> bump_token_version(store::connection& c, std::string_view user_id);
/// Replaces the password hash and ends every session; returns the new token version.
result<std::int64_t> set_password_hash(store::connection& c, std::string_view user_id, std::string_view hash);
/// Renames the user (an already validated name); returns the stored row. `not_found` if no such user.
result<user> set_name(store::connection& c, std::string_view user_id, std::string_view name);

result<api_token_info> insert_api_token(store::connection& c, std::string_view user_id, std::string_view name,
                                        std::string_view token_hash);
result<std::vector<api_token_info>> list_api_tokens(store::connection& c, std::string_view user_id);
/// Revokes one of the user's tokens. `not_found` when the id is not one of theirs.
status revoke_api_token(store::connection& c, std::string_view user_id, std::string_view token_id);

/// The owner of a live (not revoked) token, with the token's id and last use.
struct token_owner {
  user owner;
  std::string token_id;
  std::optional<std::string> last_used_at;
};
result<std::optional<token_owner>> find_token_owner(store::connection& c, std::string_view token_hash);
/// Records that a token was used now.
status touch_api_token(store::connection& c, std::string_view token_id);

/// The user's plan ("free" | "paid"); "free" when there is no such user (ingestion's lane).
result<std::string> plan_of(store::connection& c, std::string_view user_id);

}  // namespace zapd::auth
