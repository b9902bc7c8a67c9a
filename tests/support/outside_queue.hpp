#pragma once

#include <atomic>
#include <chrono>
#include <string_view>
#include <vector>

#include "zapd/queue/queue.hpp"

namespace zapd::test {

/// A queue seen only through the `queue::queue` interface, as a queue outside the store
/// (Kafka) is: wrapping the embedded queue in it makes the relay publish-then-delete and the
/// worker settle jobs through the interface after each commit.
struct outside_queue final : zapd::queue::queue {
  std::atomic<std::size_t> claimed{0};  // jobs its claims returned
  explicit outside_queue(zapd::queue::queue& q) : inner(q) {}
  status publish(std::vector<zapd::queue::job_spec> b, done_fn d) override { return inner.publish(std::move(b), std::move(d)); }
  result<std::vector<zapd::queue::job>> claim(zapd::queue::lane l, std::size_t max, std::chrono::milliseconds lease) override {
    auto r = inner.claim(l, max, lease);
    if (r) claimed += r->size();
    return r;
  }
  status ack(const zapd::queue::job& j) override { return inner.ack(j); }
  status retry(const zapd::queue::job& j, std::chrono::system_clock::time_point at) override { return inner.retry(j, at); }
  status dead(const zapd::queue::job& j, std::string_view reason) override { return inner.dead(j, reason); }
  status release(const zapd::queue::job& j) override { return inner.release(j); }
  void hand_to(zapd::queue::handoff* h) override {
    if (forward_handoff) inner.hand_to(h);
  }
  zapd::queue::queue& inner;
  bool forward_handoff = false;  // let the inner queue hand jobs to a worker registered here
};

}  // namespace zapd::test
