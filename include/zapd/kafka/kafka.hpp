#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/metrics/registry.hpp"

namespace zapd::kafka {

/// The `[kafka]` settings every client of the fleet shares (docs: README "Scaling out").
struct settings {
  std::string brokers;               // bootstrap.servers
  std::string topic_prefix = "zapd";  // topics are {prefix}.steps.free, {prefix}.steps.paid, {prefix}.results
  std::string group = "zapd-workers";  // the workers' consumer group
  int partitions = 12;               // for topics this process creates
  int replication = -1;              // -1: the broker's default
  bool create_topics = true;         // create missing topics with the Admin API at start
  /// Passed to librdkafka as given, after zapd's own settings (so they can override them):
  /// TLS, SASL, timeouts... e.g. {"security.protocol", "SASL_SSL"}.
  std::map<std::string, std::string> properties;
};

/// `{prefix}.{suffix}`.
std::string topic(const settings& s, std::string_view suffix);

/// An idempotent producer (enable.idempotence=true, acks=all). Thread-safe. A thread of its
/// own serves delivery reports.
class producer {
 public:
  /// Called once per message, on the producer's thread, when the cluster acknowledged it
  /// (ok) or librdkafka gave up (error, `unavailable`). Must not block.
  using delivered_fn = std::function<void(status)>;

  /// `name` labels the metrics (`zapd_kafka_connected{client="..."}`) and log lines.
  static result<std::unique_ptr<producer>> open(const settings& s, std::string name, metrics::registry& m);
  ~producer();  // flushes up to 5 s, then drops what is left (its callbacks get an error)

  /// Queues one message; `done` runs exactly once when this returns ok. Error
  /// (`overloaded` when librdkafka's queue is full): nothing was queued, `done` not called.
  status produce(const std::string& topic, std::string_view key, std::string value, delivered_fn done);
  /// Waits up to `wait` for every queued message's delivery report.
  void flush(std::chrono::milliseconds wait);
  /// Whether at least one broker connection is up (from librdkafka's statistics/errors).
  bool connected() const;

  struct impl;

 private:
  explicit producer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// A consumer-group member (the `range,roundrobin` assignor; offsets committed automatically
/// from what `done` stored: enable.auto.offset.store=false). Offsets are stored per
/// partition only up to the lowest message not yet done, so messages processed concurrently
/// are all redelivered after a crash unless every earlier one was done.
/// Threading: `poll` from one thread; `done` from any thread.
class consumer {
 public:
  struct message {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t offset = 0;
    std::string key;
    std::string value;
  };
  static result<std::unique_ptr<consumer>> open(const settings& s, std::string group, std::vector<std::string> topics,
                                                std::string name, metrics::registry& m);
  ~consumer();  // close()

  /// Waits up to `wait` for a message; nullopt when none came (errors are logged). Every
  /// message returned is in flight until `done`.
  std::optional<message> poll(std::chrono::milliseconds wait);
  /// The message is handled: its partition's offset may move past it (once every earlier
  /// message of that partition is done too).
  void done(const message& m);
  /// Commits the stored offsets and leaves the group (the partitions go to other members).
  /// Bounded: a request the brokers do not answer times out after 10 s (the consumers'
  /// socket.timeout.ms), and past 12 s the close gives up (`kafka.close_timeout`); the next
  /// owner then redelivers from the last commit. Idempotent.
  void close();

  struct impl;

 private:
  explicit consumer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Creates the topics that do not exist yet (Admin API, `s.partitions`, `s.replication`),
/// waiting up to `wait`. Ok when all exist afterwards.
status ensure_topics(const settings& s, const std::vector<std::string>& topics, std::chrono::milliseconds wait);

}  // namespace zapd::kafka
