#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zapd::metrics {

/// Label pairs of one series, e.g. {{"lane", "paid"}}. Order does not matter.
using labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing count. Lock-free; safe from any thread.
class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// A value that goes up and down. Lock-free; safe from any thread.
class gauge {
 public:
  void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

/// Named counters and gauges, rendered as Prometheus text (exposed at /metrics by http later).
///
/// Lifecycle: owned by `app` (tests make their own) and outlives every module holding
/// references into it; series are never removed, so a returned reference stays valid for
/// the registry's life. Threading: registration and rendering take a mutex; updates are
/// atomics. Collectors (values computed at scrape time, e.g. queue depth read from the
/// store) run on the rendering thread, one render at a time.
class registry {
 public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// The counter `name{labels}`, created on first use. `help` is kept from the first call.
  /// Registering a name already used by a gauge is a programmer error (asserts).
  counter& add_counter(std::string_view name, std::string_view help, const labels& l = {});
  /// The gauge `name{labels}`, created on first use.
  gauge& add_gauge(std::string_view name, std::string_view help, const labels& l = {});

  using collector = std::function<void()>;
  /// Runs `fn` before each render (to refresh gauges). Returns an id for remove_collector.
  std::uint64_t add_collector(collector fn);
  /// Unregisters; when it returns, the collector is not running and will not run again.
  void remove_collector(std::uint64_t id);

  /// Prometheus text exposition format 0.0.4, families sorted by name.
  std::string render_prometheus() const;

 private:
  enum class kind { counter, gauge };
  struct family {
    kind k;
    std::string help;
    std::map<std::string, std::unique_ptr<counter>> counters;  // key: rendered label set
    std::map<std::string, std::unique_ptr<gauge>> gauges;
  };
  family& family_for(std::string_view name, std::string_view help, kind k);

  mutable std::mutex mu_;
  std::map<std::string, family, std::less<>> families_;
  mutable std::mutex collectors_mu_;  // held while collectors run, so removal waits for them
  std::map<std::uint64_t, collector> collectors_;
  std::uint64_t next_collector_ = 1;
};

}  // namespace zapd::metrics
