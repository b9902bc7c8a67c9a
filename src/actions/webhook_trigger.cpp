// The webhook trigger's catalog entry. Ingestion itself lives in the hooks module.
#include "zapd/actions/catalog.hpp"

namespace zapd::actions {

spec webhook_trigger_spec() {
  spec s;
  s.id = "webhook";
  s.name = "Webhook";
  s.description = "Runs the zap when a request arrives at its webhook URL.";
  s.fields = {
      {.name = "signature",
       .type = field_type::choice,
       .default_value = "none",
       .help = "Verify each request's signature: none, standard (Standard Webhooks), github, stripe or hmac",
       .choices = {"none", "standard", "github", "stripe", "hmac"}},
      {.name = "secret",
       .help = "Signing secret, as a reference: {{secrets.NAME}}",
       .templates = true},
      {.name = "signatureHeader",
       .default_value = "X-Signature",
       .help = "Header holding the hex HMAC-SHA256 of the body (signature = hmac)",
       .max_length = 100},
      {.name = "dedupPath",
       .help = "JSON path in the body whose value identifies duplicates (e.g. event.id)",
       .max_length = 200},
  };
  s.icon_svg =
      R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#e8590c" stroke-width="2" stroke-linecap="round"><circle cx="6" cy="17" r="3"/><circle cx="18" cy="17" r="3"/><circle cx="12" cy="6" r="3"/><path d="M9 17h6M10.5 8.6 7.5 14.4M13.5 8.6l3 5.8"/></svg>)";
  return s;
}

}  // namespace zapd::actions
