#pragma once

#include <optional>
#include <string>

namespace zapd::kafka {

/// librdkafka is not linked into zapd: src/kafka/rdkafka_lazy.cpp defines the rd_kafka_*
/// functions zapd calls and, on the first call to any of them, dlopen()s "librdkafka.so.1"
/// (once per process, thread-safe) and resolves every function from that handle. A server on
/// the embedded queue (the default) never maps librdkafka nor what it needs (libssl,
/// libcrypto, libsasl2, libzstd, liblz4: see docs/BENCHMARKS.md, "Footprint").
///
/// If the library cannot be loaded, that is logged once (`kafka.load_failed`) and the clients
/// are not created: every configuration (producer, consumer, ensure_topics) starts by asking
/// this, so the fleet's preparation fails with the message below.
///
/// Loads librdkafka if that has not been tried yet. Nothing when it is usable; otherwise
/// "librdkafka could not be loaded: <dlerror()>".
std::optional<std::string> rdkafka_unavailable();

}  // namespace zapd::kafka
