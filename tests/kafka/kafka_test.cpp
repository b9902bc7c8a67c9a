// The kafka module against librdkafka's in-process mock cluster (real Kafka protocol over
// 127.0.0.1 sockets: idempotent producer, consumer groups, offset commits), plus the offset
// bookkeeping on its own. The mock has no Admin API, so topics are made through it.
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "client.hpp"
#include "zapd/kafka/kafka.hpp"
#include "zapd/kafka/offset_tracker.hpp"
#include "zapd/metrics/registry.hpp"

using namespace zapd;
using namespace std::chrono_literals;

TEST_CASE("make_conf: Nagle's algorithm is off unless the user's properties turn it on") {
  auto conf_value = [](const kafka::detail::conf_ptr& conf, const char* key) {
    std::array<char, 64> buf{};
    std::size_t size = buf.size();
    REQUIRE(rd_kafka_conf_get(conf.get(), key, buf.data(), &size) == RD_KAFKA_CONF_OK);
    return std::string(buf.data());
  };
  kafka::settings s;
  s.brokers = "127.0.0.1:1";
  auto conf = kafka::detail::make_conf(s, {{"linger.ms", "1"}});
  REQUIRE(conf.ok());
  CHECK(conf_value(*conf, "socket.nagle.disable") == "true");
  CHECK(conf_value(*conf, "linger.ms") == "1");

  s.properties = {{"socket.nagle.disable", "false"}};
  auto theirs = kafka::detail::make_conf(s, {});
  REQUIRE(theirs.ok());
  CHECK(conf_value(*theirs, "socket.nagle.disable") == "false");
}

namespace {

/// A 3-broker mock cluster hosted by a producer handle of its own; destroyed with it.
class mock_cluster {
 public:
  mock_cluster() {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // The mock's brokers take their sockets' options from this handle: no Nagle, as a real broker.
    REQUIRE(rd_kafka_conf_set(conf, "socket.nagle.disable", "true", err, sizeof err) == RD_KAFKA_CONF_OK);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    REQUIRE(rk_ != nullptr);
    mc_ = rd_kafka_mock_cluster_new(rk_, 3);
    REQUIRE(mc_ != nullptr);
  }
  ~mock_cluster() {
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(rk_);
  }
  mock_cluster(const mock_cluster&) = delete;
  mock_cluster& operator=(const mock_cluster&) = delete;

  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(mc_); }
  void set_down(bool down) {
    for (int id = 1; id <= 3; ++id)
      (down ? rd_kafka_mock_broker_set_down : rd_kafka_mock_broker_set_up)(mc_, id);
  }
  void set_rtt(int ms) {
    for (int id = 1; id <= 3; ++id) rd_kafka_mock_broker_set_rtt(mc_, id, ms);
  }
  void create_topic(const std::string& name, int partitions) {
    REQUIRE(rd_kafka_mock_topic_create(mc_, name.c_str(), partitions, 3) == RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  kafka::settings settings() const {
    kafka::settings s;
    s.brokers = bootstraps();
    s.create_topics = false;
    return s;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* mc_ = nullptr;
};

/// Produces `n` messages ("0".."n-1", key "k<i % 7>") and waits for all their reports.
void produce_all(kafka::producer& p, const std::string& topic, int n) {
  std::atomic<int> ok{0}, failed{0};
  for (int i = 0; i < n; ++i) {
    auto st = p.produce(topic, "k" + std::to_string(i % 7), std::to_string(i), [&](status s) {
      (s ? ok : failed)++;
    });
    REQUIRE(st.ok());
  }
  p.flush(10s);
  REQUIRE(ok == n);
  REQUIRE(failed == 0);
}

/// Polls until `n` messages came or `within` passed.
std::vector<kafka::consumer::message> poll_n(kafka::consumer& c, std::size_t n, std::chrono::seconds within) {
  std::vector<kafka::consumer::message> got;
  auto deadline = std::chrono::steady_clock::now() + within;
  while (got.size() < n && std::chrono::steady_clock::now() < deadline)
    if (auto m = c.poll(200ms)) got.push_back(std::move(*m));
  return got;
}

}  // namespace

TEST_CASE("offset_tracker: stores up to the lowest unfinished message, never backwards") {
  kafka::offset_tracker t;
  for (std::int64_t o = 10; o < 15; ++o) t.started("a", 0, o);
  t.started("a", 1, 7);
  CHECK(t.in_flight() == 6);

  // 11 and 13 done while 10 is not: nothing may be stored past 10.
  CHECK_FALSE(t.finished("a", 0, 11).has_value());
  CHECK_FALSE(t.finished("a", 0, 13).has_value());
  // 10 done: 11 too, 12 is the lowest unfinished.
  CHECK(t.finished("a", 0, 10) == std::optional<std::int64_t>(12));
  CHECK(t.finished("a", 0, 12) == std::optional<std::int64_t>(14));
  // The last one: past the highest done.
  CHECK(t.finished("a", 0, 14) == std::optional<std::int64_t>(15));
  // Partitions are independent.
  CHECK(t.finished("a", 1, 7) == std::optional<std::int64_t>(8));
  CHECK(t.in_flight() == 0);

  // Unknown or repeated messages store nothing.
  CHECK_FALSE(t.finished("a", 0, 14).has_value());
  CHECK_FALSE(t.finished("b", 0, 1).has_value());

  // A redelivered lower offset never moves the stored offset back.
  t.started("a", 0, 3);
  CHECK_FALSE(t.finished("a", 0, 3).has_value());
  t.started("a", 0, 15);
  CHECK(t.finished("a", 0, 15) == std::optional<std::int64_t>(16));
}

TEST_CASE("offset_tracker: a dropped partition forgets its in-flight messages") {
  kafka::offset_tracker t;
  t.started("a", 0, 1);
  t.started("a", 0, 2);
  t.started("a", 2, 5);
  t.drop("a", 0);
  CHECK(t.in_flight() == 1);
  CHECK_FALSE(t.finished("a", 0, 1).has_value());
  CHECK(t.finished("a", 2, 5) == std::optional<std::int64_t>(6));
  // Reassigned later: starts afresh (offsets from the commit).
  t.started("a", 0, 1);
  CHECK(t.finished("a", 0, 1) == std::optional<std::int64_t>(2));
}

TEST_CASE("topic: prefix and suffix") {
  kafka::settings s;
  CHECK(kafka::topic(s, "steps.free") == "zapd.steps.free");
  s.topic_prefix = "prod";
  CHECK(kafka::topic(s, "results") == "prod.results");
}

TEST_CASE("open: a property librdkafka refuses is invalid_argument naming it") {
  metrics::registry m;
  kafka::settings s;
  s.brokers = "127.0.0.1:1";
  s.properties = {{"no.such.property", "1"}};
  auto p = kafka::producer::open(s, "p", m);
  REQUIRE_FALSE(p.ok());
  CHECK(p.err().code == errc::invalid_argument);
  CHECK_THAT(p.err().message, Catch::Contains("no.such.property"));

  s.properties = {{"acks", "banana"}};
  auto c = kafka::consumer::open(s, "g", {"t"}, "c", m);
  REQUIRE_FALSE(c.ok());
  CHECK(c.err().code == errc::invalid_argument);
  CHECK_THAT(c.err().message, Catch::Contains("acks"));

  s.properties = {{"bogus.x", "1"}};
  auto e = kafka::ensure_topics(s, {"t"}, 1s);
  REQUIRE_FALSE(e.ok());
  CHECK(e.err().code == errc::invalid_argument);
  CHECK_THAT(e.err().message, Catch::Contains("bogus.x"));
}

TEST_CASE("producer: every message gets one ok delivery report, connected shows in metrics") {
  mock_cluster mc;
  mc.create_topic("zapd.t", 4);
  metrics::registry m;
  auto p = kafka::producer::open(mc.settings(), "prod", m);
  REQUIRE(p.ok());
  std::mutex mu;
  std::map<int, int> calls;  // message -> times `done` ran
  constexpr int n = 500;
  for (int i = 0; i < n; ++i)
    REQUIRE((*p)->produce("zapd.t", "run-" + std::to_string(i % 13), "v" + std::to_string(i), [&, i](status s) {
      CHECK(s.ok());
      std::lock_guard lk(mu);
      ++calls[i];
    }).ok());
  (*p)->flush(10s);
  {
    std::lock_guard lk(mu);
    REQUIRE(calls.size() == n);
    for (const auto& [i, times] : calls) CHECK(times == 1);
  }
  CHECK((*p)->connected());
  CHECK_THAT(m.render_prometheus(), Catch::Contains("zapd_kafka_connected{client=\"prod\"} 1"));
}

TEST_CASE("producer: connected goes false when every broker is down and back after recovery") {
  mock_cluster mc;
  mc.create_topic("zapd.t", 2);
  metrics::registry m;
  auto p = kafka::producer::open(mc.settings(), "flaky", m);
  REQUIRE(p.ok());
  produce_all(**p, "zapd.t", 10);
  REQUIRE((*p)->connected());

  mc.set_down(true);
  auto until = std::chrono::steady_clock::now() + 10s;
  while ((*p)->connected() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
  CHECK_FALSE((*p)->connected());
  CHECK_THAT(m.render_prometheus(), Catch::Contains("zapd_kafka_connected{client=\"flaky\"} 0"));

  // Queued while down, delivered after: the idempotent producer loses nothing.
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) REQUIRE((*p)->produce("zapd.t", "k", "late", [&](status st) { if (st) ++ok; }).ok());
  mc.set_down(false);
  (*p)->flush(15s);
  CHECK(ok == 20);
  CHECK((*p)->connected());
  CHECK_THAT(m.render_prometheus(), Catch::Contains("zapd_kafka_connected{client=\"flaky\"} 1"));
}

TEST_CASE("producer: destruction calls each outstanding done once with an error, a full queue is overloaded") {
  metrics::registry m;
  kafka::settings s;
  s.brokers = "127.0.0.1:1";  // nothing listens
  s.properties = {{"queue.buffering.max.messages", "5"}, {"message.timeout.ms", "600000"}};
  std::atomic<int> ok{0}, failed{0};
  auto started = std::chrono::steady_clock::now();
  {
    auto p = kafka::producer::open(s, "down", m);
    REQUIRE(p.ok());
    for (int i = 0; i < 5; ++i)
      REQUIRE((*p)->produce("zapd.t", "k", "v", [&](status st) { (st ? ok : failed)++; }).ok());
    bool extra_called = false;
    auto full = (*p)->produce("zapd.t", "k", "v", [&](status) { extra_called = true; });
    REQUIRE_FALSE(full.ok());
    CHECK(full.err().code == errc::overloaded);
    std::this_thread::sleep_for(500ms);
    CHECK_FALSE((*p)->connected());
    CHECK(ok == 0);
    CHECK(failed == 0);
    p->reset();
    CHECK_FALSE(extra_called);
  }
  CHECK(ok == 0);
  CHECK(failed == 5);
  CHECK(std::chrono::steady_clock::now() - started < 9s);  // 5 s flush + purge, not the message timeout
  CHECK_THAT(m.render_prometheus(), !Catch::Contains("zapd_kafka_connected{client=\"down\"} 1"));
}

TEST_CASE("consumer: a group member receives every message, a new one resumes after the done ones") {
  mock_cluster mc;
  mc.create_topic("zapd.steps", 3);
  mc.create_topic("zapd.one", 1);
  metrics::registry m;
  auto s = mc.settings();
  {
    auto p = kafka::producer::open(s, "prod", m);
    REQUIRE(p.ok());
    produce_all(**p, "zapd.steps", 120);
    produce_all(**p, "zapd.one", 10);
  }

  // Every message of a 3-partition topic reaches the one member of the group.
  {
    auto c = kafka::consumer::open(s, "g-all", {"zapd.steps"}, "c1", m);
    REQUIRE(c.ok());
    auto got = poll_n(**c, 120, 20s);
    std::set<std::string> values;
    for (const auto& msg : got) {
      values.insert(msg.value);
      CHECK(msg.topic == "zapd.steps");
      CHECK(msg.key.rfind('k', 0) == 0);
      (*c)->done(msg);
    }
    CHECK(values.size() == 120);
    CHECK(got.size() == 120);
    CHECK((*c)->poll(300ms) == std::nullopt);
    (*c)->close();
    (*c)->close();  // idempotent
  }

  // Out-of-order done on one partition: 0-3, 5, 6 done, 4 not. The commit stops at 4.
  {
    auto c = kafka::consumer::open(s, "g-resume", {"zapd.one"}, "c2", m);
    REQUIRE(c.ok());
    auto got = poll_n(**c, 10, 20s);
    REQUIRE(got.size() == 10);
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].offset == static_cast<std::int64_t>(i));
    for (int i : {6, 5, 3, 2, 1, 0}) (*c)->done(got[static_cast<std::size_t>(i)]);
    (*c)->close();
    (*c)->done(got[4]);  // after close: ignored, stores nothing
  }
  {
    auto c = kafka::consumer::open(s, "g-resume", {"zapd.one"}, "c3", m);
    REQUIRE(c.ok());
    auto got = poll_n(**c, 6, 20s);
    REQUIRE(got.size() == 6);
    CHECK(got.front().offset == 4);
    CHECK(got.front().value == "4");
    CHECK(got.back().offset == 9);
    CHECK((*c)->poll(300ms) == std::nullopt);
  }
}

TEST_CASE("consumer: close gives up on a coordinator that does not answer within its bound") {
  mock_cluster mc;
  mc.create_topic("zapd.slow", 1);
  metrics::registry m;
  auto s = mc.settings();
  {
    auto p = kafka::producer::open(s, "prod", m);
    REQUIRE(p.ok());
    produce_all(**p, "zapd.slow", 3);
  }
  auto c = kafka::consumer::open(s, "g-slow", {"zapd.slow"}, "c1", m);
  REQUIRE(c.ok());
  auto got = poll_n(**c, 3, 20s);
  REQUIRE(got.size() == 3);
  for (const auto& msg : got) (*c)->done(msg);
  // Every broker now answers after 5 minutes: the leave and the final commit never come back.
  mc.set_rtt(300'000);
  const auto t0 = std::chrono::steady_clock::now();
  (*c)->close();
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO("close took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  // Requests time out after 10 s (socket.timeout.ms) and the close is served 12 s at most;
  // with librdkafka's defaults this waits 60 s for the commit's answer.
  CHECK(took < 30s);
  mc.set_rtt(0);
}

TEST_CASE("ensure_topics: against the mock cluster it answers within the wait") {
  mock_cluster mc;
  auto s = mc.settings();
  auto started = std::chrono::steady_clock::now();
  auto st = kafka::ensure_topics(s, {"zapd.steps.free", "zapd.results"}, 2s);
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(took < 3500ms);
  if (!st.ok()) {
    CHECK(st.err().code == errc::unavailable);
    CHECK_THAT(st.err().message, Catch::Contains("zapd.steps.free"));
  }
}

TEST_CASE("ensure_topics: no broker reachable fails within the wait") {
  kafka::settings s;
  s.brokers = "127.0.0.1:1";
  auto started = std::chrono::steady_clock::now();
  auto st = kafka::ensure_topics(s, {"zapd.results"}, 1s);
  CHECK(std::chrono::steady_clock::now() - started < 2500ms);
  REQUIRE_FALSE(st.ok());
  CHECK(st.err().code == errc::unavailable);
  CHECK_THAT(st.err().message, Catch::Contains("zapd.results"));
}
