#include "client.hpp"

#include <array>

#include <fmt/format.h>

#include "zapd/core/json.hpp"
#include "zapd/core/log.hpp"
#include "zapd/kafka/rdkafka_lazy.hpp"

namespace zapd::kafka::detail {

namespace {

// Properties whose values must never reach a message or a log line.
bool is_secret(std::string_view key) {
  std::string k = to_lower(key);
  for (std::string_view word : {"password", "secret", "sasl.jaas", "oauthbearer.config", "key.pem", "ssl.key"})
    if (k.find(word) != std::string::npos) return true;
  return false;
}

status set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  std::array<char, 512> err{};
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err.data(), err.size()) == RD_KAFKA_CONF_OK) return {};
  if (is_secret(key)) return make_error(errc::invalid_argument, fmt::format("kafka property \"{}\" was refused", key));
  return make_error(errc::invalid_argument, fmt::format("kafka property \"{}\": {}", key, err.data()));
}

log::level level_of(int syslog_level) {
  // librdkafka logs a refused connection at LOG_ERR (3); error_cb reports it too. A server
  // expects brokers to come and go: a warning.
  if (syslog_level <= 2) return log::level::error;
  if (syslog_level <= 4) return log::level::warn;
  if (syslog_level <= 6) return log::level::info;
  return log::level::debug;
}

void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* st = static_cast<link_state*>(opaque);
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    std::array<char, 512> buf{};
    auto orig = rd_kafka_fatal_error(rk, buf.data(), buf.size());
    st->fatal = true;
    st->connected = false;
    log::error("kafka.fatal", {{"client", st->name}, {"code", rd_kafka_err2name(orig)}, {"reason", buf.data()}});
    return;
  }
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) st->connected = false;
  log::warn("kafka.error", {{"client", st->name}, {"code", rd_kafka_err2name(code)}, {"reason", reason ? reason : ""}});
}

// The statistics JSON lists every broker connection with its state; one "UP" is enough.
int on_stats(rd_kafka_t*, char* json, size_t len, void* opaque) {
  auto* st = static_cast<link_state*>(opaque);
  auto doc = parse_json_or_discarded(std::string_view(json, len), 16);
  if (doc.is_discarded() || !doc.is_object()) return 0;
  auto brokers = doc.find("brokers");
  if (brokers == doc.end() || !brokers->is_object()) return 0;
  bool up = false;
  for (const auto& b : *brokers)
    if (string_field(b, "state") == "UP") up = true;
  if (!st->fatal) st->connected = up;
  return 0;  // librdkafka frees `json`
}

void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto lv = level_of(level);
  if (!log::enabled(lv)) return;
  const auto* st = static_cast<const link_state*>(rd_kafka_opaque(rk));
  log::write(lv, "kafka.log",
             {{"client", st ? std::string_view(st->name) : std::string_view(rd_kafka_name(rk))},
              {"facility", fac ? fac : ""},
              {"message", buf ? buf : ""}});
}

}  // namespace

result<conf_ptr> make_conf(const settings& s, const property_list& own) {
  // Every client (producer, consumer, ensure_topics) starts here: no librdkafka, no client.
  if (auto why = rdkafka_unavailable()) return make_error(errc::unavailable, *why);
  conf_ptr conf(rd_kafka_conf_new());
  if (!s.brokers.empty())
    if (auto st = set(conf.get(), "bootstrap.servers", s.brokers); !st) return std::move(st).err();
  // Nagle's algorithm off (librdkafka's default from 2.6; Debian 12 has 2.0.2): with it on, a
  // request written while the previous one is unacknowledged waits for the broker's delayed
  // ACK, up to 40 ms on Linux, on the path of every step. A property in s.properties wins.
  if (auto st = set(conf.get(), "socket.nagle.disable", "true"); !st) return std::move(st).err();
  for (const auto& [k, v] : own)
    if (auto st = set(conf.get(), k, v); !st) return std::move(st).err();
  for (const auto& [k, v] : s.properties)
    if (auto st = set(conf.get(), k, v); !st) return std::move(st).err();
  return conf;
}

void install_callbacks(rd_kafka_conf_t* conf, link_state* state) {
  rd_kafka_conf_set_opaque(conf, state);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_stats_cb(conf, on_stats);
  rd_kafka_conf_set_log_cb(conf, on_log);
}

result<handle_ptr> make_handle(rd_kafka_type_t type, conf_ptr conf) {
  std::array<char, 512> err{};
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err.data(), err.size());
  if (!rk) return make_error(errc::invalid_argument, fmt::format("kafka configuration refused: {}", err.data()));
  (void)conf.release();  // rd_kafka_new took it
  return handle_ptr(rk);
}

std::uint64_t add_connected_gauge(metrics::registry& m, const link_state& state) {
  auto& g = m.add_gauge("zapd_kafka_connected", "1 when the Kafka client has at least one broker connection up",
                        {{"client", state.name}});
  return m.add_collector([&g, &state] { g.set(state.connected ? 1 : 0); });
}

}  // namespace zapd::kafka::detail
