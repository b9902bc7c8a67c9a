#include "zapd/hooks/ingest.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "zapd/actions/spec.hpp"
#include "zapd/auth/accounts.hpp"
#include "zapd/core/json.hpp"
#include "zapd/runs/runs.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/store/reader_pool.hpp"
#include "zapd/zaps/zaps.hpp"

namespace zapd::hooks {
namespace {

constexpr std::size_t k_cache_max = 100'000;  // entries before the cache is cleared wholesale


}  // namespace

error disabled_error(const std::string& zap_id) {
  return make_error(errc::disabled, fmt::format("zap {} is disabled; enable it to accept webhooks", zap_id));
}

result<std::optional<zap_info>> load_zap(store::connection& c, const secrets::box& box, const std::string& zap_id) {
  auto cur = zaps::current(c, zap_id);
  if (!cur) return std::move(cur).err();
  if (!*cur) return std::optional<zap_info>{};
  const zaps::current_zap& zc = **cur;
  auto plan = auth::plan_of(c, zc.state.user_id);
  if (!plan) return std::move(plan).err();
  zap_info z;
  z.id = zap_id;
  z.user_id = zc.state.user_id;
  z.enabled = zc.state.enabled;
  z.version = zc.state.version;
  z.lane = *plan == "paid" ? queue::lane::paid : queue::lane::free;
  z.actions = zc.definition.step_count();
  z.webhook = zc.definition.trigger.trigger_id == "webhook";
  const nlohmann::json& meta = zc.definition.trigger.metadata;
  auto sig = parse_scheme(string_field(meta, "signature"));
  z.sig = sig.value_or(scheme::none);
  z.signature_header = string_field(meta, "signatureHeader");
  if (z.signature_header.empty()) z.signature_header = "X-Signature";
  z.dedup_path = string_field(meta, "dedupPath");

  std::string secret_field = string_field(meta, "secret");
  auto refs = actions::secret_references(nlohmann::json(secret_field));
  if (refs.empty()) {
    z.secret = secret_field;  // a literal (not recommended, but honoured)
  } else if (z.sig != scheme::none) {
    auto all = secrets::reveal_all(c, box, z.user_id);
    if (!all) return std::move(all).err();
    if (auto it = all->find(*refs.begin()); it != all->end()) z.secret = it->second;
  }
  return std::optional<zap_info>(std::move(z));
}

result<recorded> record(store::connection& c, queue::store_publisher* jobs, const runs::new_run& r,
                        std::int64_t dedup_window_ms) {
  {
    auto z = zaps::state_of(c, r.zap_id);
    if (!z) return std::move(z).err();
    if (!*z || (*z)->user_id != r.user_id) return make_error(errc::not_found, "no such zap");
    if ((*z)->version != r.zap_version) return recorded{{}, false, true};
    if (!(*z)->enabled) return disabled_error(r.zap_id);
  }
  if (r.dedup_key) {
    auto st = c.prepare("SELECT run_id FROM dedup_keys WHERE zap_id = ? AND key = ? AND created_at_ms > ?");
    if (!st) return std::move(st).err();
    st->bind_all(r.zap_id, *r.dedup_key, r.now_ms - dedup_window_ms);
    auto row = st->step();
    if (!row) return std::move(row).err();
    if (*row) return recorded{st->text(0), true, false};
  }
  if (auto s = runs::insert(c, jobs, r); !s) return std::move(s).err();
  if (r.dedup_key) {
    // Replaces an expired key of the same value (the live one was answered above).
    if (auto s = c.run("INSERT OR REPLACE INTO dedup_keys (zap_id, key, run_id, created_at_ms) VALUES (?, ?, ?, ?)",
                       r.zap_id, *r.dedup_key, r.id, r.now_ms);
        !s)
      return std::move(s).err();
  }
  return recorded{r.id, false, false};
}

result<std::int64_t> prune_dedup(store::connection& c, std::int64_t before_ms, int batch) {
  if (auto s = c.run("DELETE FROM dedup_keys WHERE (zap_id, key) IN "
                     "(SELECT zap_id, key FROM dedup_keys WHERE created_at_ms < ? ORDER BY created_at_ms LIMIT ?)",
                     before_ms, batch);
      !s)
    return std::move(s).err();
  return c.changes();
}

zap_cache::zap_cache(store::reader_pool& readers, const secrets::box& box, const clock& clk, std::chrono::milliseconds ttl)
    : readers_(readers), box_(box), clock_(clk), ttl_(ttl) {}

result<std::shared_ptr<const zap_info>> zap_cache::get(const std::string& zap_id) {
  const std::int64_t now = clock_.now_ms();
  {
    std::lock_guard lk(mu_);
    auto it = map_.find(zap_id);
    if (it != map_.end() && now - it->second.loaded_ms < ttl_.count()) return it->second.info;
  }
  const std::uint64_t gen = generation_.load();
  auto z = readers_.with([&](store::connection& c) { return load_zap(c, box_, zap_id); });
  if (!z) return std::move(z).err();
  std::shared_ptr<const zap_info> info = *z ? std::make_shared<const zap_info>(std::move(**z)) : nullptr;
  // A forget during the load may have been about what we just read: use it once, don't keep it.
  if (ttl_.count() > 0 && generation_.load() == gen) {
    std::lock_guard lk(mu_);
    if (map_.size() >= k_cache_max) map_.clear();
    map_[zap_id] = entry{info, now};
  }
  return info;
}

void zap_cache::forget(const std::string& zap_id) {
  generation_.fetch_add(1);
  std::lock_guard lk(mu_);
  map_.erase(zap_id);
}

void zap_cache::forget_user(const std::string& user_id) {
  generation_.fetch_add(1);
  std::lock_guard lk(mu_);
  std::erase_if(map_, [&](const auto& kv) { return kv.second.info && kv.second.info->user_id == user_id; });
}

}  // namespace zapd::hooks
