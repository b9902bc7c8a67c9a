#pragma once
// librdkafka's mock Kafka cluster in a helper process of its own (tests/support/kafka_mock.cpp,
// the `kafka_mock` executable), so the test, `zapd serve` and `zapd worker` processes all talk
// the real protocol to one cluster. Only built with ZAPD_WITH_KAFKA (library
// zapd_kafka_mock_support).
//
// What the mock (librdkafka 2.0.2) does and does not do: no Admin API (create topics with
// create_topic or kafka_mock_options::topics), no automatic leader failover (a partition whose
// leader is down is unavailable until the broker is up again or set_leader moves it), and any
// client's Metadata request naming an unknown topic creates it with 4 partitions and
// replication min(3, brokers): the mock speaks Metadata v0-v2 only, without the
// AllowAutoTopicCreation flag, so consumers create topics too, whatever their
// allow.auto.create.topics. Create topics before a client names them. Consumer groups work
// across processes (use partition.assignment.strategy=range,roundrobin with 2.0.2); a group's
// first join takes about 3 s, but once members have left or died the next join waits for the
// mock's rebalance timer, session.timeout.ms - 1 s (45 s by default): give test consumers a
// short session.timeout.ms (e.g. 4000, heartbeat.interval.ms 1000).
#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace zapd::test {

struct kafka_mock_topic {
  std::string name;
  int partitions = 1;
  int replication = -1;  // -1: min(3, brokers)
};

struct kafka_mock_options {
  int brokers = 3;
  std::vector<kafka_mock_topic> topics;  // created before bootstrap() is known
};

class kafka_mock {
 public:
  /// Starts the helper and waits (10 s at most) for its `bootstrap` line; throws with its
  /// stderr when it does not come.
  explicit kafka_mock(kafka_mock_options o = {});
  ~kafka_mock();  // SIGKILL if still running
  kafka_mock(const kafka_mock&) = delete;
  kafka_mock& operator=(const kafka_mock&) = delete;

  /// "127.0.0.1:port,..." for bootstrap.servers.
  const std::string& bootstrap() const { return bootstrap_; }
  int brokers() const { return brokers_; }
  pid_t pid() const { return pid_; }

  /// Sends one command line (see tests/support/kafka_mock.cpp) and waits for its answer:
  /// true for `ok`; false for `error <why>` (last_error() says why). Throws if the helper
  /// does not answer within `timeout` or is gone.
  bool command(const std::string& line, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  const std::string& last_error() const { return last_error_; }

  // The common commands; each returns command()'s answer.
  bool create_topic(const std::string& name, int partitions, int replication) {
    return command("topic " + name + " " + std::to_string(partitions) + " " + std::to_string(replication));
  }
  bool broker_down(int id) { return command("down " + std::to_string(id)); }
  bool broker_up(int id) { return command("up " + std::to_string(id)); }
  bool set_leader(const std::string& topic, int partition, int id) {
    return command("leader " + topic + " " + std::to_string(partition) + " " + std::to_string(id));
  }
  bool set_rtt(int id, int ms) { return command("rtt " + std::to_string(id) + " " + std::to_string(ms)); }

  /// `quit`, then waits (10 s) for the helper; returns its exit code (128+N if killed by N,
  /// -1 if it had to be killed).
  int stop();
  /// Sends `sig` (SIGTERM by default), then waits like stop().
  int terminate(int sig = 15);
  /// The helper's stderr (librdkafka warnings) so far.
  std::string log() const;

 private:
  std::string read_line(std::chrono::milliseconds timeout);
  int reap();

  std::string dir_;
  std::string bootstrap_;
  std::string last_error_;
  std::string pending_;  // bytes read after the last line
  int brokers_ = 0;
  pid_t pid_ = -1;
  int to_child_ = -1;    // its stdin
  int from_child_ = -1;  // its stdout
};

}  // namespace zapd::test
