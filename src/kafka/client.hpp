#pragma once

// Private to the kafka module: librdkafka configuration and the callbacks every client
// (producer, consumer, admin) shares.

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "zapd/core/result.hpp"
#include "zapd/kafka/kafka.hpp"

namespace zapd::kafka::detail {

struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;

struct handle_deleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
using handle_ptr = std::unique_ptr<rd_kafka_t, handle_deleter>;

using property_list = std::vector<std::pair<std::string, std::string>>;

/// A configuration: bootstrap.servers from `s.brokers`, socket.nagle.disable=true, then `own`
/// (zapd's settings for this kind of client), then `s.properties` (the user's, last so they
/// can override). A property librdkafka refuses -> invalid_argument naming it (its value only
/// when not a secret).
result<conf_ptr> make_conf(const settings& s, const property_list& own);

/// State the callbacks of one rd_kafka_t share; the conf opaque points at it (clients derive
/// from it). Lives longer than its rd_kafka_t.
struct link_state {
  explicit link_state(std::string n) : name(std::move(n)) {}
  std::string name;                 // the client's name in logs and metrics
  std::atomic<bool> connected{false};
  std::atomic<bool> fatal{false};   // a fatal error (idempotence): the client is unusable
};

/// error_cb (logs `kafka.error`, tracks `connected`/`fatal`), stats_cb (a broker UP ->
/// connected; statistics.interval.ms is set by make_conf's callers), log_cb (librdkafka's log
/// lines as `kafka.log`), and `state` as the opaque. Callbacks run on whichever thread serves
/// the client's queue (rd_kafka_poll / rd_kafka_consumer_poll), log_cb on librdkafka's own.
void install_callbacks(rd_kafka_conf_t* conf, link_state* state);

/// rd_kafka_new; its error as invalid_argument (a configuration librdkafka refuses as a whole).
result<handle_ptr> make_handle(rd_kafka_type_t type, conf_ptr conf);

/// Registers the `zapd_kafka_connected{client=name}` gauge refreshed at scrape time.
std::uint64_t add_connected_gauge(metrics::registry& m, const link_state& state);

}  // namespace zapd::kafka::detail
