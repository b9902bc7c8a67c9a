// A process that runs the outbox relay over the SQLite queue on an existing database until
// the outbox is empty, then exits 0. outbox_test SIGKILLs it mid-drain.
// Usage: relay_child <db path> <batch>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "zapd/core/clock.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/outbox/relay.hpp"
#include "zapd/queue/sqlite_queue.hpp"
#include "zapd/store/database.hpp"

int main(int argc, char** argv) {
  using namespace zapd;
  if (argc != 3) return 2;
  store::database::options dbo;
  dbo.path = argv[1];
  auto db = store::database::open(dbo);
  if (!db) return 3;
  metrics::registry reg;
  queue::sqlite_queue q(**db, real_clock(), reg, {});
  outbox::relay::options ro;
  ro.batch = static_cast<std::size_t>(std::atoi(argv[2]));
  ro.poll = std::chrono::milliseconds(50);
  wakeup outbox_ready, jobs_ready;
  outbox::relay r(**db, q, reg, outbox_ready, jobs_ready, ro);
  r.start();
  for (;;) {
    auto left = (*db)->reads().with([](store::connection& c) -> std::int64_t {
      auto s = c.prepare("SELECT count(*) FROM outbox");
      if (!s || !s->step().ok()) return -1;
      return s->int64(0);
    });
    if (left == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.stop();
  (*db)->stop();
  return 0;
}
