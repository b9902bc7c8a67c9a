#include "zapd/templates/mask.hpp"

#include <algorithm>

#include "zapd/core/json.hpp"
#include "escape.hpp"

namespace zapd::templates {
namespace {

using nlohmann::json;

std::string lower_hex(std::string s) {
  for (std::size_t i = 0; i + 2 < s.size(); ++i) {
    if (s[i] != '%') continue;
    for (std::size_t k = i + 1; k <= i + 2; ++k)
      if (s[k] >= 'A' && s[k] <= 'F') s[k] = static_cast<char>(s[k] - 'A' + 'a');
    i += 2;
  }
  return s;
}

// application/x-www-form-urlencoded: a space as `+`.
std::string form_encoded(std::string_view s) {
  std::string out;
  for (std::size_t start = 0;;) {
    auto sp = s.find(' ', start);
    out += detail::url_component(s.substr(start, sp == std::string_view::npos ? sp : sp - start));
    if (sp == std::string_view::npos) return out;
    out += '+';
    start = sp + 1;
  }
}

std::vector<std::uint32_t> failure(std::string_view p) {
  std::vector<std::uint32_t> f(p.size(), 0);
  std::uint32_t k = 0;
  for (std::size_t i = 1; i < p.size(); ++i) {
    while (k > 0 && p[i] != p[k]) k = f[k - 1];
    if (p[i] == p[k]) ++k;
    f[i] = k;
  }
  return f;
}

}  // namespace

masker::masker(const std::vector<std::string>& values) {
  std::vector<std::string> texts;
  for (const auto& v : values) {
    if (v.empty()) continue;
    numbers_.push_back(v);
    std::string header = v;
    detail::clean_header(header);
    const std::string component = detail::url_component(v);
    for (const auto& t : {v, detail::json_string_content(v), component, lower_hex(component), form_encoded(v),
                          detail::url_whole(v), header})
      texts.push_back(t);
  }
  std::sort(texts.begin(), texts.end());
  texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
  for (auto& t : texts) {
    if (t.empty()) continue;
    auto f = failure(t);
    forms_.push_back({std::move(t), std::move(f)});
  }
}

masker masker::from_context(const json& ctx) {
  std::vector<std::string> values;
  if (ctx.is_object())
    if (auto it = ctx.find("secrets"); it != ctx.end() && it->is_object())
      for (const auto& v : *it) values.push_back(v.is_string() ? v.get<std::string>() : v.is_null() ? std::string{} : dump_safe(v));
  return masker(values);
}

std::string masker::str(std::string_view s) const {
  // longest[i]: length of the longest form starting at byte i (allocated at the first match).
  std::vector<std::uint32_t> longest;
  for (const auto& f : forms_) {
    const std::string_view p = f.text;
    if (p.size() > s.size()) continue;
    std::uint32_t k = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      while (k > 0 && s[i] != p[k]) k = f.fail[k - 1];
      if (s[i] == p[k]) ++k;
      if (k == p.size()) {
        if (longest.empty()) longest.assign(s.size(), 0);
        auto& l = longest[i + 1 - p.size()];
        l = std::max<std::uint32_t>(l, k);
        k = f.fail[k - 1];
      }
    }
  }
  if (longest.empty()) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (longest[i] > 0) {
      out += mask_text;
      i += longest[i];
    } else {
      out += s[i++];
    }
  }
  return out;
}

void masker::in_place(json& v) const {
  if (empty()) return;
  std::vector<json*> todo{&v};
  while (!todo.empty()) {
    json* p = todo.back();
    todo.pop_back();
    if (p->is_string()) {
      auto& s = p->get_ref<std::string&>();
      s = str(s);
    } else if (p->is_number()) {
      if (std::find(numbers_.begin(), numbers_.end(), p->dump()) != numbers_.end()) *p = mask_text;
    } else if (p->is_array()) {
      for (auto& item : *p) todo.push_back(&item);
    } else if (p->is_object()) {
      // Keys are immutable in place: a key that changes moves its value under the masked key
      // (two keys masking alike keep the last). Children are pushed once the keys are final.
      auto& obj = p->get_ref<json::object_t&>();
      std::vector<std::pair<std::string, std::string>> renames;
      for (const auto& [k, item] : obj)
        if (auto m = str(k); m != k) renames.emplace_back(k, std::move(m));
      for (auto& [from, to] : renames) {
        json moved = std::move(obj[from]);
        obj.erase(from);
        obj[to] = std::move(moved);
      }
      for (auto& [k, item] : obj) todo.push_back(&item);
    }
  }
}

json masker::value(const json& v) const {
  json out = v;
  in_place(out);
  return out;
}

}  // namespace zapd::templates
