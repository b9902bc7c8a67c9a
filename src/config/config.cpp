#include "zapd/config/config.hpp"

#include <charconv>
#include <fstream>
#include <cstdlib>
#include <functional>
#include <map>

#include <fmt/format.h>
#include <toml++/toml.h>

extern char** environ;

namespace zapd::config {
namespace {

enum class kind { string, integer };

// A key's accessors into `settings`, plus validation of a raw value.
struct key_def {
  key_info info;
  kind k;
  std::string settings::*str = nullptr;
  std::int64_t settings::*num = nullptr;
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::vector<std::string> choices;  // allowed values for enumerated strings
};

std::string env_name(std::string_view dotted) {
  std::string out = "ZAPD_";
  for (char c : dotted) out += (c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

key_def str_key(std::string name, std::string help, std::string settings::*m, std::vector<std::string> choices = {}) {
  key_def d{{name, env_name(name), std::move(help)}, kind::string};
  d.str = m;
  d.choices = std::move(choices);
  return d;
}

// Marks a key as a secret: `config check` masks its value.
key_def secret(key_def d) {
  d.info.secret = true;
  return d;
}

key_def int_key(std::string name, std::string help, std::int64_t settings::*m, std::int64_t min, std::int64_t max) {
  key_def d{{name, env_name(name), std::move(help)}, kind::integer};
  d.num = m;
  d.min = min;
  d.max = max;
  return d;
}

const std::vector<key_def>& defs() {
  static const std::vector<key_def> table = {
      str_key("server.listen", "address:port the HTTP server listens on", &settings::server_listen),
      str_key("server.public_url", "base URL users reach zapd at (used in webhook URLs)", &settings::server_public_url),
      int_key("server.threads", "HTTP threads; 0 = one per core", &settings::server_threads, 0, 256),
      int_key("server.body_limit", "largest request body in bytes", &settings::server_body_limit, 1, 1LL << 30),
      int_key("server.read_timeout_ms", "time allowed to receive one request", &settings::server_read_timeout_ms, 100, 3'600'000),
      int_key("server.shutdown_grace_ms", "on SIGTERM, time in-flight requests get to finish", &settings::server_shutdown_grace_ms, 0, 600'000),
      str_key("server.trusted_proxies", "CIDRs of reverse proxies whose X-Forwarded-For names the client (comma-separated); empty = the connecting address is the client", &settings::server_trusted_proxies),
      str_key("data_dir", "directory holding zapd.db and the generated secrets", &settings::data_dir),
      str_key("store.synchronous", "SQLite synchronous mode: full (a 200 survives power loss) or normal", &settings::store_synchronous, {"full", "normal"}),
      int_key("store.readers", "read-only SQLite connections in the pool", &settings::store_readers, 1, 64),
      int_key("store.batch_max", "most write requests the writer commits in one transaction", &settings::store_batch_max, 1, 100'000),
      int_key("store.max_pending", "write requests queued before the writer answers overloaded", &settings::store_max_pending, 1, 10'000'000),
      int_key("queue.lease_ms", "how long a claimed job is leased before it is delivered again", &settings::queue_lease_ms, 5'000, 86'400'000),
      int_key("queue.paid_concurrency", "most jobs of the paid lane running at once", &settings::queue_paid_concurrency, 1, 100'000),
      int_key("queue.free_concurrency", "most jobs of the free lane running at once", &settings::queue_free_concurrency, 1, 100'000),
      str_key("queue.backend", "embedded: the queue is in the SQLite file and this process executes the steps; kafka: steps go through a Kafka (or Redpanda) cluster to a fleet of `zapd worker` processes ([kafka])", &settings::queue_backend, {"embedded", "kafka"}),
      str_key("kafka.brokers", "bootstrap servers of the Kafka cluster, host:port,host:port", &settings::kafka_brokers),
      str_key("kafka.topic_prefix", "topics are PREFIX.steps.free, PREFIX.steps.paid and PREFIX.results", &settings::kafka_topic_prefix),
      str_key("kafka.group", "consumer group of the workers (the primary's result recorder uses GROUP.primary)", &settings::kafka_group),
      str_key("kafka.fleet_key_file", "key that seals every message on the brokers; serve creates it (0600) when missing, default data_dir/fleet.key; give workers a copy", &settings::kafka_fleet_key_file),
      int_key("kafka.partitions", "partitions of the topics zapd creates", &settings::kafka_partitions, 1, 10'000),
      int_key("kafka.replication", "replication factor of the topics zapd creates; -1 = the brokers' default", &settings::kafka_replication, -1, 100),
      str_key("kafka.create_topics", "on: create missing topics with the Admin API at start; off: they must exist", &settings::kafka_create_topics, {"on", "off", "true", "false"}),
      secret(str_key("kafka.properties", "librdkafka properties applied last, name=value;name=value (e.g. security.protocol=SASL_SSL;sasl.mechanisms=PLAIN;sasl.username=u;sasl.password=p)", &settings::kafka_properties)),
      str_key("kafka.properties_file", "file of librdkafka name=value lines (# comments), applied after kafka.properties: keeps TLS/SASL credentials out of the config", &settings::kafka_properties_file),
      int_key("kafka.republish_after_ms", "a published step whose attempt is not recorded this long after is published again (its message was lost: topic retention, an unreadable result); above the longest a step waits in the topic plus its run time", &settings::kafka_republish_after_ms, 1'000, 30LL * 86'400'000),
      str_key("outbox.direct", "on: with the embedded queue, a due step's job is written in the same transaction as the run (the queue is in the same database); off: through an outbox row the relay moves, the path a queue outside the store takes", &settings::outbox_direct, {"on", "off"}),
      int_key("outbox.batch", "most outbox rows the relay moves to the queue per transaction", &settings::outbox_batch, 1, 100'000),
      int_key("outbox.max_depth", "with queue.backend = kafka: steps waiting in the outbox past which webhooks get 503 + Retry-After (the brokers are not taking them)", &settings::outbox_max_depth, 1, 1'000'000'000),
      int_key("outbox.poll_ms", "relay safety-net poll interval (commits wake it at once)", &settings::outbox_poll_ms, 10, 3'600'000),
      int_key("hooks.max_depth", "deepest JSON nesting a webhook body may have", &settings::hooks_max_depth, 1, 1000),
      int_key("hooks.dedup_window_seconds", "how long a webhook-id / Idempotency-Key / dedupPath value is remembered", &settings::hooks_dedup_window_seconds, 1, 30LL * 86400),
      int_key("hooks.cache_ms", "how long ingestion caches a zap's trigger settings (edits invalidate at once)", &settings::hooks_cache_ms, 0, 3'600'000),
      int_key("hooks.free_zap_rate", "webhooks per second one zap of a free account accepts; 0 = no limit", &settings::hooks_free_zap_rate, 0, 10'000'000),
      int_key("hooks.free_user_rate", "webhooks per second all zaps of a free account accept; 0 = no limit", &settings::hooks_free_user_rate, 0, 10'000'000),
      int_key("hooks.paid_zap_rate", "webhooks per second one zap of a paid account accepts; 0 = no limit", &settings::hooks_paid_zap_rate, 0, 10'000'000),
      int_key("hooks.paid_user_rate", "webhooks per second all zaps of a paid account accept; 0 = no limit", &settings::hooks_paid_user_rate, 0, 10'000'000),
      int_key("hooks.burst_seconds", "rate-limit bucket size, in seconds of the rate", &settings::hooks_burst_seconds, 1, 3600),
      str_key("auth.signup", "open (anyone may sign up) or closed (only `zapd user create` adds accounts)", &settings::auth_signup, {"open", "closed"}),
      secret(str_key("auth.secret", "key for session tokens (>= 32 chars); empty = data_dir/secret.key", &settings::auth_secret)),
      int_key("auth.session_ttl_seconds", "how long a session token is valid", &settings::auth_session_ttl_seconds, 1, 366LL * 86400),
      str_key("auth.default_plan", "plan of new accounts: free or paid", &settings::auth_default_plan, {"free", "paid"}),
      int_key("auth.hash_opslimit", "argon2id passes per password hash", &settings::auth_hash_opslimit, 1, 20),
      int_key("auth.hash_memlimit_kib", "argon2id memory per password hash, KiB", &settings::auth_hash_memlimit_kib, 8, 4LL * 1024 * 1024),
      int_key("auth.hash_threads", "password hashes computed at once; 0 = min(2, cores)", &settings::auth_hash_threads, 0, 64),
      int_key("auth.hash_queue", "password hashes waiting before sign-ins get 429", &settings::auth_hash_queue, 1, 100'000),
      int_key("auth.signin_account_attempts", "sign-in attempts per (client, account) per window before 429", &settings::auth_signin_account_attempts, 1, 1'000'000),
      int_key("auth.signin_ip_attempts", "sign-in attempts per client IP per window before 429", &settings::auth_signin_ip_attempts, 1, 1'000'000),
      int_key("auth.signin_window_seconds", "time in which spent sign-in attempts come back", &settings::auth_signin_window_seconds, 1, 86'400),
      int_key("zaps.max_actions", "most actions one zap may have", &settings::zaps_max_actions, 1, 1000),
      int_key("zaps.max_bytes", "largest zap definition (trigger + actions JSON) in bytes", &settings::zaps_max_bytes, 1024, 16 * 1024 * 1024),
      int_key("schedule.min_interval_seconds", "shortest time between two runs of a schedule zap (a faster cron or intervalSeconds gets 400)", &settings::schedule_min_interval_seconds, 1, 86'400),
      str_key("worker.enabled", "on: this process executes queued steps; off: it only accepts and queues them", &settings::worker_enabled, {"on", "off"}),
      str_key("worker.listen", "zapd worker: address:port serving /healthz, /readyz and /metrics; empty = none", &settings::worker_listen),
      int_key("worker.retry_base_ms", "scale of the retry schedule: the delay before the 2nd attempt (then x60, x360, ...)", &settings::worker_retry_base_ms, 1, 3'600'000),
      int_key("worker.max_attempts", "attempts of a failing step before it fails for good", &settings::worker_max_attempts, 1, 100),
      int_key("worker.claim_batch", "most jobs one claim takes from a lane", &settings::worker_claim_batch, 1, 10'000),
      int_key("worker.max_delay_days", "longest wait a delay step may ask for; a longer one fails the step", &settings::worker_max_delay_days, 1, 3'650),
      str_key("actions.http.allow", "CIDRs and host names the HTTP action may reach despite the SSRF guard (comma-separated)", &settings::actions_http_allow),
      int_key("actions.http.max_body", "bytes of an HTTP action's response body kept on the step", &settings::actions_http_max_body, 0, 64LL * 1024 * 1024),
      str_key("email.smtp_url", "SMTP server of the email action: smtp://host:587 (STARTTLS when offered) or smtps://host:465; empty = email steps fail", &settings::email_smtp_url),
      str_key("email.username", "SMTP AUTH user name; empty = no AUTH", &settings::email_username),
      secret(str_key("email.password", "SMTP AUTH password", &settings::email_password)),
      str_key("email.password_file", "file holding the SMTP AUTH password (e.g. a Docker or systemd secret); wins over email.password", &settings::email_password_file),
      str_key("email.from", "sender of emails whose action gives no `from`", &settings::email_from),
      int_key("email.timeout_ms", "time one SMTP delivery may take (connect to final reply)", &settings::email_timeout_ms, 100, 600'000),
      int_key("runs.retention_days", "finished runs older than this are deleted in the background (live ones are kept)", &settings::runs_retention_days, 1, 36'500),
      str_key("log.level", "debug, info, warn or error", &settings::log_level, {"debug", "info", "warn", "error"}),
      str_key("log.format", "human (one line per event) or json (one object per line)", &settings::log_format, {"human", "json"}),
  };
  return table;
}

const key_def* find_def(std::string_view name) {
  for (const auto& d : defs())
    if (d.info.name == name) return &d;
  return nullptr;
}

// Applies a raw text value to one key; `where` names its origin for the error message.
status apply(settings& s, const key_def& d, std::string_view raw, std::string_view where) {
  if (d.k == kind::integer) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
    if (ec != std::errc{} || p != raw.data() + raw.size())
      return make_error(errc::invalid_argument, fmt::format("{}: key '{}': '{}' is not an integer", where, d.info.name, raw));
    if (v < d.min || v > d.max)
      return make_error(errc::invalid_argument, fmt::format("{}: key '{}': {} is out of range ({}..{})", where, d.info.name, v, d.min, d.max));
    s.*d.num = v;
    return {};
  }
  if (!d.choices.empty()) {
    bool found = false;
    for (const auto& c : d.choices) found = found || c == raw;
    if (!found)
      return make_error(errc::invalid_argument, fmt::format("{}: key '{}': '{}' is not one of {}", where, d.info.name, raw, fmt::join(d.choices, ", ")));
  }
  s.*d.str = std::string(raw);
  return {};
}

void set_origin(loaded& l, const std::string& key, source src) {
  for (auto& [k, s] : l.origin)
    if (k == key) { s = src; return; }
  l.origin.emplace_back(key, src);
}

// Flattens a TOML table into dotted keys, rejecting keys zapd does not know.
status apply_table(loaded& l, const toml::table& t, const std::string& prefix, const std::string& file) {
  for (const auto& [k, node] : t) {
    std::string name = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = node.as_table()) {
      auto st = apply_table(l, *sub, name, file);
      if (!st) return st;
      continue;
    }
    const key_def* d = find_def(name);
    auto line = node.source().begin.line;
    std::string where = fmt::format("{}:{}", file, line);
    if (!d) return make_error(errc::invalid_argument, fmt::format("{}: unknown key '{}'", where, name));
    std::string raw;
    if (d->k == kind::integer) {
      auto v = node.value<std::int64_t>();
      if (!node.is_integer() || !v)
        return make_error(errc::invalid_argument, fmt::format("{}: key '{}': expected an integer", where, name));
      raw = fmt::to_string(*v);
    } else {
      if (!node.is_string())
        return make_error(errc::invalid_argument, fmt::format("{}: key '{}': expected a string", where, name));
      raw = *node.value<std::string>();
    }
    auto st = apply(l.values, *d, raw, where);
    if (!st) return st;
    set_origin(l, name, source::file);
  }
  return {};
}

status validate(settings& s) {
  const std::string& listen = s.server_listen;
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return make_error(errc::invalid_argument, fmt::format("key 'server.listen': '{}' is not host:port", listen));
  std::string host = listen.substr(0, colon);
  std::string port_text = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || p != port_text.data() + port_text.size() || port < 0 || port > 65535)
    return make_error(errc::invalid_argument, fmt::format("key 'server.listen': bad port '{}' (expected 0-65535)", port_text));
  s.listen_host = host;
  s.listen_port = static_cast<std::uint16_t>(port);

  const std::string& url = s.server_public_url;
  if (!(url.starts_with("http://") || url.starts_with("https://")) || url.size() < 9)
    return make_error(errc::invalid_argument, fmt::format("key 'server.public_url': '{}' must start with http:// or https://", url));
  while (!s.server_public_url.empty() && s.server_public_url.back() == '/') s.server_public_url.pop_back();
  if (s.data_dir.empty()) return make_error(errc::invalid_argument, "key 'data_dir': must not be empty");
  if (!s.auth_secret.empty() && s.auth_secret.size() < 32)
    return make_error(errc::invalid_argument, "key 'auth.secret': must be at least 32 characters (or empty to use data_dir/secret.key)");
  const std::string& smtp = s.email_smtp_url;
  if (!smtp.empty() && !smtp.starts_with("smtp://") && !smtp.starts_with("smtps://"))
    return make_error(errc::invalid_argument, fmt::format("key 'email.smtp_url': '{}' must start with smtp:// or smtps://", smtp));
  if (!s.email_password_file.empty()) {
    // The file wins over email.password: read once here, so `config check` proves it too.
    std::ifstream in(s.email_password_file, std::ios::binary);
    std::string password;
    if (!in) return make_error(errc::invalid_argument, "key 'email.password_file': cannot read " + s.email_password_file);
    std::getline(in, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
    s.email_password = std::move(password);
  }
  return {};
}

std::string quote(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string_view source_name(source s) {
  switch (s) {
    case source::default_value: return "default";
    case source::file: return "file";
    case source::env: return "env";
    case source::flag: return "flag";
  }
  return "default";
}

}  // namespace

const std::vector<key_info>& key_table() {
  static const std::vector<key_info> keys = [] {
    std::vector<key_info> out;
    for (const auto& d : defs()) out.push_back(d.info);
    return out;
  }();
  return keys;
}

std::vector<std::pair<std::string, std::string>> process_env() {
  std::vector<std::pair<std::string, std::string>> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (!kv.starts_with("ZAPD_")) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return out;
}

result<loaded> load(const sources& in) {
  loaded l;
  for (const auto& d : defs()) l.origin.emplace_back(d.info.name, source::default_value);

  if (in.file || in.text) {
    const std::string name = in.file ? *in.file : std::string("config text");
    toml::table t;
    try {
      t = in.text ? toml::parse(*in.text, name) : toml::parse_file(name);
    } catch (const toml::parse_error& e) {
      const auto& b = e.source().begin;
      return make_error(errc::invalid_argument, fmt::format("{}:{}:{}: {}", name, b.line, b.column, e.description()));
    }
    auto st = apply_table(l, t, "", name);
    if (!st) return std::move(st).err();
  }

  for (const auto& [name, value] : in.env) {
    for (const auto& d : defs()) {
      if (d.info.env != name) continue;
      auto st = apply(l.values, d, value, fmt::format("environment {}", name));
      if (!st) return std::move(st).err();
      set_origin(l, d.info.name, source::env);
    }
  }

  for (const auto& [name, value] : in.flags) {
    const key_def* d = find_def(name);
    if (!d) return make_error(errc::invalid_argument, fmt::format("flag: unknown key '{}'", name));
    auto st = apply(l.values, *d, value, "flag");
    if (!st) return std::move(st).err();
    set_origin(l, name, source::flag);
  }

  auto st = validate(l.values);
  if (!st) return std::move(st).err();
  return l;
}

std::string render(const loaded& cfg) {
  auto line_for = [&](const key_def& d, std::string_view leaf) {
    std::string value = d.k == kind::integer ? fmt::to_string(cfg.values.*d.num) : quote(cfg.values.*d.str);
    if (d.info.secret && d.k == kind::string && !(cfg.values.*d.str).empty()) value = "\"********\"";
    source src = source::default_value;
    for (const auto& [k, s] : cfg.origin)
      if (k == d.info.name) src = s;
    return fmt::format("{} = {}  # {}, {}\n", leaf, value, source_name(src), d.info.env);
  };
  // TOML wants top-level keys before any [section]; sections keep the table's order.
  std::string out;
  for (const auto& d : defs())
    if (d.info.name.find('.') == std::string::npos) out += line_for(d, d.info.name);
  std::string section;
  for (const auto& d : defs()) {
    auto dot = d.info.name.find('.');
    if (dot == std::string::npos) continue;
    std::string sec = d.info.name.substr(0, dot);
    if (sec != section) {
      out += fmt::format("\n[{}]\n", sec);
      section = sec;
    }
    out += line_for(d, std::string_view(d.info.name).substr(dot + 1));
  }
  return out;
}

}  // namespace zapd::config
