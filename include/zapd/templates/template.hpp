#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

// Template rendering for action configs. Everything here is a pure function of its
// arguments: no I/O, no clock, no globals, so any worker thread may call it concurrently and
// tests need no set-up. Nothing fails: problems are warnings next to the output (there is no
// `result<T>` because there is always an output to use or to show).

namespace zapd::templates {

/// Where a rendered value lands; decides how it is escaped.
enum class mode {
  text,    ///< as-is (email bodies, plain text)
  json,    ///< the template is a JSON document: string content escaped inside "...", JSON values outside
  header,  ///< an HTTP header value: control characters (CR, LF, ...) become spaces
  url,     ///< a URL: values percent-encoded, except a placeholder that starts the template
};

struct options {
  mode m = mode::text;
  /// The seeds' `{comment.email}` form: honoured only when the template holds no `{{`.
  bool legacy_single_brace = false;
  /// Bytes of output (and of its masked twin) at which rendering stops with a warning; also
  /// the most any one filter may produce.
  std::size_t max_output = std::size_t{1} << 20;
  /// A template that is exactly one placeholder (whitespace around it allowed) keeps the JSON
  /// type of its value after filters (`{{items | length}}` -> 3, `{{order}}` -> the object,
  /// missing -> null) in `render_value` and `render_config` (the formatter and filter steps),
  /// instead of becoming text.
  bool keep_type = false;
};

/// A rendered template. Rendering never fails: problems become `warnings` (shown on the step).
struct rendered {
  std::string text;    ///< what the action uses
  std::string masked;  ///< the same with every secret value as `********`: what the step records
  std::vector<std::string> warnings;  ///< each once, at most 100 (+ one "... and N more"), valid UTF-8
  /// Names of `{{secrets.NAME}}` placeholders the context has no secret for, in order of first
  /// use, without repeats (each also has its warning). The worker fails such a step: a
  /// secret that was deleted must not render as an empty string.
  std::vector<std::string> missing_secrets;
  bool truncated = false;  ///< stopped at `max_output`; `text` is cut short (a JSON body is invalid)
};

/// Renders the `{{path}}` placeholders of `tmpl` against a run context:
///   {"trigger":{"body","query","headers","method","receivedAt"}, "steps":{"1":{...},...},
///    "run":{...}, "secrets":{"NAME":"value"}}
/// Paths: `a.b.0.c` or `a.b[0].c`; whitespace inside the braces is ignored. Filters follow
/// the path: `{{name | trim | upper}}`, `{{n | round:2}}`, `{{t | date:"%H:%M":"Europe/Paris"}}`
/// (the list and their rules per JSON type are in src/templates/README.md); a filter that
/// cannot apply warns and leaves the value unchanged. A path starting
/// with `trigger`, `steps`, `run` or `secrets` reads that root; any other path reads the
/// trigger body (`{{comment.email}}` == `{{trigger.body.comment.email}}`). `{{secrets.NAME}}`
/// is the only way to reach a secret (`{{secrets}}` alone renders nothing).
/// A missing field renders empty (`null` in a JSON value position) with a warning. Text that
/// is not a placeholder stays as written: an unterminated `{{` (warned), `{{` around something
/// that is not a path (warned), and `\{{`, which renders `{{`. The rules per mode are in
/// src/templates/README.md.
///
/// A pure function: no I/O, no clock, no globals; safe from any thread. Never throws.
rendered render(std::string_view tmpl, const nlohmann::json& ctx, const options& o = {});

/// One template rendered as a JSON value (`render_value`).
struct rendered_value {
  nlohmann::json value;   ///< the typed value (keep_type and one placeholder), else the rendered text
  nlohmann::json masked;  ///< the same with secret values masked (a placeholder reading a secret: `********`)
  std::vector<std::string> warnings;         ///< as in `rendered`
  std::vector<std::string> missing_secrets;  ///< as in `rendered`
  /// The template is exactly one placeholder and its path does not exist (before filters:
  /// `{{x | default:"y"}}` with no `x` is missing with the value "y"). Never true for a
  /// template with text or several placeholders. What `exists`/`notExists` test.
  bool missing = false;
  bool truncated = false;  ///< as in `rendered` (text results only)
};

/// Renders one template as a JSON value: with `o.keep_type` and a template that is one
/// placeholder, the referenced value after its filters (any JSON type; missing -> null);
/// otherwise the string `render` gives. Pure; never throws.
rendered_value render_value(std::string_view tmpl, const nlohmann::json& ctx, const options& o = {});

/// The problems `render` would warn about on any context that save-time validation can
/// catch: unknown filters, wrong argument count or type, an unterminated argument string or
/// another broken filter chain, an unknown time zone. Each names its placeholder, e.g.
/// `{{name | uper}}: unknown filter "uper" (known: ...)`. Valid UTF-8; empty when fine.
/// Text that is not a placeholder at all (`{{a b}}`) is not a problem: it stays text.
std::vector<std::string> check(std::string_view tmpl, const options& o = {});

/// A rendered JSON config: every string rendered, everything else copied.
struct rendered_json {
  nlohmann::json value;
  nlohmann::json masked;
  std::vector<std::string> warnings;  ///< each prefixed with its field, e.g. "body: {{x}}: ..."
  std::vector<std::string> missing_secrets;  ///< as in `rendered`, over every field
  /// Field paths (`conditions[0].left`) of keep_type strings that are one placeholder whose
  /// path does not exist (`rendered_value::missing`): tells a missing value from a null one.
  std::vector<std::string> missing_fields;
};

/// Options for one string of a config, by its field path: object keys joined with `.`, array
/// items as `[i]` (`url`, `headers.Authorization`, `to[0]`). Returns options rather than only
/// a mode so a field can also turn on `legacy_single_brace`.
using field_options = std::function<options(std::string_view field)>;

/// Walks `config` (objects, arrays, strings) and renders every string with the options
/// `for_field` gives (text mode when empty). Keys are not rendered. A field whose options
/// have `keep_type` gets the typed value of a one-placeholder template (see `render_value`)
/// in `value` and its masked twin in `masked`. Pure; never throws (unless `for_field` does).
rendered_json render_config(const nlohmann::json& config, const nlohmann::json& ctx, const field_options& for_field = {});

/// Names of the secrets any string of `config` references as `{{secrets.NAME}}` (or as the
/// legacy `{secrets.NAME}`), sorted, without repeats: the secrets a zap's runs may use, so the
/// ones whose values must be masked in its history. Iterative: any depth is safe.
std::vector<std::string> referenced_secrets(const nlohmann::json& config);

/// The paths `tmpl` references, as written (trimmed), in order of first use, without repeats:
/// "Hi {{ name }} {{steps.1.id}}" -> {"name", "steps.1.id"}. For the editor and validation.
std::vector<std::string> referenced_paths(std::string_view tmpl, const options& o = {});

}  // namespace zapd::templates
