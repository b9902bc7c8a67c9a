// kafka_mock: librdkafka's mock cluster (rdkafka_mock.h) in a process of its own, so that
// several real processes (the test, `zapd serve`, `zapd worker`s) can talk the Kafka protocol
// to one cluster. tests/support/kafka_mock.hpp starts it and drives it.
//
//   kafka_mock [--brokers N (default 3)] [--topic NAME:PARTITIONS[:RF]]...
//
// Prints one line `bootstrap <host:port,...>`, then reads commands on stdin, one per line, and
// answers each with `ok` or `error <why>` (stdout, flushed):
//   topic NAME PARTITIONS RF          create a topic
//   down BROKERID | up BROKERID       broker down / up (-1: every broker)
//   leader TOPIC PARTITION BROKERID   move a partition's leader (-1: no leader)
//   rtt BROKERID MS                   add round-trip time to a broker's responses
//   push-errors APIKEY CNT ERR...     the next CNT requests of APIKEY (a number or a name such as
//                                     Produce) fail with ERR... (numbers or names such as
//                                     NOT_LEADER_FOR_PARTITION), one per request, in order
//   clear-errors APIKEY               drop pushed errors not yet used
//   topic-error TOPIC ERR             metadata for TOPIC reports ERR (NO_ERROR clears it)
//   coordinator group|transaction KEY BROKERID   pin a group's (transaction's) coordinator
//   quit                              (or EOF on stdin, SIGTERM, SIGINT) destroy and exit 0
//
// The mock cluster (librdkafka 2.0.2, src/rdkafka_mock*.c) has no Admin API (no CreateTopics:
// create topics here), no automatic leader failover (a partition whose leader is down is
// unavailable until the broker is up again or `leader` moves it), and it auto-creates topics:
// a Metadata request naming an unknown topic creates it with 4 partitions and replication
// min(3, brokers) (defaults.partition_cnt, rdkafka_mock.c). The mock answers Metadata v0-v2
// only, which has no AllowAutoTopicCreation flag, so this happens for consumers too, whatever
// their `allow.auto.create.topics` (a consumer subscribing first creates a 4-partition topic);
// a request for all topics creates nothing. Produce/Fetch for an unknown topic answer
// UNKNOWN_TOPIC_OR_PART. `leader` (and `topic-error`) on an unknown topic would create it in the
// mock too, so this helper refuses them instead. Consumer groups: a first join takes 3 s; a join
// after members left or died waits session.timeout.ms - 1 s (rdkafka_mock_cgrp.c).
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct topic_spec {
  std::string name;
  int partitions = 0;
  int rf = 0;
};

bool parse_int(std::string_view s, int& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

void usage() {
  std::fprintf(stderr, "usage: kafka_mock [--brokers N] [--topic NAME:PARTITIONS[:RF]]...\n");
}

// Kafka API keys by name (the mock's handlers, rdkafka_mock_handlers.c), or a number.
bool parse_api_key(const std::string& s, int16_t& out) {
  static const std::pair<const char*, int16_t> names[] = {
      {"Produce", 0},         {"Fetch", 1},       {"ListOffsets", 2},     {"Metadata", 3},
      {"OffsetCommit", 8},    {"OffsetFetch", 9}, {"FindCoordinator", 10}, {"JoinGroup", 11},
      {"Heartbeat", 12},      {"LeaveGroup", 13}, {"SyncGroup", 14},       {"ApiVersion", 18},
      {"InitProducerId", 22}, {"AddPartitionsToTxn", 24}, {"AddOffsetsToTxn", 25},
      {"EndTxn", 26},         {"TxnOffsetCommit", 28}};
  for (const auto& [n, k] : names)
    if (strcasecmp(n, s.c_str()) == 0) return out = k, true;
  int v = 0;
  if (!parse_int(s, v) || v < 0 || v > 100) return false;
  out = static_cast<int16_t>(v);
  return true;
}

// An error code by number or by name (RD_KAFKA_RESP_ERR_<NAME> without the prefix).
bool parse_err(const std::string& s, rd_kafka_resp_err_t& out) {
  int v = 0;
  if (parse_int(s, v)) return out = static_cast<rd_kafka_resp_err_t>(v), true;
  const rd_kafka_err_desc* descs = nullptr;
  size_t cnt = 0;
  rd_kafka_get_err_descs(&descs, &cnt);
  for (size_t i = 0; i < cnt; ++i)
    if (descs[i].name && strcasecmp(descs[i].name, s.c_str()) == 0)
      return out = descs[i].code, true;
  return false;
}

class mock {
 public:
  mock(rd_kafka_t* rk, rd_kafka_mock_cluster_t* mc, int brokers) : rk_(rk), mc_(mc), brokers_(brokers) {}

  std::string create_topic(const topic_spec& t) {
    if (t.name.empty()) return "topic name is empty";
    if (t.partitions < 1 || t.partitions > 10000) return "partitions must be 1..10000";
    if (t.rf < 1 || t.rf > brokers_) return "replication factor must be 1.." + std::to_string(brokers_);
    if (auto e = rd_kafka_mock_topic_create(mc_, t.name.c_str(), t.partitions, t.rf)) return rd_kafka_err2name(e);
    known_.insert(t.name);
    return {};
  }

  // One command line -> "" (ok) or why not.
  std::string run(const std::string& line, bool& quit) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    if (w.empty()) return "empty command";
    const std::string& cmd = w[0];
    auto need = [&](std::size_t n, const char* form) -> std::string {
      return w.size() == n ? std::string() : std::string("usage: ") + form;
    };
    auto num = [&](std::size_t i, int& out, const char* what) -> std::string {
      return parse_int(w[i], out) ? std::string() : std::string(what) + " is not a number: " + w[i];
    };
    auto broker = [&](std::size_t i, int& out) -> std::string {
      if (auto e = num(i, out, "broker id"); !e.empty()) return e;
      if (out != -1 && (out < 1 || out > brokers_))
        return "no broker " + w[i] + " (brokers are 1.." + std::to_string(brokers_) + ", -1 is all)";
      return {};
    };
    std::string e;
    if (cmd == "quit") {
      if (!(e = need(1, "quit")).empty()) return e;
      quit = true;
      return {};
    }
    if (cmd == "topic") {
      topic_spec t;
      if (!(e = need(4, "topic NAME PARTITIONS RF")).empty() || !(e = num(2, t.partitions, "partitions")).empty() ||
          !(e = num(3, t.rf, "replication factor")).empty())
        return e;
      t.name = w[1];
      return create_topic(t);
    }
    if (cmd == "down" || cmd == "up") {
      int id = 0;
      if (!(e = need(2, "down|up BROKERID")).empty() || !(e = broker(1, id)).empty()) return e;
      return err(cmd == "down" ? rd_kafka_mock_broker_set_down(mc_, id) : rd_kafka_mock_broker_set_up(mc_, id));
    }
    if (cmd == "rtt") {
      int id = 0, ms = 0;
      if (!(e = need(3, "rtt BROKERID MS")).empty() || !(e = broker(1, id)).empty() || !(e = num(2, ms, "MS")).empty())
        return e;
      if (ms < 0) return "MS must be >= 0";
      return err(rd_kafka_mock_broker_set_rtt(mc_, id, ms));
    }
    if (cmd == "leader") {
      int p = 0, id = 0;
      if (!(e = need(4, "leader TOPIC PARTITION BROKERID")).empty() || !(e = num(2, p, "partition")).empty() ||
          !(e = broker(3, id)).empty())
        return e;
      if (p < 0) return "partition must be >= 0";
      if (!(e = exists(w[1])).empty()) return e;
      return err(rd_kafka_mock_partition_set_leader(mc_, w[1].c_str(), p, id));
    }
    if (cmd == "topic-error") {
      rd_kafka_resp_err_t code{};
      if (!(e = need(3, "topic-error TOPIC ERR")).empty()) return e;
      if (!parse_err(w[2], code)) return "unknown error code: " + w[2];
      if (!(e = exists(w[1])).empty()) return e;
      rd_kafka_mock_topic_set_error(mc_, w[1].c_str(), code);
      return {};
    }
    if (cmd == "push-errors") {
      int16_t key = 0;
      int cnt = 0;
      if (w.size() < 4) return "usage: push-errors APIKEY CNT ERR...";
      if (!parse_api_key(w[1], key)) return "unknown API key: " + w[1];
      if (!(e = num(2, cnt, "CNT")).empty()) return e;
      if (cnt < 1 || static_cast<std::size_t>(cnt) != w.size() - 3)
        return "CNT must be the number of errors given (" + std::to_string(w.size() - 3) + ")";
      std::vector<rd_kafka_resp_err_t> errs;
      for (std::size_t i = 3; i < w.size(); ++i) {
        rd_kafka_resp_err_t code{};
        if (!parse_err(w[i], code)) return "unknown error code: " + w[i];
        errs.push_back(code);
      }
      rd_kafka_mock_push_request_errors_array(mc_, key, errs.size(), errs.data());
      return {};
    }
    if (cmd == "clear-errors") {
      int16_t key = 0;
      if (!(e = need(2, "clear-errors APIKEY")).empty()) return e;
      if (!parse_api_key(w[1], key)) return "unknown API key: " + w[1];
      rd_kafka_mock_clear_request_errors(mc_, key);
      return {};
    }
    if (cmd == "coordinator") {
      int id = 0;
      if (!(e = need(4, "coordinator group|transaction KEY BROKERID")).empty() || !(e = broker(3, id)).empty()) return e;
      if (w[1] != "group" && w[1] != "transaction") return "coordinator type must be group or transaction";
      if (id == -1) return "a coordinator is one broker";
      return err(rd_kafka_mock_coordinator_set(mc_, w[1].c_str(), w[2].c_str(), id));
    }
    return "unknown command: " + cmd;
  }

 private:
  static std::string err(rd_kafka_resp_err_t e) { return e ? rd_kafka_err2name(e) : ""; }

  // The mock creates a topic it is asked to change; refuse names it does not have instead.
  // Topics clients had auto-created are found through a metadata request for all topics.
  std::string exists(const std::string& topic) {
    if (known_.count(topic)) return {};
    const rd_kafka_metadata_t* md = nullptr;
    if (auto e = rd_kafka_metadata(rk_, 1, nullptr, &md, 5000))
      return std::string("cannot list topics: ") + rd_kafka_err2name(e);
    for (int i = 0; i < md->topic_cnt; ++i) known_.insert(md->topics[i].topic);
    rd_kafka_metadata_destroy(md);
    return known_.count(topic) ? std::string() : "no topic " + topic;
  }

  rd_kafka_t* rk_;
  rd_kafka_mock_cluster_t* mc_;
  int brokers_;
  std::set<std::string> known_;
};

void answer(const std::string& why) {
  if (why.empty())
    std::fputs("ok\n", stdout);
  else
    std::fprintf(stdout, "error %s\n", why.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  std::vector<topic_spec> topics;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--brokers" && i + 1 < argc) {
      if (!parse_int(argv[++i], brokers) || brokers < 1 || brokers > 32) {
        std::fprintf(stderr, "kafka_mock: --brokers must be 1..32\n");
        return 2;
      }
    } else if (a == "--topic" && i + 1 < argc) {
      std::string_view spec = argv[++i];
      topic_spec t;
      const auto c1 = spec.find(':');
      const auto c2 = c1 == spec.npos ? spec.npos : spec.find(':', c1 + 1);
      t.rf = -1;
      if (c1 == spec.npos || !parse_int(spec.substr(c1 + 1, c2 == spec.npos ? spec.npos : c2 - c1 - 1), t.partitions) ||
          (c2 != spec.npos && !parse_int(spec.substr(c2 + 1), t.rf))) {
        std::fprintf(stderr, "kafka_mock: --topic wants NAME:PARTITIONS[:RF], got %s\n", argv[i]);
        return 2;
      }
      t.name = std::string(spec.substr(0, c1));
      topics.push_back(t);
    } else {
      usage();
      return 2;
    }
  }

  // SIGTERM/SIGINT are read through a signalfd next to stdin. Blocked before rd_kafka_new so
  // librdkafka's threads inherit the mask and never take them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGPIPE);  // a test that went away: writes fail with EPIPE, EOF ends us
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  sigdelset(&sigs, SIGPIPE);
  const int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  if (sfd < 0) {
    std::fprintf(stderr, "kafka_mock: signalfd: %s\n", std::strerror(errno));
    return 1;
  }

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr);  // warnings and worse, on stderr
  // The mock's brokers set up their accepted sockets from this handle's configuration. A real
  // Kafka broker disables Nagle's algorithm on its sockets; librdkafka 2.0.2's default leaves
  // it on, and then a response written while the previous one is unacknowledged waits for the
  // client's delayed ACK (40 ms on Linux): produce acknowledgements of 40-50 ms that no broker
  // would give.
  rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    std::fprintf(stderr, "kafka_mock: rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    std::fprintf(stderr, "kafka_mock: cannot create a mock cluster of %d brokers\n", brokers);
    rd_kafka_destroy(rk);
    return 1;
  }
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
  // The helper's own handle talks to its cluster only to list topics (mock::exists).
  rd_kafka_brokers_add(rk, bootstrap.c_str());

  int rc = 0;
  {
    mock m(rk, mc, brokers);
    for (auto& t : topics) {
      if (t.rf == -1) t.rf = std::min(3, brokers);
      if (auto why = m.create_topic(t); !why.empty()) {
        std::fprintf(stderr, "kafka_mock: topic %s: %s\n", t.name.c_str(), why.c_str());
        rc = 2;
      }
    }
    if (rc == 0) {
      std::fprintf(stdout, "bootstrap %s\n", bootstrap.c_str());
      std::fflush(stdout);
    }

    std::string buf;
    bool quit = rc != 0;
    while (!quit) {
      pollfd fds[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents) break;  // SIGTERM / SIGINT
      if (!fds[0].revents) continue;
      char chunk[4096];
      const ssize_t n = read(0, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EOF: the test is gone
      buf.append(chunk, static_cast<std::size_t>(n));
      for (std::size_t nl; !quit && (nl = buf.find('\n')) != std::string::npos;) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        answer(m.run(line, quit));
      }
      if (buf.size() > 64 * 1024) {
        answer("line too long");
        buf.clear();
      }
    }
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  close(sfd);
  return rc;
}
