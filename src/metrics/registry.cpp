#include "zapd/metrics/registry.hpp"

#include <algorithm>
#include <cassert>

#include <fmt/format.h>

namespace zapd::metrics {
namespace {

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// `{a="x",b="y"}` with keys sorted, or empty: the series key and its rendered form.
std::string render_labels(labels l) {
  if (l.empty()) return {};
  std::sort(l.begin(), l.end());
  std::string out = "{";
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (i) out += ',';
    out += fmt::format("{}=\"{}\"", l[i].first, escape_label_value(l[i].second));
  }
  return out + "}";
}

}  // namespace

registry::registry() = default;
registry::~registry() = default;

registry::family& registry::family_for(std::string_view name, std::string_view help, kind k) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), family{k, std::string(help), {}, {}}).first;
  assert(it->second.k == k && "a metric name is either a counter or a gauge");
  return it->second;
}

counter& registry::add_counter(std::string_view name, std::string_view help, const labels& l) {
  std::lock_guard lk(mu_);
  auto& slot = family_for(name, help, kind::counter).counters[render_labels(l)];
  if (!slot) slot = std::make_unique<counter>();
  return *slot;
}

gauge& registry::add_gauge(std::string_view name, std::string_view help, const labels& l) {
  std::lock_guard lk(mu_);
  auto& slot = family_for(name, help, kind::gauge).gauges[render_labels(l)];
  if (!slot) slot = std::make_unique<gauge>();
  return *slot;
}

std::uint64_t registry::add_collector(collector fn) {
  std::lock_guard lk(collectors_mu_);
  auto id = next_collector_++;
  collectors_.emplace(id, std::move(fn));
  return id;
}

void registry::remove_collector(std::uint64_t id) {
  std::lock_guard lk(collectors_mu_);
  collectors_.erase(id);
}

std::string registry::render_prometheus() const {
  {
    // Collectors update gauges (taking mu_ through add_gauge), so mu_ is not held here.
    std::lock_guard lk(collectors_mu_);
    for (const auto& [id, fn] : collectors_) fn();
  }
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(f.help), name,
                       f.k == kind::counter ? "counter" : "gauge");
    for (const auto& [ls, c] : f.counters) out += fmt::format("{}{} {}\n", name, ls, c->value());
    for (const auto& [ls, g] : f.gauges) out += fmt::format("{}{} {}\n", name, ls, g->value());
  }
  return out;
}

}  // namespace zapd::metrics
