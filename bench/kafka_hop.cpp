// kafka_hop: the latency of one Kafka hop, with nothing of zapd on it (bench/kafka.sh section 3).
//
//   kafka_hop BOOTSTRAP RATE SECONDS [key=value ...]
//
// One producer sends RATE messages a second for SECONDS to a new topic `hop-<nonce>` (the mock
// creates it when the consumer subscribes: 4 partitions, replication 3, as bench/kafka.sh's step
// topics), each carrying its send time; one consumer in a group of its own receives them. Both are configured as zapd's (src/kafka: an idempotent
// producer with acks=all and linger.ms=1, Nagle off, the range,roundrobin assignor); the
// key=value pairs are librdkafka properties for both (fetch.wait.max.ms=2 as the bench's
// fleet). The producer starts once the consumer holds its partitions (the mock's first group
// join takes 3 s) and a first message went through. Prints `hop: N of M received, send -> poll p50 X ms, p99 Y ms, max Z ms`.
// This is the floor under the fleet's 2xx -> sink latency: one step crosses one such hop.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}

using props_t = std::vector<std::pair<std::string, std::string>>;

// As src/kafka's make_conf: the client's own settings, then the user's `props` over them (but
// fetch.* ones to the consumer only: a producer warns of them).
rd_kafka_conf_t* conf_for(const char* bootstrap, const props_t& own, const props_t& props, bool consumer) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "kafka_hop: %s=%s: %s\n", k.c_str(), v.c_str(), err);
      std::exit(2);
    }
  };
  set("bootstrap.servers", bootstrap);
  set("socket.nagle.disable", "true");
  for (const auto& [k, v] : own) set(k, v);
  for (const auto& [k, v] : props)
    if (consumer || k.rfind("fetch.", 0) != 0) set(k, v);
  return conf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: kafka_hop BOOTSTRAP RATE SECONDS [key=value ...]\n");
    return 2;
  }
  const char* bootstrap = argv[1];
  const int rate = std::atoi(argv[2]);
  const int seconds = std::atoi(argv[3]);
  if (rate <= 0 || seconds <= 0) {
    std::fprintf(stderr, "kafka_hop: RATE and SECONDS must be positive\n");
    return 2;
  }
  props_t props;
  for (int i = 4; i < argc; ++i) {
    const char* eq = std::strchr(argv[i], '=');
    if (!eq) {
      std::fprintf(stderr, "kafka_hop: %s is not key=value\n", argv[i]);
      return 2;
    }
    props.emplace_back(std::string(argv[i], static_cast<std::size_t>(eq - argv[i])), std::string(eq + 1));
  }
  char err[512];

  // The consumer, as src/kafka/consumer.cpp's.
  // A topic and a group of its own.
  const std::int64_t nonce = now_ns();
  const std::string group = "kafka_hop-" + std::to_string(nonce);
  const std::string topic = "hop-" + std::to_string(nonce);
  rd_kafka_conf_t* cc = conf_for(bootstrap,
                                 {{"group.id", group},
                                  {"partition.assignment.strategy", "range,roundrobin"},
                                  {"auto.offset.reset", "earliest"},
                                  {"enable.auto.commit", "false"},
                                  {"session.timeout.ms", "6000"},
                                  {"heartbeat.interval.ms", "1000"}},
                                 props, true);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
  if (!consumer) return std::fprintf(stderr, "kafka_hop: consumer: %s\n", err), 1;
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto e = rd_kafka_subscribe(consumer, topics)) return std::fprintf(stderr, "kafka_hop: %s\n", rd_kafka_err2str(e)), 1;
  rd_kafka_topic_partition_list_destroy(topics);

  // Wait until the group gave the consumer its partitions.
  const auto join_by = steady::now() + std::chrono::seconds(30);
  for (;;) {
    if (rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100)) rd_kafka_message_destroy(m);
    rd_kafka_topic_partition_list_t* a = nullptr;
    if (rd_kafka_assignment(consumer, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
      const bool assigned = a->cnt > 0;
      rd_kafka_topic_partition_list_destroy(a);
      if (assigned) break;
    }
    if (steady::now() > join_by) return std::fprintf(stderr, "kafka_hop: no partitions after 30 s\n"), 1;
  }

  // The producer, as src/kafka/producer.cpp's.
  rd_kafka_conf_t* pc = conf_for(bootstrap, {{"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "1"}}, props, false);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
  if (!producer) return std::fprintf(stderr, "kafka_hop: producer: %s\n", err), 1;

  // A first message, not counted, so that the producer's set-up (its idempotent producer id,
  // the partitions' leaders) and the consumer's first fetches are behind us.
  {
    const std::int64_t warm[2] = {-nonce, now_ns()};
    rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_VALUE(const_cast<std::int64_t*>(warm), sizeof warm),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_flush(producer, 10'000);
    bool seen = false;
    const auto warm_by = steady::now() + std::chrono::seconds(15);
    while (!seen && steady::now() < warm_by) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
      if (!m) continue;
      std::int64_t got[2];
      if (!m->err && m->len == sizeof got) {
        std::memcpy(got, m->payload, sizeof got);
        seen = got[0] == -nonce;
      }
      rd_kafka_message_destroy(m);
    }
    if (!seen) return std::fprintf(stderr, "kafka_hop: the first message did not come back within 15 s\n"), 1;
  }

  const long total = static_cast<long>(rate) * seconds;
  std::thread sender([&] {
    const auto start = steady::now();
    for (long i = 0; i < total; ++i) {
      // The latency counts from when the message was due, so a sender that falls behind shows.
      const auto due = start + std::chrono::nanoseconds(i * 1'000'000'000LL / rate);
      std::this_thread::sleep_until(due);
      const std::int64_t msg[2] = {nonce, std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count()};
      char key[24];
      const int klen = std::snprintf(key, sizeof key, "run-%ld", i);
      for (;;) {
        auto e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key, static_cast<size_t>(klen)),
                                   RD_KAFKA_V_VALUE(const_cast<std::int64_t*>(msg), sizeof msg), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(producer, 1);
      }
      rd_kafka_poll(producer, 0);
    }
    rd_kafka_flush(producer, 10'000);
  });

  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(total));
  const auto give_up = steady::now() + std::chrono::seconds(seconds + 15);
  while (static_cast<long>(ms.size()) < total && steady::now() < give_up) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (!m) continue;
    std::int64_t msg[2];
    if (!m->err && m->len == sizeof msg) {
      std::memcpy(msg, m->payload, sizeof msg);
      if (msg[0] == nonce) ms.push_back(static_cast<double>(now_ns() - msg[1]) / 1e6);
    }
    rd_kafka_message_destroy(m);
  }
  sender.join();
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);

  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms.empty() ? 0.0 : ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size())))]; };
  std::printf("hop: %zu of %ld received, send -> poll p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", ms.size(), total, pct(0.50),
              pct(0.99), ms.empty() ? 0.0 : ms.back());
  return static_cast<long>(ms.size()) == total ? 0 : 1;
}
