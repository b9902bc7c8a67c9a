// librdkafka, loaded on first use (include/zapd/kafka/rdkafka_lazy.hpp says why).
//
// These are the definitions of exactly the rd_kafka_* functions zapd calls, with C linkage,
// so the rest of the module includes <librdkafka/rdkafka.h> and calls librdkafka as usual
// while the binary has no DT_NEEDED on it. Each forwards to the function of the same name in
// the library dlopen()ed (RTLD_LOCAL: its symbols do not leak into the global namespace) by
// the first call, looked up in THAT handle: a test program that also links librdkafka (for
// its mock cluster) has both these definitions and the library's, and the default lookup
// would find these again. A function zapd starts to call must be added here (the link of
// `zapd` fails until it is). rd_kafka_producev is variadic and cannot be forwarded: zapd
// calls rd_kafka_produceva.
//
// Without the library no handle can exist (rd_kafka_new returns nullptr, and the clients
// check rdkafka_unavailable() before that), so the fallbacks of the functions that take one
// are never reached; they are failures all the same.
#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <mutex>
#include <string>

#include "zapd/core/dl.hpp"
#include "zapd/core/log.hpp"
#include "zapd/kafka/rdkafka_lazy.hpp"

// Every function zapd calls, without its rd_kafka_ prefix.
#define ZAPD_RDKAFKA_FUNCTIONS(X)                                                                       \
  X(conf_new) X(conf_destroy) X(conf_set) X(conf_set_opaque) X(conf_set_error_cb) X(conf_set_stats_cb) \
  X(conf_set_log_cb) X(conf_set_dr_msg_cb) X(conf_set_rebalance_cb)                                    \
  X(new) X(destroy) X(destroy_flags) X(name) X(opaque) X(fatal_error) X(poll) X(purge)                 \
  X(produceva) X(topic_name) X(err2name) X(err2str)                                                    \
  X(error_code) X(error_string) X(error_destroy)                                                       \
  X(message_destroy) X(message_errstr)                                                                 \
  X(subscribe) X(poll_set_consumer) X(consumer_poll) X(consumer_close) X(consumer_close_queue)         \
  X(consumer_closed) X(assign) X(incremental_assign) X(incremental_unassign) X(assignment_lost)        \
  X(rebalance_protocol) X(offsets_store)                                                               \
  X(topic_partition_list_new) X(topic_partition_list_add) X(topic_partition_list_destroy)              \
  X(queue_new) X(queue_destroy) X(queue_poll) X(queue_poll_callback)                                   \
  X(event_type) X(event_error) X(event_error_string) X(event_destroy) X(event_topic_partition_list)    \
  X(event_CreateTopics_result) X(CreateTopics_result_topics)                                           \
  X(NewTopic_new) X(NewTopic_destroy) X(CreateTopics)                                                  \
  X(AdminOptions_new) X(AdminOptions_destroy) X(AdminOptions_set_request_timeout)                      \
  X(AdminOptions_set_operation_timeout)                                                                \
  X(topic_result_name) X(topic_result_error) X(topic_result_error_string)

namespace {

constexpr const char* library = "librdkafka.so.1";  // librdkafka1's soname (Depends: in the .deb)
constexpr const char* not_loaded = "librdkafka could not be loaded";

struct api {
#define ZAPD_RDKAFKA_MEMBER(f) decltype(&::rd_kafka_##f) f##_ = nullptr;  // new_, conf_new_, ...
  ZAPD_RDKAFKA_FUNCTIONS(ZAPD_RDKAFKA_MEMBER)
#undef ZAPD_RDKAFKA_MEMBER
};

struct loaded {
  api fn;
  bool ok = false;
  std::string error;  // "librdkafka could not be loaded: ..." when !ok
};

loaded g;
std::once_flag g_once;

void load() {
  zapd::dl::library lib(library, not_loaded);
#define ZAPD_RDKAFKA_RESOLVE(f) lib.resolve(g.fn.f##_, "rd_kafka_" #f);
  ZAPD_RDKAFKA_FUNCTIONS(ZAPD_RDKAFKA_RESOLVE)
#undef ZAPD_RDKAFKA_RESOLVE
  if (auto why = lib.failure()) {
    // Not there, or too old a librdkafka: never call into half of it. The library stays mapped (harmless).
    g.fn = api{};
    g.error = *why;
  } else {
    g.ok = true;
  }
  if (!g.ok) zapd::log::error("kafka.load_failed", {{"library", library}, {"error", g.error}});
}

/// The functions when librdkafka is usable, else nullptr. Loads it on the first call.
const api* rdkafka() {
  std::call_once(g_once, load);
  return g.ok ? &g.fn : nullptr;
}

void refuse(char* errstr, size_t size) {
  if (errstr != nullptr && size > 0) std::snprintf(errstr, size, "%s", g.error.c_str());
}

}  // namespace

namespace zapd::kafka {

std::optional<std::string> rdkafka_unavailable() {
  if (rdkafka() != nullptr) return std::nullopt;
  return g.error;
}

}  // namespace zapd::kafka

extern "C" {

// Configuration.

rd_kafka_conf_t* rd_kafka_conf_new(void) {
  const api* k = rdkafka();
  return k != nullptr ? k->conf_new_() : nullptr;
}

void rd_kafka_conf_destroy(rd_kafka_conf_t* conf) {
  if (const api* k = rdkafka()) k->conf_destroy_(conf);
}

rd_kafka_conf_res_t rd_kafka_conf_set(rd_kafka_conf_t* conf, const char* name, const char* value, char* errstr,
                                      size_t errstr_size) {
  const api* k = rdkafka();
  if (k == nullptr) {
    refuse(errstr, errstr_size);
    return RD_KAFKA_CONF_INVALID;
  }
  return k->conf_set_(conf, name, value, errstr, errstr_size);
}

void rd_kafka_conf_set_opaque(rd_kafka_conf_t* conf, void* opaque) {
  if (const api* k = rdkafka()) k->conf_set_opaque_(conf, opaque);
}

void rd_kafka_conf_set_error_cb(rd_kafka_conf_t* conf, void (*cb)(rd_kafka_t*, int, const char*, void*)) {
  if (const api* k = rdkafka()) k->conf_set_error_cb_(conf, cb);
}

void rd_kafka_conf_set_stats_cb(rd_kafka_conf_t* conf, int (*cb)(rd_kafka_t*, char*, size_t, void*)) {
  if (const api* k = rdkafka()) k->conf_set_stats_cb_(conf, cb);
}

void rd_kafka_conf_set_log_cb(rd_kafka_conf_t* conf, void (*cb)(const rd_kafka_t*, int, const char*, const char*)) {
  if (const api* k = rdkafka()) k->conf_set_log_cb_(conf, cb);
}

void rd_kafka_conf_set_dr_msg_cb(rd_kafka_conf_t* conf, void (*cb)(rd_kafka_t*, const rd_kafka_message_t*, void*)) {
  if (const api* k = rdkafka()) k->conf_set_dr_msg_cb_(conf, cb);
}

void rd_kafka_conf_set_rebalance_cb(rd_kafka_conf_t* conf,
                                    void (*cb)(rd_kafka_t*, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t*, void*)) {
  if (const api* k = rdkafka()) k->conf_set_rebalance_cb_(conf, cb);
}

// Handles.

rd_kafka_t* rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t* conf, char* errstr, size_t errstr_size) {
  const api* k = rdkafka();
  if (k == nullptr) {
    refuse(errstr, errstr_size);
    return nullptr;
  }
  return k->new_(type, conf, errstr, errstr_size);
}

void rd_kafka_destroy(rd_kafka_t* rk) {
  if (const api* k = rdkafka()) k->destroy_(rk);
}

void rd_kafka_destroy_flags(rd_kafka_t* rk, int flags) {
  if (const api* k = rdkafka()) k->destroy_flags_(rk, flags);
}

const char* rd_kafka_name(const rd_kafka_t* rk) {
  const api* k = rdkafka();
  return k != nullptr ? k->name_(rk) : "";
}

void* rd_kafka_opaque(const rd_kafka_t* rk) {
  const api* k = rdkafka();
  return k != nullptr ? k->opaque_(rk) : nullptr;
}

rd_kafka_resp_err_t rd_kafka_fatal_error(rd_kafka_t* rk, char* errstr, size_t errstr_size) {
  const api* k = rdkafka();
  return k != nullptr ? k->fatal_error_(rk, errstr, errstr_size) : RD_KAFKA_RESP_ERR_NO_ERROR;
}

int rd_kafka_poll(rd_kafka_t* rk, int timeout_ms) {
  const api* k = rdkafka();
  return k != nullptr ? k->poll_(rk, timeout_ms) : 0;
}

rd_kafka_resp_err_t rd_kafka_purge(rd_kafka_t* rk, int purge_flags) {
  const api* k = rdkafka();
  return k != nullptr ? k->purge_(rk, purge_flags) : RD_KAFKA_RESP_ERR__FAIL;
}

// Producing.

rd_kafka_error_t* rd_kafka_produceva(rd_kafka_t* rk, const rd_kafka_vu_t* vus, size_t cnt) {
  const api* k = rdkafka();
  return k != nullptr ? k->produceva_(rk, vus, cnt) : nullptr;  // not reached: no rk without the library
}

const char* rd_kafka_topic_name(const rd_kafka_topic_t* rkt) {
  const api* k = rdkafka();
  return k != nullptr ? k->topic_name_(rkt) : "";
}

// Errors and messages.

const char* rd_kafka_err2name(rd_kafka_resp_err_t err) {
  const api* k = rdkafka();
  return k != nullptr ? k->err2name_(err) : not_loaded;
}

const char* rd_kafka_err2str(rd_kafka_resp_err_t err) {
  const api* k = rdkafka();
  return k != nullptr ? k->err2str_(err) : not_loaded;
}

rd_kafka_resp_err_t rd_kafka_error_code(const rd_kafka_error_t* error) {
  const api* k = rdkafka();
  return k != nullptr ? k->error_code_(error) : RD_KAFKA_RESP_ERR__FAIL;
}

const char* rd_kafka_error_string(const rd_kafka_error_t* error) {
  const api* k = rdkafka();
  return k != nullptr ? k->error_string_(error) : not_loaded;
}

void rd_kafka_error_destroy(rd_kafka_error_t* error) {
  if (const api* k = rdkafka()) k->error_destroy_(error);
}

void rd_kafka_message_destroy(rd_kafka_message_t* rkmessage) {
  if (const api* k = rdkafka()) k->message_destroy_(rkmessage);
}

const char* rd_kafka_message_errstr(const rd_kafka_message_t* rkmessage) {
  const api* k = rdkafka();
  return k != nullptr ? k->message_errstr_(rkmessage) : not_loaded;
}

// Consuming.

rd_kafka_resp_err_t rd_kafka_subscribe(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* topics) {
  const api* k = rdkafka();
  return k != nullptr ? k->subscribe_(rk, topics) : RD_KAFKA_RESP_ERR__FAIL;
}

rd_kafka_resp_err_t rd_kafka_poll_set_consumer(rd_kafka_t* rk) {
  const api* k = rdkafka();
  return k != nullptr ? k->poll_set_consumer_(rk) : RD_KAFKA_RESP_ERR__FAIL;
}

rd_kafka_message_t* rd_kafka_consumer_poll(rd_kafka_t* rk, int timeout_ms) {
  const api* k = rdkafka();
  return k != nullptr ? k->consumer_poll_(rk, timeout_ms) : nullptr;
}

rd_kafka_resp_err_t rd_kafka_consumer_close(rd_kafka_t* rk) {
  const api* k = rdkafka();
  return k != nullptr ? k->consumer_close_(rk) : RD_KAFKA_RESP_ERR__FAIL;
}

rd_kafka_error_t* rd_kafka_consumer_close_queue(rd_kafka_t* rk, rd_kafka_queue_t* rkqu) {
  const api* k = rdkafka();
  return k != nullptr ? k->consumer_close_queue_(rk, rkqu) : nullptr;  // not reached: no rk without the library
}

int rd_kafka_consumer_closed(rd_kafka_t* rk) {
  const api* k = rdkafka();
  return k != nullptr ? k->consumer_closed_(rk) : 1;
}

rd_kafka_resp_err_t rd_kafka_assign(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* partitions) {
  const api* k = rdkafka();
  return k != nullptr ? k->assign_(rk, partitions) : RD_KAFKA_RESP_ERR__FAIL;
}

rd_kafka_error_t* rd_kafka_incremental_assign(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* partitions) {
  const api* k = rdkafka();
  return k != nullptr ? k->incremental_assign_(rk, partitions) : nullptr;  // not reached: no rk without the library
}

rd_kafka_error_t* rd_kafka_incremental_unassign(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* partitions) {
  const api* k = rdkafka();
  return k != nullptr ? k->incremental_unassign_(rk, partitions) : nullptr;  // not reached: no rk without the library
}

int rd_kafka_assignment_lost(rd_kafka_t* rk) {
  const api* k = rdkafka();
  return k != nullptr ? k->assignment_lost_(rk) : 0;
}

const char* rd_kafka_rebalance_protocol(rd_kafka_t* rk) {
  const api* k = rdkafka();
  return k != nullptr ? k->rebalance_protocol_(rk) : nullptr;
}

rd_kafka_resp_err_t rd_kafka_offsets_store(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* offsets) {
  const api* k = rdkafka();
  return k != nullptr ? k->offsets_store_(rk, offsets) : RD_KAFKA_RESP_ERR__FAIL;
}

rd_kafka_topic_partition_list_t* rd_kafka_topic_partition_list_new(int size) {
  const api* k = rdkafka();
  return k != nullptr ? k->topic_partition_list_new_(size) : nullptr;
}

rd_kafka_topic_partition_t* rd_kafka_topic_partition_list_add(rd_kafka_topic_partition_list_t* list, const char* topic,
                                                              int32_t partition) {
  const api* k = rdkafka();
  return k != nullptr ? k->topic_partition_list_add_(list, topic, partition) : nullptr;
}

void rd_kafka_topic_partition_list_destroy(rd_kafka_topic_partition_list_t* list) {
  if (const api* k = rdkafka()) k->topic_partition_list_destroy_(list);
}

// Queues and events.

rd_kafka_queue_t* rd_kafka_queue_new(rd_kafka_t* rk) {
  const api* k = rdkafka();
  return k != nullptr ? k->queue_new_(rk) : nullptr;
}

void rd_kafka_queue_destroy(rd_kafka_queue_t* rkqu) {
  if (const api* k = rdkafka()) k->queue_destroy_(rkqu);
}

rd_kafka_event_t* rd_kafka_queue_poll(rd_kafka_queue_t* rkqu, int timeout_ms) {
  const api* k = rdkafka();
  return k != nullptr ? k->queue_poll_(rkqu, timeout_ms) : nullptr;
}

int rd_kafka_queue_poll_callback(rd_kafka_queue_t* rkqu, int timeout_ms) {
  const api* k = rdkafka();
  return k != nullptr ? k->queue_poll_callback_(rkqu, timeout_ms) : 0;
}

rd_kafka_event_type_t rd_kafka_event_type(const rd_kafka_event_t* rkev) {
  const api* k = rdkafka();
  return k != nullptr ? k->event_type_(rkev) : RD_KAFKA_EVENT_NONE;
}

rd_kafka_resp_err_t rd_kafka_event_error(rd_kafka_event_t* rkev) {
  const api* k = rdkafka();
  return k != nullptr ? k->event_error_(rkev) : RD_KAFKA_RESP_ERR__FAIL;
}

const char* rd_kafka_event_error_string(rd_kafka_event_t* rkev) {
  const api* k = rdkafka();
  return k != nullptr ? k->event_error_string_(rkev) : not_loaded;
}

void rd_kafka_event_destroy(rd_kafka_event_t* rkev) {
  if (const api* k = rdkafka()) k->event_destroy_(rkev);
}

rd_kafka_topic_partition_list_t* rd_kafka_event_topic_partition_list(rd_kafka_event_t* rkev) {
  const api* k = rdkafka();
  return k != nullptr ? k->event_topic_partition_list_(rkev) : nullptr;
}

// The Admin API (ensure_topics).

const rd_kafka_CreateTopics_result_t* rd_kafka_event_CreateTopics_result(rd_kafka_event_t* rkev) {
  const api* k = rdkafka();
  return k != nullptr ? k->event_CreateTopics_result_(rkev) : nullptr;
}

const rd_kafka_topic_result_t** rd_kafka_CreateTopics_result_topics(const rd_kafka_CreateTopics_result_t* result,
                                                                    size_t* cntp) {
  const api* k = rdkafka();
  if (k == nullptr) {
    if (cntp != nullptr) *cntp = 0;
    return nullptr;
  }
  return k->CreateTopics_result_topics_(result, cntp);
}

rd_kafka_NewTopic_t* rd_kafka_NewTopic_new(const char* topic, int num_partitions, int replication_factor, char* errstr,
                                           size_t errstr_size) {
  const api* k = rdkafka();
  if (k == nullptr) {
    refuse(errstr, errstr_size);
    return nullptr;
  }
  return k->NewTopic_new_(topic, num_partitions, replication_factor, errstr, errstr_size);
}

void rd_kafka_NewTopic_destroy(rd_kafka_NewTopic_t* new_topic) {
  if (const api* k = rdkafka()) k->NewTopic_destroy_(new_topic);
}

void rd_kafka_CreateTopics(rd_kafka_t* rk, rd_kafka_NewTopic_t** new_topics, size_t new_topic_cnt,
                           const rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* rkqu) {
  if (const api* k = rdkafka()) k->CreateTopics_(rk, new_topics, new_topic_cnt, options, rkqu);
}

rd_kafka_AdminOptions_t* rd_kafka_AdminOptions_new(rd_kafka_t* rk, rd_kafka_admin_op_t for_api) {
  const api* k = rdkafka();
  return k != nullptr ? k->AdminOptions_new_(rk, for_api) : nullptr;
}

void rd_kafka_AdminOptions_destroy(rd_kafka_AdminOptions_t* options) {
  if (const api* k = rdkafka()) k->AdminOptions_destroy_(options);
}

rd_kafka_resp_err_t rd_kafka_AdminOptions_set_request_timeout(rd_kafka_AdminOptions_t* options, int timeout_ms,
                                                              char* errstr, size_t errstr_size) {
  const api* k = rdkafka();
  if (k == nullptr) {
    refuse(errstr, errstr_size);
    return RD_KAFKA_RESP_ERR__FAIL;
  }
  return k->AdminOptions_set_request_timeout_(options, timeout_ms, errstr, errstr_size);
}

rd_kafka_resp_err_t rd_kafka_AdminOptions_set_operation_timeout(rd_kafka_AdminOptions_t* options, int timeout_ms,
                                                                char* errstr, size_t errstr_size) {
  const api* k = rdkafka();
  if (k == nullptr) {
    refuse(errstr, errstr_size);
    return RD_KAFKA_RESP_ERR__FAIL;
  }
  return k->AdminOptions_set_operation_timeout_(options, timeout_ms, errstr, errstr_size);
}

const char* rd_kafka_topic_result_name(const rd_kafka_topic_result_t* topicres) {
  const api* k = rdkafka();
  return k != nullptr ? k->topic_result_name_(topicres) : "";
}

rd_kafka_resp_err_t rd_kafka_topic_result_error(const rd_kafka_topic_result_t* topicres) {
  const api* k = rdkafka();
  return k != nullptr ? k->topic_result_error_(topicres) : RD_KAFKA_RESP_ERR__FAIL;
}

const char* rd_kafka_topic_result_error_string(const rd_kafka_topic_result_t* topicres) {
  const api* k = rdkafka();
  return k != nullptr ? k->topic_result_error_string_(topicres) : not_loaded;
}

}  // extern "C"
