#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"

namespace zapd {

/// JSON nesting limits. Every JSON text zapd reads goes through `parse_json` (CI's
/// `.ci/check-json-parse` fails on any other `json::parse`), so no document deeper than its
/// limit exists in the process and nothing that walks one (dump, copy, compare, validators,
/// templates) recurses without bound. See "Stack depth" in docs/ARCHITECTURE.md.
namespace json_depth {
/// API request bodies (zaps, imports, accounts, secrets...).
inline constexpr std::size_t api = 64;
/// A step's output parsed from a remote server's response (deeper: kept as text).
inline constexpr std::size_t remote = 256;
/// Documents zapd stored itself and reads back: a trigger payload wraps a webhook body of
/// up to hooks.max_depth (<= 1000) levels in a few more.
inline constexpr std::size_t stored = 1024 + 16;
}  // namespace json_depth

/// Deepest object/array nesting of a JSON text (brackets inside strings do not count).
/// Linear, no recursion; stops counting past `stop_at` (cheap rejection of hostile input).
std::size_t nesting_depth(std::string_view json_text, std::size_t stop_at);

/// The one parser of JSON text: `invalid_argument` when `text` is not JSON (syntax or
/// invalid UTF-8) or nests deeper than `max_depth` (the message names the limit; checked
/// before any document is built). `what` names the input in messages ("request body").
result<nlohmann::json> parse_json(std::string_view text, std::size_t max_depth, std::string_view what = "JSON text");
/// `parse_json` for callers that only branch on success: a discarded value on any failure.
nlohmann::json parse_json_or_discarded(std::string_view text, std::size_t max_depth);

/// Small JSON and text helpers shared by the modules that handle untrusted payloads.
/// Pure functions, thread-safe.

/// ASCII lower-case (header names, media types, host names).
std::string to_lower(std::string_view s);

/// `s` without leading and trailing spaces, tabs, CRs and LFs.
std::string_view trim(std::string_view s);

/// The pieces of `s` between `sep`s, each trimmed; empty pieces kept ("a,,b" -> a, "", b;
/// "" -> one empty piece). Views into `s`.
std::vector<std::string_view> split(std::string_view s, char sep);

/// Serialises `j` compactly; invalid UTF-8 in strings is replaced, so it never throws.
std::string dump_safe(const nlohmann::json& j);

/// A JSON string holding `bytes`, invalid UTF-8 replaced: a later dump never throws.
nlohmann::json json_string(std::string_view bytes);

/// `obj[key]` when it is a string, else `fallback` (also when `obj` is not an object).
std::string string_field(const nlohmann::json& obj, const char* key, std::string fallback = {});

}  // namespace zapd
