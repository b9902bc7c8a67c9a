#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace zapd::templates::detail {


/// True when `s` is well-formed UTF-8 as nlohmann::json checks it (RFC 3629: no overlong
/// forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

/// `s` escaped as the content of a JSON string (no surrounding quotes); invalid UTF-8 -> U+FFFD.
std::string json_string_content(std::string_view s);

/// Replaces control characters (CR, LF, NUL, ... and DEL; not TAB) with spaces, so a header
/// value cannot end its line. True when anything was replaced.
bool clean_header(std::string& s);

/// Percent-encodes every byte but RFC 3986 unreserved ones (A-Z a-z 0-9 - . _ ~).
std::string url_component(std::string_view s);

/// Keeps a URL's structure (`:/?#[]@!$&'()*+,;=%`) and percent-encodes only bytes that can
/// never appear in one: controls, space, non-ASCII and `"<>\^`{|}`.
std::string url_whole(std::string_view s);

}  // namespace zapd::templates::detail
