#include "zapd/schedule/scheduler.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "zapd/auth/accounts.hpp"
#include "zapd/core/ids.hpp"
#include "zapd/core/json.hpp"
#include "zapd/core/log.hpp"
#include "zapd/store/reader_pool.hpp"
#include "zapd/zaps/zaps.hpp"

namespace zapd::schedule {
namespace {

constexpr int k_max_walk = 100'000;

}  // namespace

std::optional<std::int64_t> latest_slot(const cron::schedule& s, std::int64_t after_ms, std::int64_t upto_ms) {
  if (upto_ms <= after_ms) return std::nullopt;
  if (s.is_interval()) {
    const std::int64_t step = s.interval_seconds() * 1000;
    const std::int64_t k = upto_ms >= 0 ? upto_ms / step : -((-upto_ms + step - 1) / step);
    const std::int64_t slot = k * step;
    return slot > after_ms ? std::optional<std::int64_t>(slot) : std::nullopt;
  }
  // Cron has no cheap "previous": look back an hour, a day, a month, a year, ten years from
  // `upto_ms`; in the first window holding a slot, walk forward to its last slot.
  constexpr std::int64_t hour = 3'600'000;
  int walked = 0;
  for (std::int64_t window : {hour, 24 * hour, 32 * 24 * hour, 366 * 24 * hour, 3660 * 24 * hour}) {
    std::int64_t from = std::max(after_ms, upto_ms - window);
    auto slot = s.next_after(from);
    if (!slot || *slot > upto_ms) {
      if (from == after_ms) return std::nullopt;
      continue;
    }
    std::int64_t last = *slot;
    while (walked++ < k_max_walk) {
      auto next = s.next_after(last);
      if (!next || *next > upto_ms) break;
      last = *next;
    }
    return last;
  }
  return std::nullopt;
}

plan plan_on_load(const zaps::schedule_config& cfg, const std::optional<slot_state>& row, std::int64_t zap_version,
                  std::int64_t now_ms) {
  plan p;
  if (!row || row->zap_version != zap_version) {
    p.baseline = row ? std::max(row->through_ms, now_ms) : now_ms;
    p.next = cfg.when.next_after(*p.baseline);
    return p;
  }
  auto first = cfg.when.next_after(row->through_ms);
  if (!first || *first > now_ms) {
    p.next = first;
    return p;
  }
  p.missed = true;
  if (cfg.catch_up_last) p.fire_now = latest_slot(cfg.when, row->through_ms, now_ms);
  p.next = cfg.when.next_after(now_ms);
  return p;
}

runs::new_run make_run(const slot_run& s) {
  const std::string scheduled = cron::rfc3339(s.slot_ms);
  const std::string fired = iso_time_ms(s.now_ms);
  nlohmann::json payload = {{"scheduledFor", scheduled}, {"firedAt", fired}};
  nlohmann::json trigger = {{"body", payload}, {"scheduledFor", scheduled}, {"firedAt", fired}, {"receivedAt", fired}};
  runs::new_run r;
  r.id = new_uuid_v7(s.now_ms);
  r.zap_id = s.zap_id;
  r.user_id = s.user_id;
  r.zap_version = s.zap_version;
  r.lane = s.lane;
  r.actions = s.actions;
  r.trigger_json = dump_safe(trigger);
  r.dedup_key = "schedule:" + scheduled;
  r.now_ms = s.now_ms;
  return r;
}

result<std::map<std::string, slot_state>> load_states(store::connection& c) {
  auto q = c.prepare("SELECT zap_id, zap_version, through_ms, last_slot_ms FROM schedules");
  if (!q) return std::move(q).err();
  std::map<std::string, slot_state> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).err();
    if (!*row) break;
    slot_state s{q->int64(1), q->int64(2), std::nullopt};
    if (!q->is_null(3)) s.last_slot_ms = q->int64(3);
    out.emplace(q->text(0), s);
  }
  return out;
}

status set_baseline(store::connection& c, const std::string& zap_id, std::int64_t zap_version, std::int64_t through_ms) {
  return c.run(
      "INSERT INTO schedules (zap_id, zap_version, through_ms) VALUES (?, ?, ?) "
      "ON CONFLICT (zap_id) DO UPDATE SET zap_version = excluded.zap_version, "
      "through_ms = MAX(through_ms, excluded.through_ms)",
      zap_id, zap_version, through_ms);
}

status drop_others(store::connection& c, const std::vector<std::string>& keep) {
  auto rows = load_states(c);
  if (!rows) return std::move(rows).err();
  const std::set<std::string> kept(keep.begin(), keep.end());
  for (const auto& [id, _] : *rows)
    if (!kept.contains(id))
      if (auto s = c.run("DELETE FROM schedules WHERE zap_id = ?", id); !s) return s;
  return {};
}

result<fire_result> fire(store::connection& c, queue::store_publisher* jobs, const slot_run& s) {
  auto z = zaps::state_of(c, s.zap_id);
  if (!z) return std::move(z).err();
  if (!*z || (*z)->user_id != s.user_id) return fire_result::gone;
  if (!(*z)->enabled) return fire_result::disabled;
  if ((*z)->version != s.zap_version) return fire_result::stale;
  auto q = c.prepare("SELECT through_ms FROM schedules WHERE zap_id = ?");
  if (!q) return std::move(q).err();
  q->bind_all(s.zap_id);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (*row && q->int64(0) >= s.slot_ms) return fire_result::already_fired;
  const runs::new_run r = make_run(s);
  if (auto st = runs::insert(c, jobs, r); !st) return std::move(st).err();
  if (auto st = c.run("INSERT INTO schedules (zap_id, zap_version, through_ms, last_slot_ms, last_run_id, fired_at_ms) "
                      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (zap_id) DO UPDATE SET zap_version = excluded.zap_version, "
                      "through_ms = excluded.through_ms, last_slot_ms = excluded.last_slot_ms, "
                      "last_run_id = excluded.last_run_id, fired_at_ms = excluded.fired_at_ms",
                      s.zap_id, s.zap_version, s.slot_ms, s.slot_ms, r.id, s.now_ms);
      !st)
    return std::move(st).err();
  return fire_result::fired;
}

scheduler::scheduler(store::database& db, queue::store_publisher* jobs, const clock& clk, metrics::registry& m,
                     const wakeup& step_due, options o)
    : db_(db),
      clock_(clk),
      jobs_(jobs),
      step_due_(step_due),
      opts_(o),
      fired_(m.add_counter("zapd_schedule_runs_total", "Runs made by schedule zaps (one per slot)")),
      skipped_(m.add_counter("zapd_schedule_slots_skipped_total",
                             "Times missed slots were skipped (catchUp none, or a stalled process)")),
      lag_ms_(m.add_gauge("zapd_schedule_lag_ms", "How late the last schedule run was made after its slot, in ms")),
      zaps_(m.add_gauge("zapd_schedule_zaps", "Enabled schedule zaps the scheduler tracks")) {}

scheduler::~scheduler() { stop(); }

void scheduler::start() {
  std::lock_guard lk(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { loop(); });
}

void scheduler::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void scheduler::zaps_changed() {
  {
    std::lock_guard lk(mu_);
    changed_ = true;
  }
  cv_.notify_all();
}

void scheduler::loop() {
  std::int64_t next_reload = 0;
  for (;;) {
    bool reload_now = false;
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      reload_now = changed_;
      changed_ = false;
    }
    std::int64_t now = clock_.now_ms();
    if (reload_now || now >= next_reload) {
      reload(now);
      next_reload = now + opts_.reload.count();
    }
    if (clock_.now_ms() >= backoff_until_) fire_due(clock_.now_ms());
    std::int64_t wake = next_reload;
    for (const auto& [_, e] : entries_)
      if (e.next) wake = std::min(wake, std::max(*e.next, backoff_until_));
    std::unique_lock lk(mu_);
    const auto wait = std::chrono::milliseconds(std::max<std::int64_t>(0, wake - clock_.now_ms()));
    cv_.wait_for(lk, wait, [this] { return stopping_ || changed_; });
  }
}

void scheduler::reload(std::int64_t now) {
  struct loaded {
    std::vector<zaps::triggered_zap> zaps;
    std::map<std::string, slot_state> rows;
    std::map<std::string, queue::lane> lanes;
  };
  auto got = db_.reads().with([&](store::connection& c) -> result<loaded> {
    loaded l;
    auto z = zaps::with_trigger(c, zaps::k_schedule_trigger);
    if (!z) return std::move(z).err();
    l.zaps = std::move(*z);
    auto rows = load_states(c);
    if (!rows) return std::move(rows).err();
    l.rows = std::move(*rows);
    for (const auto& t : l.zaps) {
      if (!t.zap.state.enabled || l.lanes.contains(t.zap.state.user_id)) continue;
      auto plan = auth::plan_of(c, t.zap.state.user_id);
      if (!plan) return std::move(plan).err();
      l.lanes[t.zap.state.user_id] = *plan == "paid" ? queue::lane::paid : queue::lane::free;
    }
    return l;
  });
  if (!got) {
    log::warn("schedule.reload_failed", {{"error", got.err().message}});
    return;
  }
  std::map<std::string, entry> next;
  std::vector<std::string> all_ids;
  std::vector<std::pair<std::string, std::pair<std::int64_t, std::int64_t>>> baselines;
  std::vector<std::pair<std::string, std::int64_t>> catch_ups;
  for (auto& t : got->zaps) {
    all_ids.push_back(t.id);
    if (!t.zap.state.enabled) continue;
    auto cfg = zaps::schedule_of(t.zap.definition.trigger.metadata);
    if (!cfg) {
      log::warn("schedule.unreadable", {{"zap_id", t.id}, {"error", cfg.err().message}});
      continue;
    }
    entry e{{t.id, t.zap.state.user_id, t.zap.state.version, t.zap.definition.step_count(), got->lanes[t.zap.state.user_id], 0, 0},
            std::move(*cfg),
            std::nullopt};
    if (auto it = entries_.find(t.id); it != entries_.end() && it->second.base.zap_version == e.base.zap_version) {
      e.next = it->second.next;  // unchanged: keep its place in the schedule
    } else {
      std::optional<slot_state> row;
      if (auto r = got->rows.find(t.id); r != got->rows.end()) row = r->second;
      const plan p = plan_on_load(e.cfg, row, e.base.zap_version, now);
      if (p.baseline) baselines.push_back({t.id, {e.base.zap_version, *p.baseline}});
      if (p.fire_now) catch_ups.push_back({t.id, *p.fire_now});
      if (p.missed) {
        skipped_.inc();
        log::info("schedule.missed", {{"zap_id", t.id}, {"catch_up", p.fire_now ? "last" : "none"}});
      }
      e.next = p.next;
    }
    next.emplace(t.id, std::move(e));
  }
  entries_ = std::move(next);
  zaps_.set(static_cast<std::int64_t>(entries_.size()));
  if (!baselines.empty() || all_ids.size() != got->rows.size()) {
    auto job = [baselines, all_ids](store::connection& c) -> result<bool> {
      for (const auto& [id, vb] : baselines)
        if (auto s = set_baseline(c, id, vb.first, vb.second); !s) return std::move(s).err();
      if (auto s = drop_others(c, all_ids); !s) return std::move(s).err();
      return true;
    };
    if (auto w = db_.writes().execute<bool>(std::move(job)); !w)
      log::warn("schedule.baseline_failed", {{"error", w.err().message}});
  }
  for (const auto& [id, slot] : catch_ups) {
    auto it = entries_.find(id);
    if (it == entries_.end()) continue;
    if (fire_one(it->second, slot, clock_.now_ms()))
      log::info("schedule.caught_up", {{"zap_id", id}, {"slot", cron::rfc3339(slot)}});
  }
}

void scheduler::fire_due(std::int64_t now) {
  for (auto& [id, e] : entries_) {
    // Slots due now, in order; a backlog older than `late` (a stalled process) is missed.
    for (int guard = 0; e.next && *e.next <= now && guard < 1000; ++guard) {
      const std::int64_t slot = *e.next;
      if (slot < now - opts_.late.count()) {
        skipped_.inc();
        if (e.cfg.catch_up_last) {
          if (auto last = latest_slot(e.cfg.when, slot - 1, now)) fire_one(e, *last, now);
        }
        e.next = e.cfg.when.next_after(now);
        break;
      }
      if (!fire_one(e, slot, now)) break;
      e.next = e.cfg.when.next_after(slot);
    }
  }
}

// Fires one slot; false when the zap must be re-read (gone, disabled, edited) or the write
// failed (retried at the next wake: the slot stays due).
bool scheduler::fire_one(entry& e, std::int64_t slot, std::int64_t now) {
  slot_run s = e.base;
  s.slot_ms = slot;
  s.now_ms = now;
  auto job = [s, jobs = jobs_](store::connection& c) { return fire(c, jobs, s); };
  auto r = db_.writes().execute<fire_result>(std::move(job));
  if (!r) {
    // The slot stays due: tried again in a second (the writer may be full or stopping).
    log::warn("schedule.fire_failed", {{"zap_id", s.zap_id}, {"slot", cron::rfc3339(slot)}, {"error", r.err().message}});
    backoff_until_ = clock_.now_ms() + 1000;
    return false;
  }
  switch (*r) {
    case fire_result::fired:
      fired_.inc();
      lag_ms_.set(now - slot);
      step_due_.ring();
      return true;
    case fire_result::already_fired:
      return true;
    case fire_result::gone:
    case fire_result::disabled:
    case fire_result::stale:
      e.next = std::nullopt;
      zaps_changed();  // re-read it
      return false;
  }
  return false;
}

}  // namespace zapd::schedule
