#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "zapd/core/result.hpp"

namespace zapd::config {

/// Effective settings of one zapd process. Plain data: built once by `load`, then read-only
/// and shared by every thread. Every key is described in key_table() and config/zapd.toml.
struct settings {
  // [server]
  std::string server_listen = "127.0.0.1:8080";
  std::string server_public_url = "http://127.0.0.1:8080";
  std::int64_t server_threads = 0;  // 0 = one per core
  std::int64_t server_body_limit = 1024 * 1024;
  std::int64_t server_read_timeout_ms = 30'000;
  std::int64_t server_shutdown_grace_ms = 10'000;
  std::string server_trusted_proxies;  // comma-separated CIDRs; empty = the peer is the client
  // top level
  std::string data_dir = "./data";
  // [store]
  std::string store_synchronous = "full";
  std::int64_t store_readers = 4;
  std::int64_t store_batch_max = 512;
  std::int64_t store_max_pending = 20'000;
  // [queue]
  std::int64_t queue_lease_ms = 60'000;
  std::int64_t queue_paid_concurrency = 64;
  std::int64_t queue_free_concurrency = 64;
  std::string queue_backend = "embedded";  // embedded (SQLite, this process) or kafka (a fleet)
  // [kafka] (queue.backend = "kafka")
  std::string kafka_brokers;
  std::string kafka_topic_prefix = "zapd";
  std::string kafka_group = "zapd-workers";
  std::string kafka_fleet_key_file;  // empty: data_dir/fleet.key (serve); `zapd worker` needs it set
  std::int64_t kafka_partitions = 12;
  std::int64_t kafka_replication = -1;
  std::string kafka_create_topics = "on";
  std::string kafka_properties;       // "name=value;name=value": any librdkafka property (TLS, SASL)
  std::string kafka_properties_file;  // a file of name=value lines, applied after kafka.properties
  std::int64_t kafka_republish_after_ms = 900'000;  // a published step with no recorded attempt this long is published again
  // [hooks]
  std::int64_t hooks_max_depth = 64;
  std::int64_t hooks_dedup_window_seconds = 86'400;
  std::int64_t hooks_cache_ms = 2'000;
  std::int64_t hooks_free_zap_rate = 100;
  std::int64_t hooks_free_user_rate = 200;
  std::int64_t hooks_paid_zap_rate = 2'000;
  std::int64_t hooks_paid_user_rate = 5'000;
  std::int64_t hooks_burst_seconds = 2;
  // [outbox]
  std::string outbox_direct = "on";
  std::int64_t outbox_batch = 256;
  std::int64_t outbox_poll_ms = 1'000;
  std::int64_t outbox_max_depth = 1'000'000;
  // [auth]
  std::string auth_signup = "open";
  std::string auth_secret;  // empty: data_dir/secret.key
  std::int64_t auth_session_ttl_seconds = 604800;
  std::string auth_default_plan = "free";
  std::int64_t auth_hash_opslimit = 3;
  std::int64_t auth_hash_memlimit_kib = 32 * 1024;
  std::int64_t auth_hash_threads = 0;  // 0 = min(2, cores)
  std::int64_t auth_hash_queue = 64;
  std::int64_t auth_signin_account_attempts = 10;
  std::int64_t auth_signin_ip_attempts = 100;
  std::int64_t auth_signin_window_seconds = 300;
  // [zaps]
  std::int64_t zaps_max_actions = 50;
  std::int64_t zaps_max_bytes = 64 * 1024;
  // [schedule]
  std::int64_t schedule_min_interval_seconds = 60;
  // [worker]
  std::string worker_enabled = "on";
  std::int64_t worker_retry_base_ms = 5'000;
  std::int64_t worker_max_attempts = 8;
  std::int64_t worker_claim_batch = 32;
  std::int64_t worker_max_delay_days = 30;
  std::string worker_listen;  // `zapd worker`: address:port of /healthz, /readyz, /metrics; empty = none
  // [actions.http]
  std::string actions_http_allow;
  std::int64_t actions_http_max_body = 256 * 1024;
  // [email]
  std::string email_smtp_url;  // empty: the email action fails with a message saying to set it
  std::string email_username;
  std::string email_password;
  std::string email_password_file;
  std::string email_from;
  std::int64_t email_timeout_ms = 30'000;
  // [runs]
  std::int64_t runs_retention_days = 30;
  // [log]
  std::string log_level = "info";
  std::string log_format = "human";

  // Derived from server_listen by validation.
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
};

/// Where the effective value of a key came from.
enum class source { default_value, file, env, flag };

/// One documented key: its dotted name, environment name, help and whether it is a secret.
struct key_info {
  std::string name;
  std::string env;
  std::string help;
  bool secret = false;
};
const std::vector<key_info>& key_table();

/// The inputs of `load`, lowest precedence first: defaults <- file <- env <- flags.
struct sources {
  std::optional<std::string> file;                             // --config or ZAPD_CONFIG
  std::vector<std::pair<std::string, std::string>> env;        // NAME=value pairs to consider
  std::vector<std::pair<std::string, std::string>> flags;      // dotted key = value
  // Last, so the positional {file, env, flags} initialisers elsewhere keep their meaning.
  std::optional<std::string> text;  // TOML text used instead of reading `file` (which still names it in messages)
};

/// The environment of this process, as `sources::env`.
std::vector<std::pair<std::string, std::string>> process_env();

struct loaded {
  settings values;
  std::vector<std::pair<std::string, source>> origin;  // key -> where its value came from
};

/// Loads and validates. An error message is one line naming the file/key/value at fault.
result<loaded> load(const sources& in);

/// The effective config as TOML text with each key's source; secrets masked.
std::string render(const loaded& cfg);

}  // namespace zapd::config
