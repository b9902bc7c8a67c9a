#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "zapd/actions/spec.hpp"

namespace zapd::actions {

/// Every trigger and action zapd offers, built in code next to each implementation.
/// Immutable after construction; safe to share between threads.
class catalog {
 public:
  /// The built-in catalog (triggers: webhook, schedule; actions: http, email, filter, delay, formatter).
  static const catalog& builtin();

  const spec* find_trigger(std::string_view id_or_alias) const;
  const spec* find_action(std::string_view id_or_alias) const;
  const std::vector<spec>& triggers() const { return triggers_; }
  const std::vector<spec>& actions() const { return actions_; }

  /// `{"id","name","image","configSchema"}` as the catalog routes answer; `image` is an
  /// absolute URL under `public_url`.
  nlohmann::json entry_json(const spec& s, const std::string& public_url) const;
  /// `{"id","name","image"}` as embedded in a zap's `type`.
  nlohmann::json type_json(const spec& s, const std::string& public_url) const;
  /// The icon for `/static/icons/{id}.svg`, or null.
  const std::string* icon(std::string_view id) const;

 private:
  std::vector<spec> triggers_;
  std::vector<spec> actions_;
};

/// Built-in specs, one function per trigger/action file.
spec webhook_trigger_spec();
spec schedule_trigger_spec();
spec http_action_spec();
spec email_action_spec();
spec filter_action_spec();
spec delay_action_spec();
spec formatter_action_spec();

}  // namespace zapd::actions
