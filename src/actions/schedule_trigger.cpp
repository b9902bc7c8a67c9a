// The schedule trigger's catalog entry. The rules across fields (cron or intervalSeconds, a
// valid expression, a known zone, schedule.min_interval_seconds) are checked by
// zaps::validate through the cron module; firing lives in the schedule module.
#include "zapd/actions/catalog.hpp"

namespace zapd::actions {

spec schedule_trigger_spec() {
  spec s;
  s.id = "schedule";
  s.name = "Schedule";
  s.description = "Runs the zap on a cron schedule or every N seconds, in a time zone of your choice.";
  s.fields = {
      {.name = "cron",
       .help = "5-field cron expression (minute hour day-of-month month day-of-week), e.g. */15 * * * * or "
               "0 9 * * MON-FRI, or @hourly/@daily/@weekly/@monthly/@yearly. Give this or intervalSeconds",
       .max_length = 200},
      {.name = "intervalSeconds",
       .type = field_type::integer,
       .help = "Run every N seconds instead of a cron expression",
       .minimum = 1,
       .maximum = 31'536'000},
      {.name = "timezone",
       .default_value = "UTC",
       .help = "IANA time zone the cron expression is read in, e.g. Europe/Paris",
       .max_length = 200},
      {.name = "catchUp",
       .type = field_type::choice,
       .default_value = "none",
       .help = "Slots missed while zapd was down: none (skip them) or last (one run for the latest)",
       .choices = {"none", "last"}},
  };
  s.icon_svg =
      R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#1971c2" stroke-width="2" stroke-linecap="round"><circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/></svg>)";
  return s;
}

}  // namespace zapd::actions
