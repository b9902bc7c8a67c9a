// The `formatter` step: builds an object from templates, for later steps to read as
// {{steps.N.name}}. Pure: the worker renders each field (keep_type), this returns them.
#include <chrono>

#include "zapd/actions/catalog.hpp"
#include "zapd/actions/executor.hpp"

namespace zapd::actions {

using nlohmann::json;

spec formatter_action_spec() {
  spec s;
  s.id = "formatter";
  s.name = "Formatter";
  s.description = "Builds named values from templates and filters; later steps read them as {{steps.N.name}}.";
  s.fields = {
      {.name = "fields",
       .type = field_type::string_map,
       .required = true,
       .help = "Name -> template, e.g. email: {{body.email | lower | trim}}; a lone placeholder keeps its type",
       .templates = true},
  };
  s.check = [](const json& config, const std::string& path, std::vector<field_error>& out) {
    auto f = config.find("fields");
    if (f == config.end() || !f->is_object()) return;
    if (f->empty()) out.push_back({path + ".fields", "add at least one field"});
    for (const auto& [name, v] : f->items())
      if (name.empty() || name.size() > 100 || name.find_first_of(".[] {}|") != std::string::npos)
        out.push_back({path + ".fields." + name,
                       "a field name is 1 to 100 characters without spaces, dots, brackets, braces or |"});
  };
  s.icon_svg =
      R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#5f3dc4" stroke-width="2" stroke-linecap="round"><path d="M4 7V5h16v2M9 19h6M12 5v14"/></svg>)";
  return s;
}

namespace {

class formatter_executor final : public executor {
 public:
  templates::options render_options(std::string_view field, const json&) const override {
    templates::options o;
    if (field.starts_with("fields.")) o.keep_type = true;
    return o;
  }

  void execute(step_request req, done_fn done) override {
    step_result r;
    r.v = verdict::succeeded;
    auto f = req.config.find("fields");
    r.output = f != req.config.end() && f->is_object() ? std::move(*f) : json::object();
    done(std::move(r));
  }
};

}  // namespace

std::unique_ptr<executor> make_formatter_executor() { return std::make_unique<formatter_executor>(); }

}  // namespace zapd::actions
