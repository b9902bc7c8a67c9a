#include "zapd/queue/sqlite_queue.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "zapd/store/database.hpp"

namespace zapd::queue {
namespace {

constexpr std::array k_lanes = {lane::paid, lane::free};

std::size_t index_of(lane l) { return l == lane::paid ? 0 : 1; }

// The depth gauges are read at most this often (sqlite_queue::depth_read_ms_).
constexpr std::int64_t k_depth_every_ms = 1000;

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A claim's handle (jobs.id, schema 0014; 0 on a job never claimed): strictly increasing
// within the process, from the clock's microseconds at the first claim. Ids only have to
// differ between the claims of one process: one process at a time uses a database (the data
// dir lock), and every lease it held ends when the next one starts (release_all_leases, or its
// expiry if that failed: the claim after it takes a new id); and the counter, advancing by
// one per claim, stays behind the clock that the next process starts from.
std::int64_t next_claim_id() {
  static std::atomic<std::int64_t> next{
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count()};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// Reads (id, run_id, step_index, attempts) rows of `q` into `out` as jobs of lane `l`.
status collect(store::statement& q, lane l, std::vector<job>& out) {
  for (;;) {
    auto row = q.step();
    if (!row) return std::move(row).err();
    if (!*row) return {};
    job j;
    j.id = q.int64(0);
    j.run_id = q.text(1);
    j.step_index = static_cast<int>(q.int64(2));
    j.lane = l;
    j.attempts = static_cast<int>(q.int64(3));
    out.push_back(std::move(j));
  }
}

}  // namespace

sqlite_queue::sqlite_queue(store::database& db, const clock& clk, metrics::registry& m, options o)
    : db_(db), clock_(clk), metrics_(m), opts_(o) {
  for (lane l : k_lanes) {
    metrics::labels ls = {{"lane", std::string(lane_name(l))}};
    auto& lm = m_[index_of(l)];
    lm.claimed = &m.add_counter("zapd_queue_claimed_total", "Jobs leased to workers", ls);
    lm.handed = &m.add_counter("zapd_queue_handed_total",
                               "Jobs leased to a free worker slot at their commit, with no claim (counted in claimed too)", ls);
    lm.claims = &m.add_counter("zapd_queue_claims_total",
                               "Claim transactions run by workers, those that found no job included", ls);
    lm.acked = &m.add_counter("zapd_queue_acked_total", "Jobs acknowledged as done", ls);
    lm.retried = &m.add_counter("zapd_queue_retried_total", "Jobs scheduled for another attempt", ls);
    lm.dead = &m.add_counter("zapd_queue_dead_total", "Jobs moved to the dead letters", ls);
    const char* help = "Jobs in the embedded queue by lane and state (counted at a scrape, at most once a second)";
    lm.ready = &m.add_gauge("zapd_queue_jobs", help, {{"lane", std::string(lane_name(l))}, {"state", "ready"}});
    lm.leased = &m.add_gauge("zapd_queue_jobs", help, {{"lane", std::string(lane_name(l))}, {"state", "leased"}});
    lm.dead_now = &m.add_gauge("zapd_queue_jobs", help, {{"lane", std::string(lane_name(l))}, {"state", "dead"}});
  }
  collector_id_ = m.add_collector([this] {
    const std::int64_t now = clock_.now_ms();
    std::int64_t last = depth_read_ms_.load();
    const bool due = last == std::numeric_limits<std::int64_t>::min() || now < last || now - last >= k_depth_every_ms;
    if (!due || !depth_read_ms_.compare_exchange_strong(last, now)) return;
    for (lane l : k_lanes) {
      auto d = depth_of(l);
      if (!d) continue;
      auto& lm = m_[index_of(l)];
      lm.ready->set(d->ready);
      lm.leased->set(d->leased);
      lm.dead_now->set(d->dead);
    }
  });
}

sqlite_queue::~sqlite_queue() { metrics_.remove_collector(collector_id_); }

std::size_t sqlite_queue::limit(lane l) const {
  return l == lane::paid ? opts_.paid_concurrency : opts_.free_concurrency;
}

status sqlite_queue::publish(std::vector<job_spec> batch, done_fn done) {
  auto shared = std::make_shared<std::vector<job_spec>>(std::move(batch));
  return db_.writes().submit([this, shared](store::connection& c) { return publish_in(c, *shared); },
                             [d = std::move(done)](status st) { d(std::move(st)); });
}

void sqlite_queue::hand_to(handoff* h) {
  std::lock_guard lk(handoff_mu_);
  handoff_ = h;
}

result<bool> sqlite_queue::hand_over_in(store::connection& c, const job_spec& s, std::int64_t now) {
  std::lock_guard lk(handoff_mu_);
  if (!handoff_) return false;
  {
    // First in, first out: while ready jobs of the lane wait, the claims take them in order.
    auto q = c.prepare("SELECT 1 FROM jobs WHERE lane = ? AND state = 'ready' AND run_at_ms <= ? LIMIT 1");
    if (!q) return std::move(q).err();
    auto row = q->bind_all(lane_name(s.lane), now).step();
    if (!row) return std::move(row).err();
    if (*row) return false;
  }
  const auto lease = handoff_->reserve(s.lane);
  if (!lease) return false;
  // The one place that ends the reservation, registered before anything can fail: the job
  // once committed, else the slot back (an undone request, or no row written: a repeated
  // publish). The worker withdraws only once its reservations ended (worker::pool::stop).
  auto handed = std::make_shared<std::optional<job>>();
  c.after_commit([this, h = handoff_, l = s.lane, handed](bool committed) {
    if (!committed || !handed->has_value()) {
      h->unreserve(l);
      return;
    }
    m_[index_of(l)].claimed->inc();
    m_[index_of(l)].handed->inc();
    h->take(std::move(**handed));
  });
  const std::int64_t until = now + lease->count();
  const std::int64_t id = next_claim_id();
  // A leased job's run_at_ms is its lease's end: when it may be claimed again (schema 0014).
  auto st = c.run(
      "INSERT INTO jobs(run_id, step_index, id, lane, run_at_ms, created_at, state, attempts, lease_until_ms) "
      "VALUES(?, ?, ?, ?, ?, ?, 'leased', 1, ?) ON CONFLICT(run_id, step_index) DO NOTHING",
      s.run_id, s.step_index, id, lane_name(s.lane), until, now, until);
  if (!st) return std::move(st).err();
  if (c.changes() == 0) return true;  // held already
  job j;
  j.id = id;
  j.run_id = s.run_id;
  j.step_index = s.step_index;
  j.lane = s.lane;
  j.attempts = 1;
  j.lease_until_ms = until;
  *handed = std::move(j);
  return true;
}

status sqlite_queue::publish_in(store::connection& c, const std::vector<job_spec>& batch) {
  const std::int64_t now = clock_.now_ms();
  bool waits_for_claim = false;  // a job due now went in ready
  for (const auto& s : batch) {
    if ((s.run_at_ms <= now) && opts_.direct && c.takes_commit_hooks()) {
      auto handed = hand_over_in(c, s, now);
      if (!handed) return std::move(handed).err();
      if (*handed) continue;
    }
    // A (run, step) the queue already holds is a repeated publish (at-least-once relay).
    auto ins = c.prepare(
        "INSERT INTO jobs(run_id, step_index, lane, run_at_ms, created_at) VALUES(?, ?, ?, ?, ?) "
        "ON CONFLICT(run_id, step_index) DO NOTHING");
    if (!ins) return std::move(ins).err();
    auto st = ins->bind_all(s.run_id, s.step_index, lane_name(s.lane), s.run_at_ms > 0 ? s.run_at_ms : now, now).run();
    if (!st) return st;
    if (s.run_at_ms <= now && c.changes() > 0) waits_for_claim = true;
  }
  // After the commit, when a claim can see it. Every producer publishes through the writer,
  // whose requests take commit hooks; a transaction of its own (a tool, a test) rings nothing.
  if (waits_for_claim && opts_.ready && c.takes_commit_hooks()) {
    c.after_commit([bell = opts_.ready](bool committed) {
      if (committed) bell->ring();
    });
  }
  return {};
}

result<std::vector<job>> sqlite_queue::claim(lane l, std::size_t max, std::chrono::milliseconds lease) {
  const std::size_t cap = limit(l);
  const std::string_view ln = lane_name(l);
  auto r = db_.writes().execute<std::vector<job>>([&](store::connection& c) -> result<std::vector<job>> {
    const std::int64_t now = clock_.now_ms();
    std::vector<job> out;
    std::int64_t in_flight = 0;
    {
      // A leased job's run_at_ms is its lease's end (schema 0014): jobs_claim answers both.
      auto q = c.prepare("SELECT count(*) FROM jobs WHERE lane = ? AND state = 'leased' AND run_at_ms >= ?");
      if (!q) return std::move(q).err();
      auto row = q->bind_all(ln, now).step();
      if (!row) return std::move(row).err();
      in_flight = q->int64(0);
    }
    if (in_flight >= static_cast<std::int64_t>(cap)) return out;
    const auto room = static_cast<std::int64_t>(std::min(max, cap - static_cast<std::size_t>(in_flight)));
    if (room == 0) return out;
    {
      // Expired leases first: their workers are gone or stuck, and they are the oldest work.
      auto q = c.prepare(
          "SELECT id, run_id, step_index, attempts FROM jobs "
          "WHERE lane = ? AND state = 'leased' AND run_at_ms < ? ORDER BY run_at_ms LIMIT ?");
      if (!q) return std::move(q).err();
      auto st = collect(q->bind_all(ln, now, room), l, out);
      if (!st) return std::move(st).err();
    }
    if (static_cast<std::int64_t>(out.size()) < room) {
      auto q = c.prepare(
          "SELECT id, run_id, step_index, attempts FROM jobs "
          "WHERE lane = ? AND state = 'ready' AND run_at_ms <= ? ORDER BY run_at_ms, run_id, step_index LIMIT ?");
      if (!q) return std::move(q).err();
      auto st = collect(q->bind_all(ln, now, room - static_cast<std::int64_t>(out.size())), l, out);
      if (!st) return std::move(st).err();
    }
    const std::int64_t until = now + lease.count();
    for (auto& j : out) {
      auto u = c.prepare(
          "UPDATE jobs SET state = 'leased', id = ?1, attempts = attempts + 1, lease_until_ms = ?2, run_at_ms = ?2 "
          "WHERE run_id = ?3 AND step_index = ?4");
      if (!u) return std::move(u).err();
      j.id = next_claim_id();
      auto st = u->bind_all(j.id, until, j.run_id, j.step_index).run();
      if (!st) return std::move(st).err();
      j.attempts += 1;
      j.lease_until_ms = until;
    }
    return out;
  });
  if (r) {
    m_[index_of(l)].claims->inc();
    m_[index_of(l)].claimed->inc(r->size());
  }
  return r;
}

namespace {

// A claim is (id, attempts): every claim takes a new id (next_claim_id) and attempts only grow
// (but for a release, below), so a late worker can only ever match its own claim. run and
// step, the row's key, are matched too.
constexpr const char* k_ack_sql =
    "DELETE FROM jobs WHERE id = ?1 AND attempts = ?2 AND run_id = ?3 AND step_index = ?4 AND state = 'leased'";
constexpr const char* k_retry_sql =
    "UPDATE jobs SET state = 'ready', lease_until_ms = NULL, run_at_ms = ?5 "
    "WHERE id = ?1 AND attempts = ?2 AND run_id = ?3 AND step_index = ?4 AND state = 'leased'";
// A claim released unstarted gives its attempt back: nobody ran it, and the one holder of
// that claim (id, attempts) drops it, so the next claim's (id, attempts) is again one no
// worker holds. While leased, run_at_ms held the lease's end; the job was due, and takes its
// place again by when it was written (no later than now), ahead of work due since.
constexpr const char* k_release_sql =
    "UPDATE jobs SET state = 'ready', lease_until_ms = NULL, run_at_ms = min(created_at, ?5), attempts = attempts - 1 "
    "WHERE id = ?1 AND attempts = ?2 AND run_id = ?3 AND step_index = ?4 AND state = 'leased' AND attempts > 0";
constexpr const char* k_dead_sql =
    "UPDATE jobs SET state = 'dead', lease_until_ms = NULL, dead_reason = ?5 "
    "WHERE id = ?1 AND attempts = ?2 AND run_id = ?3 AND step_index = ?4 AND state = 'leased'";

// Runs `sql` (bound: id, attempts, run, step, then `extra`) through `c`; lease_lost when no row matched.
template <class... Extra>
status settle_in(store::connection& c, const job& j, const char* sql, const Extra&... extra) {
  if (auto st = c.run(sql, j.id, j.attempts, j.run_id, j.step_index, extra...); !st) return st;
  if (c.changes() == 0)
    return make_error(errc::lease_lost, fmt::format("job {} (run {} step {}, attempt {}): the lease was lost", j.id,
                                                  j.run_id, j.step_index, j.attempts));
  return {};
}

}  // namespace

template <class... Extra>
status sqlite_queue::settle(const job& j, const char* sql, const Extra&... extra) {
  auto r = db_.writes().execute<bool>([&](store::connection& c) -> result<bool> {
    auto st = settle_in(c, j, sql, extra...);
    if (!st) return std::move(st).err();
    return true;
  });
  if (!r) return std::move(r).err();
  return {};
}

status sqlite_queue::ack(const job& j) {
  auto st = settle(j, k_ack_sql);
  if (st) m_[index_of(j.lane)].acked->inc();
  return st;
}

status sqlite_queue::retry(const job& j, std::chrono::system_clock::time_point at) {
  auto st = settle(j, k_retry_sql, to_ms(at));
  if (st) m_[index_of(j.lane)].retried->inc();
  return st;
}

status sqlite_queue::release(const job& j) { return settle(j, k_release_sql, clock_.now_ms()); }

status sqlite_queue::dead(const job& j, std::string_view reason) {
  auto st = settle(j, k_dead_sql, reason);
  if (st) m_[index_of(j.lane)].dead->inc();
  return st;
}

status sqlite_queue::ack_in(store::connection& c, const job& j) { return settle_in(c, j, k_ack_sql); }

status sqlite_queue::retry_in(store::connection& c, const job& j, std::chrono::system_clock::time_point at) {
  return settle_in(c, j, k_retry_sql, to_ms(at));
}

status sqlite_queue::dead_in(store::connection& c, const job& j, std::string_view reason) {
  return settle_in(c, j, k_dead_sql, reason);
}

status sqlite_queue::discard_in(store::connection& c, const std::string& run_id, std::optional<int> step, bool leased_too) {
  const char* states = leased_too ? "" : " AND state IN ('ready', 'dead')";
  if (step) return c.run(fmt::format("DELETE FROM jobs WHERE run_id = ? AND step_index = ?{}", states), run_id, *step);
  return c.run(fmt::format("DELETE FROM jobs WHERE run_id = ?{}", states), run_id);
}

void sqlite_queue::settled(const job& j, settlement s) {
  auto& lm = m_[index_of(j.lane)];
  (s == settlement::acked ? lm.acked : s == settlement::retried ? lm.retried : lm.dead)->inc();
}

result<std::int64_t> sqlite_queue::release_all_leases() {
  return db_.writes().execute<std::int64_t>([now = clock_.now_ms()](store::connection& c) -> result<std::int64_t> {
    // Due again at once, in the place release gives (k_release_sql); through jobs_claim.
    if (auto s = c.run("UPDATE jobs SET state = 'ready', lease_until_ms = NULL, run_at_ms = min(created_at, ?) "
                       "WHERE lane IN ('paid', 'free') AND state = 'leased'",
                       now);
        !s)
      return std::move(s).err();
    return c.changes();
  });
}

result<sqlite_queue::depth> sqlite_queue::depth_of(lane l) {
  return db_.reads().with([l](store::connection& c) -> result<depth> {
    auto q = c.prepare("SELECT state, count(*) FROM jobs WHERE lane = ? GROUP BY state");
    if (!q) return std::move(q).err();
    q->bind(1, lane_name(l));
    depth d;
    for (;;) {
      auto row = q->step();
      if (!row) return std::move(row).err();
      if (!*row) return d;
      auto state = q->text(0);
      auto n = q->int64(1);
      if (state == "ready") d.ready = n;
      else if (state == "leased") d.leased = n;
      else if (state == "dead") d.dead = n;
    }
  });
}

}  // namespace zapd::queue
