// The kafka_mock helper process (tests/support/kafka_mock.hpp): a producer and a consumer in
// this process talk the Kafka protocol to the cluster in the helper's, and its control commands
// (broker down/up, leader moves, injected errors) change what they see.
#include <signal.h>

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "kafka_mock.hpp"

using zapd::test::kafka_mock;
using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

struct rk_deleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using rk_ptr = std::unique_ptr<rd_kafka_t, rk_deleter>;

rk_ptr make_client(rd_kafka_type_t type, const std::string& bootstrap,
                   const std::vector<std::pair<std::string, std::string>>& props) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      FAIL("conf " << k << ": " << errstr);
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "3");
  // Reconnect and re-read metadata quickly, so a broker coming back or a moved leader shows
  // within the test's seconds, not librdkafka's defaults (10 s backoff, 5 min refresh).
  set("reconnect.backoff.ms", "50");
  set("reconnect.backoff.max.ms", "300");
  set("topic.metadata.refresh.interval.ms", "500");
  if (type == RD_KAFKA_PRODUCER) set("enable.idempotence", "false");
  for (const auto& [k, v] : props) set(k, v);
  if (type == RD_KAFKA_PRODUCER) rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
      *static_cast<rd_kafka_resp_err_t*>(m->_private) = m->err;
    });
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (!rk) FAIL("rd_kafka_new: " << errstr);
  return rk_ptr(rk);
}

// A delivery report's error, written by the callback; RD_KAFKA_RESP_ERR__BEGIN (an enumerator no
// delivery report carries) until it comes.
constexpr auto pending = RD_KAFKA_RESP_ERR__BEGIN;

struct delivery {
  rd_kafka_resp_err_t err = pending;
};

std::unique_ptr<delivery> produce(rd_kafka_t* p, const std::string& topic, int partition, const std::string& value) {
  auto d = std::make_unique<delivery>();
  const auto e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                                   RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&d->err), RD_KAFKA_V_END);
  REQUIRE(e == RD_KAFKA_RESP_ERR_NO_ERROR);
  return d;
}

// Serves delivery reports until `d` has one or `timeout` passes; its error, or `pending`.
rd_kafka_resp_err_t wait_delivery(rd_kafka_t* p, const delivery& d, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (d.err == pending && std::chrono::steady_clock::now() < deadline) rd_kafka_poll(p, 20);
  return d.err;
}

// Every message value in `topic` [partition] from the beginning, reading until `n` came or
// `timeout` passed.
std::vector<std::string> consume(const std::string& bootstrap, const std::string& topic, int partition, std::size_t n,
                                 std::chrono::milliseconds timeout) {
  auto c = make_client(RD_KAFKA_CONSUMER, bootstrap, {{"group.id", "kafka_mock_test"}, {"enable.auto.commit", "false"}});
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
  REQUIRE(rd_kafka_assign(c.get(), parts) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<std::string> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c.get(), 100);
    if (!m) continue;
    if (!m->err) out.emplace_back(static_cast<const char*>(m->payload), m->len);
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(c.get());
  return out;
}

int partition_count(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  const auto e = rd_kafka_metadata(rk, 0, t, &md, 5000);
  rd_kafka_topic_destroy(t);
  if (e) return -1;
  int n = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : -1;
  rd_kafka_metadata_destroy(md);
  return n;
}

}  // namespace

TEST_CASE("a producer and a consumer in another process share the helper's cluster, down, up and leader act on it") {
  kafka_mock mock({.brokers = 3, .topics = {{"preset", 2, 3}}});
  REQUIRE_THAT(mock.bootstrap(), Contains("127.0.0.1:"));
  REQUIRE(mock.create_topic("smoke", 3, 3));
  REQUIRE(mock.set_leader("smoke", 0, 1));

  auto p = make_client(RD_KAFKA_PRODUCER, mock.bootstrap(), {{"message.timeout.ms", "15000"}});
  CHECK(partition_count(p.get(), "preset") == 2);
  CHECK(partition_count(p.get(), "smoke") == 3);
  auto first = produce(p.get(), "smoke", 0, "first");
  REQUIRE(wait_delivery(p.get(), *first, 10s) == RD_KAFKA_RESP_ERR_NO_ERROR);

  // Partition 0's only leader is broker 1: while it is down nothing is delivered...
  REQUIRE(mock.broker_down(1));
  auto while_down = produce(p.get(), "smoke", 0, "while-down");
  CHECK(wait_delivery(p.get(), *while_down, 2s) == pending);
  // ...until the leader moves to a broker that is up (the mock never moves it by itself).
  REQUIRE(mock.set_leader("smoke", 0, 2));
  CHECK(wait_delivery(p.get(), *while_down, 10s) == RD_KAFKA_RESP_ERR_NO_ERROR);

  // Broker 1 up again and leading again: delivered through it.
  REQUIRE(mock.broker_up(1));
  REQUIRE(mock.set_leader("smoke", 0, 1));
  auto after_up = produce(p.get(), "smoke", 0, "after-up");
  CHECK(wait_delivery(p.get(), *after_up, 10s) == RD_KAFKA_RESP_ERR_NO_ERROR);

  CHECK(consume(mock.bootstrap(), "smoke", 0, 3, 10s) == std::vector<std::string>{"first", "while-down", "after-up"});
  CHECK(mock.stop() == 0);
}

TEST_CASE("kafka_mock answers bad commands with an error naming the problem and keeps serving") {
  kafka_mock mock({.brokers = 2});
  CHECK_FALSE(mock.command("frobnicate"));
  CHECK_THAT(mock.last_error(), Contains("unknown command: frobnicate"));
  CHECK_FALSE(mock.broker_down(7));
  CHECK_THAT(mock.last_error(), Contains("no broker 7"));
  CHECK_FALSE(mock.command("down x"));
  CHECK_THAT(mock.last_error(), Contains("broker id is not a number"));
  CHECK_FALSE(mock.create_topic("t", 2, 3));  // replication beyond the brokers
  CHECK_THAT(mock.last_error(), Contains("replication factor must be 1..2"));
  REQUIRE(mock.create_topic("t", 2, 2));
  CHECK_FALSE(mock.create_topic("t", 2, 2));
  CHECK_THAT(mock.last_error(), Contains("TOPIC_ALREADY_EXISTS"));
  // The mock would create a topic it is asked to move a leader of; the helper refuses.
  CHECK_FALSE(mock.set_leader("nope", 0, 1));
  CHECK_THAT(mock.last_error(), Contains("no topic nope"));
  CHECK_FALSE(mock.set_leader("t", 5, 1));
  CHECK_THAT(mock.last_error(), Contains("UNKNOWN_TOPIC_OR_PART"));
  CHECK_FALSE(mock.command("push-errors Produce 2 NOT_LEADER_FOR_PARTITION"));
  CHECK_THAT(mock.last_error(), Contains("CNT must be the number of errors given (1)"));
  CHECK_FALSE(mock.command("push-errors Produce 1 NO_SUCH_ERROR"));
  CHECK_THAT(mock.last_error(), Contains("unknown error code: NO_SUCH_ERROR"));
  CHECK(mock.set_rtt(1, 5));
  CHECK(mock.broker_down(-1));
  CHECK(mock.broker_up(-1));
  CHECK(mock.terminate(SIGTERM) == 0);
}

TEST_CASE("kafka_mock: pushed errors fail the next requests, a metadata request for an unknown topic creates it with 4 partitions") {
  kafka_mock mock({.brokers = 1, .topics = {{"t", 1}}});
  auto p = make_client(RD_KAFKA_PRODUCER, mock.bootstrap(), {{"message.timeout.ms", "5000"}});

  // The mock (2.0.2) speaks Metadata v0-v2 only, which has no AllowAutoTopicCreation flag:
  // any client's metadata request naming an unknown topic creates it with 4 partitions, a
  // consumer's too, whatever its allow.auto.create.topics says.
  CHECK(partition_count(p.get(), "auto_created") == 4);
  auto c = make_client(RD_KAFKA_CONSUMER, mock.bootstrap(), {{"group.id", "g"}});
  CHECK(partition_count(c.get(), "consumer_created") == 4);
  // Listing all topics creates nothing, and `leader` refuses an unknown one.
  CHECK_FALSE(mock.set_leader("listed_only", 0, 1));
  CHECK(partition_count(p.get(), "t") == 1);

  // A non-retriable error for the next Produce request fails that message's delivery.
  REQUIRE(mock.command("push-errors Produce 1 MSG_SIZE_TOO_LARGE"));
  auto failed = produce(p.get(), "t", 0, "refused");
  CHECK(wait_delivery(p.get(), *failed, 10s) == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  auto next = produce(p.get(), "t", 0, "accepted");
  CHECK(wait_delivery(p.get(), *next, 10s) == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(consume(mock.bootstrap(), "t", 0, 1, 10s) == std::vector<std::string>{"accepted"});
}

TEST_CASE("kafka_mock: a consumer group splits partitions across members and resumes from committed offsets") {
  kafka_mock mock({.brokers = 3, .topics = {{"jobs", 2}}});
  auto p = make_client(RD_KAFKA_PRODUCER, mock.bootstrap(), {});

  // range,roundrobin: cooperative-sticky has rebalance bugs in 2.0.2 (issue 15). A short
  // session timeout: once members left (or died), the mock holds the next join for the
  // rebalance timer, session.timeout.ms - 1 s (45 s by default), not the 3 s of a first join.
  const std::vector<std::pair<std::string, std::string>> group = {
      {"group.id", "workers"},        {"partition.assignment.strategy", "range,roundrobin"},
      {"auto.offset.reset", "earliest"}, {"enable.auto.commit", "false"},
      {"session.timeout.ms", "4000"}, {"heartbeat.interval.ms", "1000"}};
  auto subscribe = [&](rd_kafka_t* c) {
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, "jobs", RD_KAFKA_PARTITION_UA);
    REQUIRE(rd_kafka_subscribe(c, topics) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(topics);
  };
  // Polls every consumer until `n` messages came in all (or `timeout`); the values per consumer.
  auto drain = [](std::vector<rd_kafka_t*> cs, std::size_t n, std::chrono::milliseconds timeout = 15s) {
    std::vector<std::vector<std::string>> got(cs.size());
    std::size_t total = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (total < n && std::chrono::steady_clock::now() < deadline)
      for (std::size_t i = 0; i < cs.size(); ++i)
        if (rd_kafka_message_t* m = rd_kafka_consumer_poll(cs[i], 20)) {
          if (!m->err) got[i].emplace_back(static_cast<const char*>(m->payload), m->len), ++total;
          rd_kafka_message_destroy(m);
        }
    return got;
  };

  auto c1 = make_client(RD_KAFKA_CONSUMER, mock.bootstrap(), group);
  auto c2 = make_client(RD_KAFKA_CONSUMER, mock.bootstrap(), group);
  subscribe(c1.get());
  subscribe(c2.get());
  // Both members hold a partition before anything is produced: on a loaded box the first to
  // join could otherwise take both partitions and drain them before the other joins.
  auto assigned = [](rd_kafka_t* c) {
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (rd_kafka_assignment(c, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    const int n = parts ? parts->cnt : 0;
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    return n;
  };
  for (auto deadline = std::chrono::steady_clock::now() + 30s;
       !(assigned(c1.get()) == 1 && assigned(c2.get()) == 1) && std::chrono::steady_clock::now() < deadline;)
    for (rd_kafka_t* c : {c1.get(), c2.get()})
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 20)) rd_kafka_message_destroy(m);
  REQUIRE(assigned(c1.get()) == 1);
  REQUIRE(assigned(c2.get()) == 1);
  std::vector<std::unique_ptr<delivery>> sent;
  for (int i = 0; i < 10; ++i) sent.push_back(produce(p.get(), "jobs", i % 2, "m" + std::to_string(i)));
  for (auto& d : sent) REQUIRE(wait_delivery(p.get(), *d, 10s) == RD_KAFKA_RESP_ERR_NO_ERROR);
  auto got = drain({c1.get(), c2.get()}, 10);
  CHECK(got[0].size() == 5);  // one partition each
  CHECK(got[1].size() == 5);
  CHECK(rd_kafka_commit(c1.get(), nullptr, 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(rd_kafka_commit(c2.get(), nullptr, 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_consumer_close(c1.get());
  rd_kafka_consumer_close(c2.get());

  // A new member of the group starts at the committed offsets: only what came after.
  auto late = produce(p.get(), "jobs", 1, "late");
  REQUIRE(wait_delivery(p.get(), *late, 10s) == RD_KAFKA_RESP_ERR_NO_ERROR);
  auto c3 = make_client(RD_KAFKA_CONSUMER, mock.bootstrap(), group);
  subscribe(c3.get());
  got = drain({c3.get()}, 1, 10s);
  CHECK(got[0] == std::vector<std::string>{"late"});
  CHECK(drain({c3.get()}, 1, 1s)[0].empty());  // and nothing from before the commit
  rd_kafka_consumer_close(c3.get());
}
