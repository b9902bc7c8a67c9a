#include "fleet.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "options.hpp"
#include "zapd/core/clock.hpp"
#include "zapd/core/log.hpp"

namespace zapd::app {
namespace {

namespace fs = std::filesystem;

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

// One "name=value" entry into `out`; `where` names it in the error.
status add_property(std::map<std::string, std::string>& out, std::string_view entry, const std::string& where) {
  const std::string e = trim(entry);
  if (e.empty() || e.front() == '#') return {};
  const auto eq = e.find('=');
  if (eq == std::string::npos || trim(std::string_view(e).substr(0, eq)).empty())
    // Not echoed: the entry may be (part of) a password.
    return make_error(errc::invalid_argument, fmt::format("{} is not name=value", where));
  out[trim(std::string_view(e).substr(0, eq))] = trim(std::string_view(e).substr(eq + 1));
  return {};
}

}  // namespace

result<kafka::settings> kafka_settings(const config::settings& s) {
  kafka::settings k;
  k.brokers = s.kafka_brokers;
  k.topic_prefix = s.kafka_topic_prefix;
  k.group = s.kafka_group;
  k.partitions = static_cast<int>(s.kafka_partitions);
  k.replication = static_cast<int>(s.kafka_replication);
  k.create_topics = s.kafka_create_topics == "on" || s.kafka_create_topics == "true";
  if (k.brokers.empty())
    return make_error(errc::invalid_argument, "queue.backend = kafka needs kafka.brokers (env ZAPD_KAFKA_BROKERS): host:port,...");
  if (k.topic_prefix.empty() || k.group.empty())
    return make_error(errc::invalid_argument, "kafka.topic_prefix and kafka.group must not be empty");
  std::string_view rest = s.kafka_properties;
  for (std::size_t i = 0; !rest.empty(); ++i) {
    const auto semi = rest.find(';');
    if (auto st = add_property(k.properties, rest.substr(0, semi), fmt::format("kafka.properties entry {}", i + 1)); !st)
      return std::move(st).err();
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
  }
  if (!s.kafka_properties_file.empty()) {
    std::ifstream in(s.kafka_properties_file);
    if (!in)
      return make_error(errc::invalid_argument, fmt::format("kafka.properties_file {}: cannot be read", s.kafka_properties_file));
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
      if (auto st = add_property(k.properties, line, fmt::format("{} line {}", s.kafka_properties_file, n)); !st)
        return std::move(st).err();
  }
  return k;
}

result<std::unique_ptr<fleet_prepared>> prepare_fleet(const config::settings& s, bool primary, metrics::registry& m) {
  auto k = kafka_settings(s);
  if (!k) return std::move(k).err();
  std::string key_file = s.kafka_fleet_key_file;
  if (key_file.empty()) {
    if (!primary)
      return make_error(errc::invalid_argument,
                        "zapd worker needs kafka.fleet_key_file (env ZAPD_KAFKA_FLEET_KEY_FILE): a copy of the primary's "
                        "fleet key (by default its data_dir/fleet.key)");
    key_file = (fs::path(s.data_dir) / "fleet.key").string();
  }
  std::error_code ec;
  if (!primary && !fs::exists(key_file, ec))
    return make_error(errc::invalid_argument,
                      fmt::format("kafka.fleet_key_file {} does not exist: copy the primary's fleet key there (mode 0600)", key_file));
  auto key = secrets::box::load_or_create(key_file);
  if (!key) return make_error(errc::invalid_argument, fmt::format("fleet key {}: {}", key_file, key.err().message));
  if (k->create_topics) {
    if (auto st = kafka::ensure_topics(*k, fleet::all_topics(*k), std::chrono::seconds(15)); !st)
      return make_error(st.err().code, st.err().message + " (or create the topics yourself and set kafka.create_topics = off)");
  }
  auto producer = kafka::producer::open(*k, primary ? "primary" : "worker", m);
  if (!producer) return std::move(producer).err();
  auto f = std::make_unique<fleet_prepared>(fleet_prepared{std::move(*k), std::move(*key), nullptr, std::move(*producer)});
  f->seal = std::make_unique<fleet::sealer>(f->key);
  log::info("fleet.ready", {{"brokers", f->settings.brokers}, {"prefix", f->settings.topic_prefix},
                            {"group", f->settings.group}, {"key", f->seal->fingerprint()}});
  return f;
}


fleet_primary::fleet_primary(fleet_prepared& f, store::database& db, const secrets::box& user_secrets,
                             const actions::executors& ex, metrics::registry& m, wakeup& outbox_ready,
                             const config::settings& s)
    : prep(db, user_secrets, ex, worker_options(s).retry),
      steps(db, prep, *f.producer, f.settings, *f.seal, real_clock(), m, progress),
      recorder(db, f.settings, *f.seal, real_clock(), m, outbox_ready, worker_options(s).retry, progress),
      node(f.settings, *f.seal, ex, *f.producer, real_clock(), m,
           fleet::node::options{static_cast<std::size_t>(s.queue_paid_concurrency),
                                static_cast<std::size_t>(s.queue_free_concurrency),
                                std::chrono::milliseconds(s.server_shutdown_grace_ms), std::chrono::minutes(10), worker_name()}) {}

}  // namespace zapd::app
