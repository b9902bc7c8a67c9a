// The HTTP request action's catalog entry (its executor: http_exec.cpp).
#include "zapd/actions/catalog.hpp"

namespace zapd::actions {

spec http_action_spec() {
  spec s;
  s.id = "http";
  s.name = "HTTP request";
  s.description = "Sends an HTTP request; later steps read its status, headers and body.";
  s.fields = {
      {.name = "method",
       .type = field_type::choice,
       .default_value = "POST",
       .help = "HTTP method",
       .choices = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}},
      {.name = "url",
       .required = true,
       .help = "Where to send the request, e.g. https://example.com/hook/{{comment.id}}",
       .templates = true,
       .format = field_format::url,
       .max_length = 8192},
      {.name = "headers",
       .type = field_type::string_map,
       .default_value = nlohmann::json::object(),
       .help = "Request headers; values may hold templates and {{secrets.NAME}}",
       .templates = true,
       .format = field_format::headers},
      {.name = "body",
       .type = field_type::text,
       .help = "Request body; templates are escaped for JSON when the body is JSON",
       .templates = true},
      // Up to 5 minutes: an attempt must end before its job lease does, and the worker cuts it
      // to the lease left (queue.lease_ms, 60 s by default, less a margin) anyway.
      {.name = "timeoutMs",
       .type = field_type::integer,
       .default_value = 30000,
       .help = "Per-attempt timeout in milliseconds",
       .minimum = 1,
       .maximum = 300'000},
      {.name = "expectedStatus",
       .default_value = "2xx",
       .help = "Statuses that count as success, e.g. 2xx or 200,201",
       .max_length = 100},
      {.name = "followRedirects", .type = field_type::boolean, .default_value = false, .help = "Follow 3xx redirects"},
      {.name = "signingSecret",
       .help = "Optional: sign each request the Standard Webhooks way with this secret, as {{secrets.NAME}}",
       .templates = true,
       .max_length = 200},
  };
  s.icon_svg =
      R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#1c7ed6" stroke-width="2" stroke-linecap="round"><circle cx="12" cy="12" r="9"/><path d="M3 12h18M12 3c3 3.5 3 14.5 0 18M12 3c-3 3.5-3 14.5 0 18"/></svg>)";
  return s;
}

}  // namespace zapd::actions
