#include <string>

#include <catch2/catch.hpp>

#include "zapd/metrics/registry.hpp"

using namespace zapd;

TEST_CASE("registry: counters and gauges render as Prometheus text") {
  metrics::registry r;
  auto& paid = r.add_counter("zapd_jobs_total", "Jobs done", {{"lane", "paid"}});
  auto& free = r.add_counter("zapd_jobs_total", "ignored: help is kept from the first call", {{"lane", "free"}});
  paid.inc();
  paid.inc(2);
  free.inc();
  // The same name and labels is the same series.
  CHECK(&r.add_counter("zapd_jobs_total", "", {{"lane", "paid"}}) == &paid);
  auto& g = r.add_gauge("zapd_depth", "Rows waiting");
  g.set(10);
  g.add(-3);
  r.add_gauge("zapd_weird", "Label escaping", {{"b", "x\"y\\z\nw"}, {"a", "1"}}).set(1);

  auto text = r.render_prometheus();
  CHECK(text.find("# HELP zapd_jobs_total Jobs done\n# TYPE zapd_jobs_total counter\n") != std::string::npos);
  CHECK(text.find("zapd_jobs_total{lane=\"paid\"} 3\n") != std::string::npos);
  CHECK(text.find("zapd_jobs_total{lane=\"free\"} 1\n") != std::string::npos);
  CHECK(text.find("# TYPE zapd_depth gauge\nzapd_depth 7\n") != std::string::npos);
  CHECK(text.find("zapd_weird{a=\"1\",b=\"x\\\"y\\\\z\\nw\"} 1\n") != std::string::npos);
  // Families sorted by name.
  CHECK(text.find("zapd_depth") < text.find("zapd_jobs_total"));
}

TEST_CASE("registry: collectors refresh gauges at render time until removed") {
  metrics::registry r;
  auto& g = r.add_gauge("zapd_computed", "Computed at scrape time");
  int runs = 0;
  auto id = r.add_collector([&] { g.set(++runs * 100); });
  CHECK(r.render_prometheus().find("zapd_computed 100\n") != std::string::npos);
  CHECK(r.render_prometheus().find("zapd_computed 200\n") != std::string::npos);
  r.remove_collector(id);
  CHECK(r.render_prometheus().find("zapd_computed 200\n") != std::string::npos);
  CHECK(runs == 2);
}
