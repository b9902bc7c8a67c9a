// topic() and ensure_topics (the Admin API). The clients are in producer.cpp and consumer.cpp.
#include "zapd/kafka/kafka.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "client.hpp"
#include "zapd/core/log.hpp"

namespace zapd::kafka {

namespace {

template <class T, void (*Destroy)(T*)>
struct destroyer {
  void operator()(T* p) const noexcept { Destroy(p); }
};
template <class T, void (*Destroy)(T*)>
using owned = std::unique_ptr<T, destroyer<T, Destroy>>;

void destroy_topics(rd_kafka_NewTopic_t* t) { rd_kafka_NewTopic_destroy(t); }

}  // namespace

std::string topic(const settings& s, std::string_view suffix) { return fmt::format("{}.{}", s.topic_prefix, suffix); }

status ensure_topics(const settings& s, const std::vector<std::string>& topics, std::chrono::milliseconds wait) {
  if (topics.empty()) return {};
  auto conf = detail::make_conf(s, {});
  if (!conf) return std::move(conf).err();
  detail::link_state state("admin");
  detail::install_callbacks(conf->get(), &state);
  auto rk = detail::make_handle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk) return std::move(rk).err();

  std::vector<owned<rd_kafka_NewTopic_t, destroy_topics>> news;
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (const auto& name : topics) {
    std::array<char, 512> err{};
    auto* t = rd_kafka_NewTopic_new(name.c_str(), s.partitions, s.replication, err.data(), err.size());
    if (!t) return make_error(errc::invalid_argument, fmt::format("kafka topic {}: {}", name, err.data()));
    news.emplace_back(t);
    raw.push_back(t);
  }
  owned<rd_kafka_AdminOptions_t, rd_kafka_AdminOptions_destroy> options(
      rd_kafka_AdminOptions_new(rk->get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  std::array<char, 512> err{};
  int timeout_ms = static_cast<int>(std::max<std::int64_t>(1, wait.count()));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, err.data(), err.size());
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, err.data(), err.size());
  owned<rd_kafka_queue_t, rd_kafka_queue_destroy> queue(rd_kafka_queue_new(rk->get()));
  rd_kafka_CreateTopics(rk->get(), raw.data(), raw.size(), options.get(), queue.get());

  // The request timeout makes librdkafka answer by `wait`; the poll bound is the backstop.
  owned<rd_kafka_event_t, rd_kafka_event_destroy> ev(rd_kafka_queue_poll(queue.get(), timeout_ms));
  auto all = fmt::format("{}", fmt::join(topics, ", "));
  if (!ev) return make_error(errc::unavailable, fmt::format("creating kafka topics {} timed out", all));
  if (auto e = rd_kafka_event_error(ev.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(errc::unavailable,
                      fmt::format("creating kafka topics {} failed: {}", all, rd_kafka_event_error_string(ev.get())));
  const auto* res = rd_kafka_event_CreateTopics_result(ev.get());
  if (!res) return make_error(errc::unavailable, fmt::format("creating kafka topics {}: no result", all));
  size_t n = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
  for (size_t i = 0; i < n; ++i) {
    auto code = rd_kafka_topic_result_error(results[i]);
    const char* name = rd_kafka_topic_result_name(results[i]);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
      log::info("kafka.topic_created", {{"topic", name}, {"partitions", s.partitions}});
      continue;
    }
    if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
    const char* why = rd_kafka_topic_result_error_string(results[i]);
    return make_error(errc::unavailable, fmt::format("creating kafka topic {} failed: {}", name,
                                                     why ? why : rd_kafka_err2str(code)));
  }
  return {};
}

}  // namespace zapd::kafka
