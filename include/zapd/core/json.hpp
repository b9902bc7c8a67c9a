#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace zapd {

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
