// worker::pool's lanes: which jobs to claim and when to start them (the claim and start
// threads of each lane, and who wakes them). pool.cpp executes and records an attempt.
#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include "zapd/core/log.hpp"
#include "zapd/worker/pool.hpp"

namespace zapd::worker {

void pool::notify() noexcept {
  std::lock_guard lk(mu_);
  for (auto& ls : lanes_) {
    ls.woken = true;
    ls.claim_cv.notify_one();
  }
}

bool pool::recording_full(const lane_state& ls) const { return ls.recording >= recording_per_slot * ls.slots; }

std::size_t pool::claim_wanted(const lane_state& ls) const {
  const std::size_t target = ls.slots * (1 + claimed_ahead_per_slot);
  const std::size_t have = ls.in_flight + ls.ready.size() + ls.reserved;
  return recording_full(ls) || have >= target ? 0 : target - have;
}

std::size_t pool::start_room(const lane_state& ls) const {
  return recording_full(ls) ? 0 : ls.slots - std::min(ls.slots, ls.in_flight);
}

void pool::wake_lane(lane_state& ls) {
  if (ls.starter_idle && !ls.ready.empty() && start_room(ls) > 0) ls.start_cv.notify_one();
  if (ls.claimer_full && claim_wanted(ls) > 0) ls.claim_cv.notify_one();
  if (stopping_) cv_.notify_all();  // stop() waits for the last attempts
}

pool::lane_state& pool::lane_of(queue::lane l) { return lanes_[l == queue::lane::paid ? 0 : 1]; }

// A slot nobody has spoken for: not executing, not claimed ahead, not promised already.
std::optional<std::chrono::milliseconds> pool::reserve(queue::lane l) {
  std::lock_guard lk(mu_);
  auto& ls = lane_of(l);
  if (stopping_ || recording_full(ls)) return std::nullopt;
  if (ls.in_flight + ls.ready.size() + ls.reserved >= ls.slots) return std::nullopt;
  ++ls.reserved;
  return opts_.lease;
}

// Starts like a claimed job: into `ready`, where the start thread finds it (stop gives back
// one that arrives after it began).
void pool::take(queue::job j) {
  std::lock_guard lk(mu_);
  auto& ls = lane_of(j.lane);
  if (ls.reserved > 0) --ls.reserved;
  running_[{j.id, j.attempts}] = claim{j, claim::stage::ready};
  ls.ready.push_back(std::move(j));
  wake_lane(ls);
}

void pool::unreserve(queue::lane l) {
  std::lock_guard lk(mu_);
  auto& ls = lane_of(l);
  if (ls.reserved > 0) --ls.reserved;
  wake_lane(ls);
}

void pool::wake_starters() {
  for (auto& ls : lanes_) ls.start_cv.notify_one();
  cv_.notify_all();  // stop() settles pending work too
}

// Keeps up to slots x (1 + claimed_ahead_per_slot) jobs executing or claimed ahead, so a
// slot that frees finds its next job claimed already: a claim waits for a commit (a few ms
// of fsync), and the slots it would fill used to idle meanwhile (issue 18: 16 free-lane
// slots lagged at 3,000 steps/s while 64 kept up).
void pool::claim_loop(lane_state& ls) {
  std::unique_lock lk(mu_);
  // A job claimed ahead waits for a slot while its lease runs; past a quarter of the lease it
  // goes back unstarted (its attempt not counted) and is claimed again with a fresh lease,
  // so slow steps in every slot do not leave it a cut-down timeout or an expired lease.
  const std::int64_t fresh_for = std::max<std::int64_t>(1, opts_.lease.count() / 4);
  while (!stopping_) {
    std::vector<queue::job> stale;
    const std::int64_t now = clock_.now_ms();
    while (!ls.ready.empty() && ls.ready.front().lease_until_ms - opts_.lease.count() + fresh_for <= now) {
      running_.erase({ls.ready.front().id, ls.ready.front().attempts});
      stale.push_back(std::move(ls.ready.front()));
      ls.ready.pop_front();
    }
    if (!stale.empty()) {
      lk.unlock();
      for (const auto& j : stale) (void)queue_.release(j);  // lease_lost: claimed again elsewhere already
      lk.lock();
      continue;
    }
    ls.woken = false;
    const std::size_t want = claim_wanted(ls);
    if (want > 0) {
      lk.unlock();
      auto jobs = queue_.claim(ls.lane, std::min(want, opts_.claim_batch), opts_.lease);
      if (!jobs) log::warn("worker.claim_failed", {{"lane", queue::lane_name(ls.lane)}, {"error", jobs.err().message}});
      lk.lock();
      if (jobs && !jobs->empty()) {
        for (auto& j : *jobs) {
          running_[{j.id, j.attempts}] = claim{j, claim::stage::ready};
          ls.ready.push_back(std::move(j));
        }
        if (ls.starter_idle) ls.start_cv.notify_one();
        continue;  // there may be more
      }
    }
    // Sleep until notified, room opens (when there was none), a retry falls due, or the poll passes.
    auto until = std::chrono::steady_clock::now() + opts_.poll;
    const std::int64_t due = next_due_ms_.load();
    if (due > 0) {
      auto wait = std::chrono::milliseconds(std::max<std::int64_t>(0, due - clock_.now_ms()));
      until = std::min(until, std::chrono::steady_clock::now() + wait);
    }
    // A sooner retry scheduled meanwhile (next_due_ms_ only moves earlier or from none) ends the wait too.
    ls.claimer_full = want == 0;
    ls.claim_cv.wait_until(lk, until, [&] {
      const std::int64_t d = next_due_ms_.load();
      return stopping_ || ls.woken || (want == 0 && claim_wanted(ls) > 0) || (d > 0 && (due == 0 || d < due));
    });
    ls.claimer_full = false;
    if (due > 0 && clock_.now_ms() >= due) {
      std::int64_t expected = due;  // clear it unless a sooner retry was scheduled meanwhile
      next_due_ms_.compare_exchange_strong(expected, 0);
    }
  }
}

// Starts claimed jobs as slots free (rendering them on this thread), and hands over again
// the results the full writer refused and the settlements a queue outside the store takes.
void pool::start_loop(lane_state& ls) {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    if (!deferred_.empty()) {
      lk.unlock();
      const bool all = resubmit_deferred();
      lk.lock();
      if (!all) {  // the writer is still full: let it drain before trying again
        ls.start_cv.wait_for(lk, std::chrono::milliseconds(5), [this] { return stopping_; });
        continue;
      }
    }
    if (!pending_.empty()) {
      lk.unlock();
      settle_pending();
      lk.lock();
    }
    if (stopping_) break;  // set while the lock was down: nothing more starts
    const std::size_t n = std::min(start_room(ls), ls.ready.size());
    if (n > 0) {
      std::vector<queue::job> batch;
      batch.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        queue::job& j = ls.ready.front();
        running_[{j.id, j.attempts}].at = claim::stage::executing;
        ++ls.in_flight;
        batch.push_back(std::move(j));
        ls.ready.pop_front();
      }
      show_in_flight();
      if (ls.claimer_full) ls.claim_cv.notify_one();  // room to claim ahead again
      lk.unlock();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (stop_requested_.load()) {  // the rest waits in `ready` for stop to give it back
          std::lock_guard relk(mu_);
          for (std::size_t k = batch.size(); k-- > i;) {
            running_[{batch[k].id, batch[k].attempts}].at = claim::stage::ready;
            if (ls.in_flight > 0) --ls.in_flight;
            ls.ready.push_front(std::move(batch[k]));
          }
          show_in_flight();
          break;
        }
        begin(batch[i]);
      }
      lk.lock();
      continue;
    }
    ls.starter_idle = true;
    ls.start_cv.wait(lk, [&] {
      return stopping_ || !deferred_.empty() || !pending_.empty() || (!ls.ready.empty() && start_room(ls) > 0);
    });
    ls.starter_idle = false;
  }
}

}  // namespace zapd::worker
