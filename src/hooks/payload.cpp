#include "zapd/hooks/payload.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <simdjson.h>

#include "zapd/core/clock.hpp"
#include "zapd/core/json.hpp"

namespace zapd::hooks {
namespace {


// The media type without parameters, lower-cased: "application/json; charset=utf-8" -> "application/json".
std::string media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  return to_lower(trim(content_type.substr(0, semi)));
}

bool is_json_type(const std::string& mt) { return mt == "application/json" || mt.ends_with("+json") || mt == "text/json"; }

std::string decode_form_part(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc{} && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
      } else {
        out += c;  // a stray '%' is kept as text rather than failing the webhook
      }
    } else {
      out += c;
    }
  }
  return out;
}


// Whether `body` is JSON (RFC 8259) to its last byte. simdjson checks a typical webhook body in
// ~0.1 us where nlohmann's accept() took ~2 us (6 % of an HTTP thread's time under ingest).
// It refuses a few texts nlohmann takes (integers beyond 64 bits), so its "no" is asked again
// of nlohmann, whose verdict stands: the bodies accepted are exactly nlohmann's (payload_fuzz
// compares the two). Neither recurses. simdjson's parser keeps buffers sized by the largest
// text it checked: bodies over 64 KiB go to nlohmann, so a thread keeps under 1 MiB for it.
bool is_json_text(std::string_view body) {
  constexpr std::size_t k_fast_max = 64 * 1024;
  if (body.size() <= k_fast_max) {
    thread_local simdjson::dom::parser parser(k_fast_max);
    thread_local std::string padded;  // simdjson reads up to SIMDJSON_PADDING bytes past the end
    padded.reserve(body.size() + simdjson::SIMDJSON_PADDING);
    padded.assign(body.data(), body.size());
    if (parser.parse(padded.data(), padded.size(), false).error() == simdjson::SUCCESS) return true;
  }
  return nlohmann::json::accept(body);
}

}  // namespace

result<checked_body> check_body(std::string_view content_type, std::string_view body, std::size_t max_depth,
                                bool parse_json) {
  checked_body out;
  const std::string mt = media_type(content_type);
  if (is_json_type(mt)) {
    constexpr std::string_view bom = "\xEF\xBB\xBF";  // UTF-8 byte order mark
    constexpr std::string_view not_json = "body is not valid JSON (Content-Type says JSON)";
    // nlohmann skips a byte order mark, but the text is stored as the body as is, where it
    // would not be JSON (payload_fuzz): drop it.
    if (body.starts_with(bom)) body.remove_prefix(bom.size());
    // A second one is not JSON either, but nlohmann skips a mark at the start of its input:
    // the stored body would begin with it (no longer JSON inside the trigger payload).
    if (body.starts_with(bom))
      return make_error(errc::invalid_argument, fmt::format("{}: it starts with two byte order marks", not_json));
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;  // null
    if (nesting_depth(body, max_depth) > max_depth)
      return make_error(errc::invalid_argument, fmt::format("JSON body nests deeper than {} levels, the limit (hooks.max_depth)", max_depth));
    // Bad syntax and invalid UTF-8 are refused alike; no document is built.
    // A NUL byte would end nlohmann's input early ("{}\0anything" passes accept()); the raw
    // text is stored as the trigger's body, so it must be JSON to its last byte.
    if (body.find('\0') != std::string_view::npos || !is_json_text(body))
      return make_error(errc::invalid_argument, std::string(not_json));
    out.json_text = body;
    if (parse_json) out.value = parse_json_or_discarded(body, max_depth);
    return out;
  }
  if (mt == "application/x-www-form-urlencoded") {
    nlohmann::json obj = nlohmann::json::object();
    std::string_view rest = body;
    while (!rest.empty()) {
      auto amp = rest.find('&');
      auto pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
      if (pair.empty()) continue;
      auto eq = pair.find('=');
      std::string k = decode_form_part(pair.substr(0, eq));
      std::string v = eq == std::string_view::npos ? std::string{} : decode_form_part(pair.substr(eq + 1));
      obj[json_string(k).get<std::string>()] = json_string(v);
    }
    out.value = std::move(obj);
    return out;
  }
  if (!body.empty()) out.value = json_string(body);
  return out;
}

bool kept_header(std::string_view n) {
  static constexpr std::string_view dropped[] = {"authorization", "proxy-authorization", "cookie",  "set-cookie",
                                                 "x-api-key",     "connection",          "keep-alive", "transfer-encoding",
                                                 "upgrade",       "te",                  "trailer",   "content-length"};
  for (auto d : dropped)
    if (n == d) return false;
  return true;
}

nlohmann::json trigger_payload(std::string_view method, nlohmann::json body, std::string_view content_type,
                               const std::map<std::string, std::string>& query,
                               const std::vector<std::pair<std::string, std::string>>& headers, std::int64_t received_ms) {
  nlohmann::json q = nlohmann::json::object();
  for (const auto& [k, v] : query) q[json_string(k).get<std::string>()] = json_string(v);
  nlohmann::json h = nlohmann::json::object();
  for (const auto& [k, v] : headers) {
    std::string name = to_lower(k);
    if (kept_header(name)) h[json_string(name).get<std::string>()] = json_string(v);
  }
  return {{"method", std::string(method)},
          {"body", std::move(body)},
          {"query", std::move(q)},
          {"headers", std::move(h)},
          {"contentType", media_type(content_type)},
          {"receivedAt", iso_time_ms(received_ms)}};
}

namespace {

// Appends `s` as a JSON string when it is printable ASCII (what headers, query strings and
// methods nearly always are), escaping only '"' and '\\' as nlohmann's dump does; false, with
// `out` partly written, for anything else (control bytes, UTF-8, invalid bytes).
bool append_ascii_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e) return false;
    if (c == '"' || c == '\\') out += '\\';
    out += ch;
  }
  out += '"';
  return true;
}

// The trigger payload's text written directly, without a document: the same bytes as
// dump_safe(trigger_payload(...)) (keys in nlohmann's sorted order, a repeated header's last
// value). Nothing when a field needs more than ASCII escaping: the caller takes the document
// path, which replaces invalid UTF-8.
std::optional<std::string> direct_payload_text(std::string_view method, std::string_view body_text,
                                               std::string_view content_type,
                                               const std::map<std::string, std::string>& query,
                                               const std::vector<std::pair<std::string, std::string>>& headers,
                                               std::int64_t received_ms) {
  // Kept headers by lower-cased name, sorted; stable, so the last of a repeated name is last.
  std::vector<std::pair<std::string, std::string_view>> kept;
  kept.reserve(headers.size());
  for (const auto& [k, v] : headers) {
    std::string name = to_lower(k);
    if (kept_header(name)) kept.emplace_back(std::move(name), v);
  }
  std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string out;
  out.reserve(body_text.size() + 64 * kept.size() + 160);
  out += "{\"body\":";
  out += body_text;
  out += ",\"contentType\":";
  if (!append_ascii_string(out, media_type(content_type))) return std::nullopt;
  out += ",\"headers\":{";
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (i + 1 < kept.size() && kept[i + 1].first == kept[i].first) continue;  // a later value wins
    if (out.back() != '{') out += ',';
    if (!append_ascii_string(out, kept[i].first)) return std::nullopt;
    out += ':';
    if (!append_ascii_string(out, kept[i].second)) return std::nullopt;
  }
  out += "},\"method\":";
  if (!append_ascii_string(out, method)) return std::nullopt;
  out += ",\"query\":{";
  for (const auto& [k, v] : query) {
    if (out.back() != '{') out += ',';
    if (!append_ascii_string(out, k)) return std::nullopt;
    out += ':';
    if (!append_ascii_string(out, v)) return std::nullopt;
  }
  out += "},\"receivedAt\":\"";
  out += iso_time_ms(received_ms);
  out += "\"}";
  return out;
}

}  // namespace

std::string trigger_payload_text(std::string_view method, const checked_body& body, std::string_view content_type,
                                 const std::map<std::string, std::string>& query,
                                 const std::vector<std::pair<std::string, std::string>>& headers, std::int64_t received_ms) {
  // A JSON body is spliced as its own text (a view, no copy); other bodies are dumped once.
  const std::string dumped = body.json_text ? std::string() : dump_safe(body.value);
  const std::string_view body_text = body.json_text ? trim(*body.json_text) : std::string_view(dumped);
  if (auto direct = direct_payload_text(method, body_text, content_type, query, headers, received_ms)) return std::move(*direct);
  // Everything but the body as a document; the body is spliced in as text.
  nlohmann::json rest = trigger_payload(method, nullptr, content_type, query, headers, received_ms);
  rest.erase("body");
  std::string out = "{\"body\":";
  out += body_text;
  out += ',';
  std::string tail = dump_safe(rest);
  out.append(tail, 1, std::string::npos);  // without its '{'
  return out;
}

std::optional<std::string> value_at(const nlohmann::json& body, std::string_view path) {
  const nlohmann::json* cur = &body;
  while (!path.empty()) {
    auto dot = path.find('.');
    auto seg = path.substr(0, dot);
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    if (cur->is_object()) {
      auto it = cur->find(std::string(seg));
      if (it == cur->end()) return std::nullopt;
      cur = &*it;
    } else if (cur->is_array()) {
      std::size_t i = 0;
      auto [p, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), i);
      if (ec != std::errc{} || p != seg.data() + seg.size() || i >= cur->size()) return std::nullopt;
      cur = &(*cur)[i];
    } else {
      return std::nullopt;
    }
  }
  if (cur->is_null()) return std::nullopt;
  if (cur->is_string()) return cur->get<std::string>();
  return dump_safe(*cur);
}


}  // namespace zapd::hooks
