#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zapd::queue {

/// Priority lane, from the user's plan. Lanes have separate concurrency limits so a flood
/// on one cannot starve the other.
enum class lane { paid, free };

std::string_view lane_name(lane l) noexcept;
std::optional<lane> parse_lane(std::string_view s) noexcept;

/// A job to publish: one step of one run. Jobs are per step, so a crash after step 2 does
/// not re-run step 1.
struct job_spec {
  std::string run_id;
  int step_index = 0;
  queue::lane lane = lane::free;
  std::int64_t run_at_ms = 0;  // not claimable before this (Unix ms); 0 = now
  std::int64_t outbox_id = 0;  // the outbox row it was published from (the relay sets it), 0 when none
};

/// A claimed job. `id` and `attempts` together identify THIS claim: ack/retry/dead of a
/// claim whose lease has since passed to someone else fail with errc::lease_lost.
struct job {
  std::int64_t id = 0;  // adapter's handle (SQLite: jobs.id)
  std::string run_id;
  int step_index = 0;
  queue::lane lane = lane::free;
  int attempts = 0;                // claims so far, this one included (1 on first delivery)
  std::int64_t lease_until_ms = 0;  // ack before this or the job is delivered again
};

}  // namespace zapd::queue
