// libFuzzer target for the TOML config: config::load with `sources::text` (the same path
// as a --config file, without the file) and config::render (what `zapd config check`
// prints). See README.md.
//
// Input: the TOML text.
//
// Checked: no crash, sanitizer report or exception (toml++'s parse_error is load's to catch).
// A refusal is invalid_argument. For a config that loads:
//   - when no string value holds a control character (render writes them raw, so the text
//     is not TOML then: README): render lists every key once; the secret keys'
//     (auth.secret, email.password) lines show "********" when set; and the other lines,
//     loaded again, render the same values (comments aside).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <exception>
#include <map>
#include <string>
#include <string_view>

#include "zapd/config/config.hpp"

namespace {

namespace config = zapd::config;

[[noreturn]] void fail(const char* what, std::string_view in, const std::string& more = {}) {
  std::fprintf(stderr, "config_fuzz: %s\ninput: %.*s\n%s\n", what, static_cast<int>(in.size()), in.data(), more.c_str());
  std::abort();
}

bool secret_key(const std::string& name) {
  for (const auto& k : config::key_table())
    if (k.name == name) return k.secret;
  return false;
}

struct line {
  std::string key;    // dotted
  std::string value;  // as rendered, without the comment
  std::string text;   // the whole line
};

// render()'s output, one entry per key line.
std::vector<line> key_lines(const std::string& rendered) {
  std::vector<line> out;
  std::string section;
  std::size_t pos = 0;
  while (pos < rendered.size()) {
    auto nl = rendered.find('\n', pos);
    std::string l = rendered.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? rendered.size() : nl + 1;
    if (l.empty()) continue;
    if (l.front() == '[') {
      section = l.substr(1, l.size() - 2);
      continue;
    }
    auto eq = l.find(" = ");
    if (eq == std::string::npos) continue;
    std::string leaf = l.substr(0, eq);
    auto hash = l.rfind("  # ");
    out.push_back({section.empty() ? leaf : section + "." + leaf, l.substr(eq + 3, hash - eq - 3), l});
  }
  return out;
}

bool has_control(const std::string& s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return true;
  }
  return false;
}

// Whether render wrote a value with a raw control character: any besides the line feeds,
// or more line feeds than the defaults' render (a value holding one splits its line).
bool has_raw_control(const std::string& rendered) {
  static const std::size_t k_lines = [] {
    auto d = config::load({});
    const std::string r = d ? config::render(*d) : std::string();
    return static_cast<std::size_t>(std::count(r.begin(), r.end(), '\n'));
  }();
  for (char ch : rendered)
    if (ch != '\n' && has_control(std::string(1, ch))) return true;
  return static_cast<std::size_t>(std::count(rendered.begin(), rendered.end(), '\n')) != k_lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    config::sources src;
    src.text = std::string(in);
    auto l = config::load(src);
    if (!l) {
      if (l.err().code != zapd::errc::invalid_argument) fail("refusal is not invalid_argument", in, l.err().message);
      return 0;
    }
    const std::string rendered = config::render(*l);
    const auto lines = key_lines(rendered);
    // A value with a raw control character (CR/LF included: it splits its line) is written
    // as is, so the text is not TOML and its lines cannot be told apart: see README.
    if (has_raw_control(rendered)) return 0;
    if (lines.size() != config::key_table().size()) fail("render does not list every key once", in, rendered);

    const std::map<std::string, const std::string*> secrets = {{"auth.secret", &l->values.auth_secret},
                                                               {"email.password", &l->values.email_password}};
    std::string again;  // render without the secret keys, as a flat TOML document by sections
    std::string section;
    for (const auto& ln : lines) {
      if (secret_key(ln.key)) {
        auto it = secrets.find(ln.key);
        if (it != secrets.end() && !it->second->empty() && ln.value != "\"********\"")
          fail("a secret is shown", in, ln.text);
        continue;
      }
      auto dot = ln.key.find('.');
      std::string sec = dot == std::string::npos ? "" : ln.key.substr(0, dot);
      if (sec != section) {
        again += "\n[" + sec + "]\n";
        section = sec;
      }
      again += ln.text + "\n";
    }

    config::sources src2;
    src2.text = again;
    auto l2 = config::load(src2);
    if (!l2) fail("render output does not load again", in, l2.err().message + "\n" + again);
    const auto lines2 = key_lines(config::render(*l2));
    std::map<std::string, std::string> before, after;
    for (const auto& ln : lines)
      if (!secret_key(ln.key)) before[ln.key] = ln.value;
    for (const auto& ln : lines2)
      if (!secret_key(ln.key)) after[ln.key] = ln.value;
    if (before != after) fail("render -> load -> render changes values", in, again);
  } catch (const std::exception& e) {
    fail("exception", in, e.what());
  }
  return 0;
}
