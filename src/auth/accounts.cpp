#include "zapd/auth/accounts.hpp"

#include <fmt/format.h>

#include "zapd/core/crypto.hpp"
#include "zapd/core/ids.hpp"

namespace zapd::auth {
namespace {

constexpr std::size_t k_email_max = 254;  // RFC 5321 path limit
constexpr std::size_t k_password_min = 8;
constexpr std::size_t k_password_max = 1024;
constexpr std::size_t k_name_max = 200;
constexpr std::size_t k_token_random_bytes = 24;
constexpr std::string_view k_token_prefix = "zapd_";

constexpr const char* k_user_columns = "id, email, name, password_hash, plan, is_admin, token_version, created_at";

error invalid(std::string_view field, std::string_view why) {
  return make_error(errc::invalid_argument, fmt::format("{}: {}", field, why));
}

// Code points in valid UTF-8 (JSON parsing already rejected invalid UTF-8).
std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F) return true;
  return false;
}

user read_user(const store::statement& q, int first = 0) {
  user u;
  u.id = q.text(first + 0);
  u.email = q.text(first + 1);
  u.name = q.text(first + 2);
  u.password_hash = q.text(first + 3);
  u.plan = q.text(first + 4);
  u.admin = q.int64(first + 5) != 0;
  u.token_version = q.int64(first + 6);
  u.created_at = q.text(first + 7);
  return u;
}

api_token_info read_token(const store::statement& q) {
  api_token_info t;
  t.id = q.text(0);
  t.name = q.text(1);
  t.created_at = q.text(2);
  if (!q.is_null(3)) t.last_used_at = q.text(3);
  t.revoked = q.int64(4) != 0;
  return t;
}

result<std::optional<user>> find_user(store::connection& c, std::string_view sql, std::string_view key) {
  auto q = c.prepare(sql);
  if (!q) return std::move(q).err();
  return q->bind_all(key).first<user>([](const store::statement& row) { return read_user(row); });
}

}  // namespace

std::string normalize_email(std::string_view raw) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; };
  while (!raw.empty() && is_space(raw.front())) raw.remove_prefix(1);
  while (!raw.empty() && is_space(raw.back())) raw.remove_suffix(1);
  std::string out(raw);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

status validate_email(std::string_view e, std::string_view field) {
  if (e.empty()) return invalid(field, "is required");
  if (e.size() > k_email_max) return invalid(field, fmt::format("must be at most {} characters", k_email_max));
  auto at = e.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == e.size() || e.find('@', at + 1) != std::string_view::npos)
    return invalid(field, "must be an email address like name@example.com");
  auto domain = e.substr(at + 1);
  if (domain.front() == '.' || domain.back() == '.' || domain.find("..") != std::string_view::npos)
    return invalid(field, "must be an email address like name@example.com");
  for (unsigned char c : e)
    if (c <= 0x20 || c == 0x7F) return invalid(field, "must not contain spaces or control characters");
  return {};
}

status validate_password(std::string_view p, std::string_view field) {
  if (p.size() < k_password_min) return invalid(field, fmt::format("must be at least {} characters", k_password_min));
  if (p.size() > k_password_max) return invalid(field, fmt::format("must be at most {} bytes", k_password_max));
  return {};
}

status validate_name(std::string_view n, std::string_view field) {
  if (n.find_first_not_of(" \t") == std::string_view::npos) return invalid(field, "is required");
  if (utf8_length(n) > k_name_max) return invalid(field, fmt::format("must be at most {} characters", k_name_max));
  if (has_control(n)) return invalid(field, "must not contain control characters");
  return {};
}

status validate_token_name(std::string_view n) { return validate_name(n, "name"); }

std::string new_api_token() { return std::string(k_token_prefix) + random_hex(k_token_random_bytes); }

std::string hash_api_token(std::string_view token) { return hex_encode(sha256(token)); }

bool looks_like_api_token(std::string_view token) { return token.starts_with(k_token_prefix); }

result<user> insert_user(store::connection& c, const new_user& u) {
  auto taken = find_user_by_email(c, u.email);
  if (!taken) return std::move(taken).err();
  if (*taken) return make_error(errc::already_exists, "an account with this email already exists");
  // The first account of an installation administers it. The writer runs one request at a
  // time, so the NOT EXISTS below cannot race another insert.
  auto q = c.prepare(fmt::format(
      "INSERT INTO users(id, email, name, password_hash, plan, is_admin) "
      "VALUES(?, ?, ?, ?, ?, NOT EXISTS(SELECT 1 FROM users)) RETURNING {}",
      k_user_columns));
  if (!q) return std::move(q).err();
  q->bind_all(new_uuid(), u.email, u.name, u.password_hash, u.plan);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (!*row) return make_error(errc::internal, "insert into users returned no row");
  user out = read_user(*q);
  auto done = q->step();  // finish the statement so the insert completes
  if (!done) return std::move(done).err();
  return out;
}

result<std::optional<user>> find_user_by_email(store::connection& c, std::string_view email) {
  return find_user(c, fmt::format("SELECT {} FROM users WHERE email = ?", k_user_columns), email);
}

result<std::optional<user>> find_user_by_id(store::connection& c, std::string_view id) {
  return find_user(c, fmt::format("SELECT {} FROM users WHERE id = ?", k_user_columns), id);
}

result<std::vector<user>> list_users(store::connection& c) {
  auto q = c.prepare(fmt::format("SELECT {} FROM users ORDER BY created_at, email", k_user_columns));
  if (!q) return std::move(q).err();
  return q->collect<user>([](const store::statement& r) { return read_user(r); });
}

result<std::int64_t> bump_token_version(store::connection& c, std::string_view user_id) {
  auto q = c.prepare("UPDATE users SET token_version = token_version + 1 WHERE id = ? RETURNING token_version");
  if (!q) return std::move(q).err();
  q->bind_all(user_id);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (!*row) return make_error(errc::not_found, "no such user");
  std::int64_t v = q->int64(0);
  auto done = q->step();
  if (!done) return std::move(done).err();
  return v;
}

result<std::int64_t> set_password_hash(store::connection& c, std::string_view user_id, std::string_view hash) {
  auto q = c.prepare(
      "UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE id = ? RETURNING token_version");
  if (!q) return std::move(q).err();
  q->bind_all(hash, user_id);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (!*row) return make_error(errc::not_found, "no such user");
  std::int64_t v = q->int64(0);
  auto done = q->step();
  if (!done) return std::move(done).err();
  return v;
}

result<user> set_name(store::connection& c, std::string_view user_id, std::string_view name) {
  if (auto st = c.run("UPDATE users SET name = ? WHERE id = ?", name, user_id); !st) return std::move(st).err();
  if (c.changes() == 0) return make_error(errc::not_found, "no such user");
  auto u = find_user_by_id(c, user_id);
  if (!u) return std::move(u).err();
  if (!*u) return make_error(errc::not_found, "no such user");
  return std::move(**u);
}

result<api_token_info> insert_api_token(store::connection& c, std::string_view user_id, std::string_view name,
                                        std::string_view token_hash) {
  auto q = c.prepare(
      "INSERT INTO api_tokens(id, user_id, name, token_hash) VALUES(?, ?, ?, ?) "
      "RETURNING id, name, created_at, last_used_at, revoked");
  if (!q) return std::move(q).err();
  q->bind_all(new_uuid(), user_id, name, token_hash);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (!*row) return make_error(errc::internal, "insert into api_tokens returned no row");
  auto t = read_token(*q);
  auto done = q->step();
  if (!done) return std::move(done).err();
  return t;
}

result<std::vector<api_token_info>> list_api_tokens(store::connection& c, std::string_view user_id) {
  auto q = c.prepare(
      "SELECT id, name, created_at, last_used_at, revoked FROM api_tokens "
      "WHERE user_id = ? AND revoked = 0 ORDER BY created_at, id");
  if (!q) return std::move(q).err();
  q->bind_all(user_id);
  return q->collect<api_token_info>(read_token);
}

status revoke_api_token(store::connection& c, std::string_view user_id, std::string_view token_id) {
  auto q = c.prepare("UPDATE api_tokens SET revoked = 1 WHERE id = ? AND user_id = ? AND revoked = 0");
  if (!q) return std::move(q).err();
  q->bind_all(token_id, user_id);
  auto st = q->run();
  if (!st) return st;
  if (c.changes() == 0) return make_error(errc::not_found, "no such API token");
  return {};
}

result<std::optional<token_owner>> find_token_owner(store::connection& c, std::string_view token_hash) {
  auto q = c.prepare(
      "SELECT u.id, u.email, u.name, u.password_hash, u.plan, u.is_admin, u.token_version, u.created_at, "
      "t.id, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id "
      "WHERE t.token_hash = ? AND t.revoked = 0");
  if (!q) return std::move(q).err();
  return q->bind_all(token_hash).first<token_owner>([](const store::statement& row) {
    token_owner o;
    o.owner = read_user(row);
    o.token_id = row.text(8);
    if (!row.is_null(9)) o.last_used_at = row.text(9);
    return o;
  });
}

status touch_api_token(store::connection& c, std::string_view token_id) {
  auto q = c.prepare("UPDATE api_tokens SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?");
  if (!q) return std::move(q).err();
  q->bind_all(token_id);
  return q->run();
}

result<std::string> plan_of(store::connection& c, std::string_view user_id) {
  auto q = c.prepare("SELECT plan FROM users WHERE id = ?");
  if (!q) return std::move(q).err();
  q->bind_all(user_id);
  auto row = q->step();
  if (!row) return std::move(row).err();
  return *row ? q->text(0) : std::string("free");
}

}  // namespace zapd::auth
