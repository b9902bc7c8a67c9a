// The email action's catalog entry (execution over SMTP: issue #7).
#include "zapd/actions/catalog.hpp"

namespace zapd::actions {

spec email_action_spec() {
  spec s;
  s.id = "email";
  s.name = "Send email";
  s.description = "Sends an email through the SMTP server set in [email].";
  s.aliases = {"send-email"};
  auto address_list = [](std::string name, bool required, std::string help) {
    return field_spec{.name = std::move(name),
                      .type = field_type::string_list,
                      .required = required,
                      .help = std::move(help),
                      .templates = true,
                      .format = field_format::email,
                      .max_length = 320};
  };
  s.fields = {
      address_list("to", true, "Recipient(s): one address, a list, or comma-separated"),
      address_list("cc", false, "Carbon-copy recipient(s)"),
      address_list("bcc", false, "Blind carbon-copy recipient(s)"),
      {.name = "subject", .help = "Subject; defaults to the zap's name", .templates = true, .max_length = 998},
      {.name = "body", .type = field_type::text, .help = "Plain-text body", .templates = true},
      {.name = "html", .type = field_type::text, .help = "Optional HTML body (sent as multipart/alternative)", .templates = true},
      {.name = "from", .help = "Sender; defaults to [email] from", .templates = true, .format = field_format::email, .max_length = 320},
      {.name = "replyTo", .help = "Reply-To address", .templates = true, .format = field_format::email, .max_length = 320},
  };
  // The seeds' editor stores {"email": ..., "body": ...}: `email` is accepted as `to`.
  auto alias = address_list("email", false, "Alias of `to` (the seeds' editor)");
  alias.alias_of = "to";
  s.fields.push_back(alias);
  s.icon_svg =
      R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#2b8a3e" stroke-width="2" stroke-linecap="round"><rect x="3" y="5" width="18" height="14" rx="2"/><path d="m3 7 9 6 9-6"/></svg>)";
  return s;
}

}  // namespace zapd::actions
