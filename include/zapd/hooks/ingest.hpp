#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "zapd/core/clock.hpp"
#include "zapd/core/result.hpp"
#include "zapd/hooks/signature.hpp"
#include "zapd/queue/job.hpp"
#include "zapd/queue/queue.hpp"
#include "zapd/runs/runs.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::secrets {
class box;
}
namespace zapd::store {
class reader_pool;
}

namespace zapd::hooks {

/// What ingestion needs to know about a zap, read from its current version.
struct zap_info {
  std::string id;
  std::string user_id;
  bool enabled = true;
  std::int64_t version = 0;
  std::size_t actions = 0;           // steps a run of this version has
  queue::lane lane = queue::lane::free;  // from the owner's plan
  scheme sig = scheme::none;
  std::string secret;                // the signing secret, resolved from {{secrets.NAME}}; empty if unset
  std::string signature_header;      // scheme::hmac
  std::string dedup_path;            // body path identifying duplicates, or empty
  bool webhook = true;               // the trigger is a webhook (a schedule zap has no webhook URL)
};

/// Reads a zap's ingestion settings (and decrypts its signing secret). Nullopt: no such zap.
result<std::optional<zap_info>> load_zap(store::connection& c, const secrets::box& box, const std::string& zap_id);

struct recorded {
  std::string run_id;      // the new run, or for a duplicate the first run's id
  bool duplicate = false;  // nothing was written
  bool stale = false;      // the zap changed since it was read: nothing written, re-read and retry
};

/// The ingestion write, on the writer thread inside its transaction: checks the zap is still
/// the owner's, enabled and at `zap_version` (`not_found` / `disabled` / stale),
/// answers a live dedup key with its first run, else inserts the run, its first step (the job
/// itself through a direct `jobs`, else an outbox row; none when the zap has no actions: the
/// run is then already succeeded) and the dedup key. All or nothing with the surrounding transaction.
/// `r` is the run the webhook handler built from a verified request; `r.zap_version` is the
/// version it verified against.
result<recorded> record(store::connection& c, queue::store_publisher* jobs, const runs::new_run& r,
                        std::int64_t dedup_window_ms);

/// Deletes up to `batch` dedup keys created before `before_ms`; the number deleted.
result<std::int64_t> prune_dedup(store::connection& c, std::int64_t before_ms, int batch);

/// The error a disabled zap's webhook gets (409, names the zap as disabled).
error disabled_error(const std::string& zap_id);

/// Caches `zap_info` by zap id for `ttl`, so the hot path does not decrypt a secret per
/// request. Correctness never depends on it: `record` re-checks the version, and API writes
/// call `forget_user` so a changed secret applies at once.
/// Threading: thread-safe (one mutex; reads are a hash lookup). Lifecycle: outlives the
/// routes that use it; the pool and box must outlive it.
class zap_cache {
 public:
  zap_cache(store::reader_pool& readers, const secrets::box& box, const clock& clk, std::chrono::milliseconds ttl);

  /// The zap's settings (null when there is no such zap), from cache or a reader.
  result<std::shared_ptr<const zap_info>> get(const std::string& zap_id);
  void forget(const std::string& zap_id);
  /// Drops every cached zap of a user (their secrets or plan changed).
  void forget_user(const std::string& user_id);

 private:
  struct entry {
    std::shared_ptr<const zap_info> info;  // null: known missing
    std::int64_t loaded_ms = 0;
  };
  store::reader_pool& readers_;
  const secrets::box& box_;
  const clock& clock_;
  std::chrono::milliseconds ttl_;
  std::mutex mu_;
  std::unordered_map<std::string, entry> map_;
  std::atomic<std::uint64_t> generation_{0};  // bumped by every forget
};

}  // namespace zapd::hooks
