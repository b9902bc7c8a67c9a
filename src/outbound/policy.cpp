#include "zapd/outbound/policy.hpp"

#include "zapd/core/json.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

namespace zapd::outbound {

namespace {

constexpr int v4_bits = 32;
constexpr int v6_bits = 128;
constexpr std::size_t max_host_name = 253;
constexpr std::size_t max_label = 63;

/// Host as written in a URL or the allow list -> the form names are compared in.
std::string normal_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return to_lower(host);
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
  return std::all_of(p, p + n, [](std::uint8_t b) { return b == 0; });
}

ip_address v4_at(const std::array<std::uint8_t, 16>& b, std::size_t at, bool invert = false) {
  auto x = [&](std::size_t i) { return static_cast<std::uint8_t>(invert ? ~b[at + i] : b[at + i]); };
  return ip_address::v4(x(0), x(1), x(2), x(3));
}

address_kind classify_v4(const std::array<std::uint8_t, 16>& b) {
  const auto a = b[0], s = b[1], c = b[2];
  if (a == 0) return address_kind::unspecified;
  if (a == 10) return address_kind::private_network;
  if (a == 100 && (s & 0xC0) == 64) return address_kind::shared;
  if (a == 127) return address_kind::loopback;
  if (a == 169 && s == 254) return address_kind::link_local;
  if (a == 172 && (s & 0xF0) == 16) return address_kind::private_network;
  if (a == 192 && s == 0 && c == 0) return address_kind::reserved;
  if (a == 192 && s == 168) return address_kind::private_network;
  if (a == 198 && (s & 0xFE) == 18) return address_kind::reserved;
  if (a >= 224 && a < 240) return address_kind::multicast;
  if (a >= 240) return address_kind::reserved;
  return address_kind::global;
}

/// An IPv6 form that carries `embedded`: it leads where the IPv4 address leads. `if_global`
/// is the kind when the IPv4 address is public (forms that no host routes are `reserved`).
classification embedding(const ip_address& embedded, address_kind if_global) {
  auto k = classify_v4(embedded.bytes);
  return {k == address_kind::global ? if_global : k, embedded};
}

classification classify_v6(const std::array<std::uint8_t, 16>& x) {
  const auto* p = x.data();
  if (all_zero(p, 16)) return {address_kind::unspecified, {}};
  if (all_zero(p, 15) && x[15] == 1) return {address_kind::loopback, {}};
  // ::ffff:a.b.c.d, IPv4-mapped: a dual-stack socket connects to a.b.c.d itself.
  if (all_zero(p, 10) && x[10] == 0xFF && x[11] == 0xFF) return embedding(v4_at(x, 12), address_kind::global);
  // ::a.b.c.d, IPv4-compatible (deprecated).
  if (all_zero(p, 12)) return embedding(v4_at(x, 12), address_kind::reserved);
  // ::ffff:0:a.b.c.d, IPv4-translated (SIIT).
  if (all_zero(p, 8) && x[8] == 0xFF && x[9] == 0xFF && x[10] == 0 && x[11] == 0)
    return embedding(v4_at(x, 12), address_kind::reserved);
  // 64:ff9b::/96, the well-known NAT64 prefix: a translator connects to the IPv4 address.
  if (x[0] == 0 && x[1] == 0x64 && x[2] == 0xFF && x[3] == 0x9B && all_zero(p + 4, 8))
    return embedding(v4_at(x, 12), address_kind::global);
  // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): leads to the operator's own translators,
  // and where the IPv4 address sits depends on their prefix length.
  if (x[0] == 0 && x[1] == 0x64 && x[2] == 0xFF && x[3] == 0x9B && x[4] == 0 && x[5] == 1)
    return {address_kind::private_network, {}};
  // 100::/64, discard-only.
  if (x[0] == 1 && x[1] == 0 && all_zero(p + 2, 6)) return {address_kind::reserved, {}};
  // 2001::/32, Teredo: server IPv4 in bits 32-63, client IPv4 inverted in the last 32.
  if (x[0] == 0x20 && x[1] == 0x01 && x[2] == 0 && x[3] == 0) {
    auto client = embedding(v4_at(x, 12, true), address_kind::global);
    if (client.kind != address_kind::global) return client;
    return embedding(v4_at(x, 4), address_kind::global);
  }
  // 2002::/16, 6to4: the IPv4 address is bits 16-47.
  if (x[0] == 0x20 && x[1] == 0x02) return embedding(v4_at(x, 2), address_kind::global);
  if ((x[0] & 0xFE) == 0xFC) return {address_kind::unique_local, {}};
  if (x[0] == 0xFE && (x[1] & 0xC0) == 0x80) return {address_kind::link_local, {}};
  if (x[0] == 0xFE && (x[1] & 0xC0) == 0xC0) return {address_kind::private_network, {}};
  if (x[0] == 0xFF) return {address_kind::multicast, {}};
  return {address_kind::global, {}};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// Why `name` is not a host name, or nothing. `name` is already lower case.
std::optional<std::string> bad_host_name(std::string_view name) {
  if (name.find('*') != std::string_view::npos) return "wildcards are not supported; list each host name";
  if (name.find(':') != std::string_view::npos)
    return "is not a valid IPv6 address, and a port cannot be part of an entry";
  if (name.find('/') != std::string_view::npos) return "is not a valid CIDR block";
  if (std::all_of(name.begin(), name.end(), [](char c) { return is_digit(c) || c == '.'; }))
    return "is not a valid IPv4 address";
  if (name.size() > max_host_name) return "is longer than 253 characters";
  std::size_t start = 0;
  while (start <= name.size()) {
    auto end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    auto label = name.substr(start, end - start);
    if (label.empty()) return "has an empty label";
    if (label.size() > max_label) return "has a label longer than 63 characters";
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_';
      if (!ok) return fmt::format("has a character not allowed in a host name: '{}'", c);
    }
    if (label.front() == '-' || label.back() == '-') return "has a label that starts or ends with '-'";
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

ip_address ip_address::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  ip_address out;
  out.bytes[0] = a;
  out.bytes[1] = b;
  out.bytes[2] = c;
  out.bytes[3] = d;
  return out;
}

std::optional<ip_address> ip_address::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  ip_address out;
  if (s.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, s.c_str(), out.bytes.data()) != 1) return std::nullopt;
    return out;
  }
  out.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), out.bytes.data()) != 1) return std::nullopt;
  return out;
}

std::optional<ip_address> ip_address::from_sockaddr(const sockaddr* sa, std::size_t len) {
  if (sa == nullptr) return std::nullopt;
  ip_address out;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, sa, sizeof in);
    std::memcpy(out.bytes.data(), &in.sin_addr, 4);
    return out;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, sa, sizeof in6);
    out.v6 = true;
    std::memcpy(out.bytes.data(), &in6.sin6_addr, 16);
    return out;
  }
  return std::nullopt;
}

ip_address ip_address::unmapped() const {
  if (v6 && all_zero(bytes.data(), 10) && bytes[10] == 0xFF && bytes[11] == 0xFF) return v4_at(bytes, 12);
  return *this;
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

std::string_view describe(address_kind k) noexcept {
  switch (k) {
    case address_kind::global: return "a public address";
    case address_kind::loopback: return "a loopback address";
    case address_kind::private_network: return "a private address";
    case address_kind::link_local: return "a link-local address";
    case address_kind::unique_local: return "a unique-local address";
    case address_kind::unspecified: return "an unspecified address";
    case address_kind::shared: return "a shared (carrier-grade NAT) address";
    case address_kind::multicast: return "a multicast address";
    case address_kind::reserved: return "a reserved address";
  }
  return "a reserved address";
}

classification classify(const ip_address& a) {
  if (!a.v6) return {classify_v4(a.bytes), {}};
  return classify_v6(a.bytes);
}

result<cidr> cidr::parse(std::string_view text) {
  text = trim(text);
  auto slash = text.find('/');
  auto addr_text = text.substr(0, slash);
  auto addr = ip_address::parse(addr_text);
  if (!addr) {
    return make_error(errc::invalid_argument,
                      fmt::format("\"{}\" is not a valid IPv4 or IPv6 address", std::string(addr_text)));
  }
  const int max = addr->v6 ? v6_bits : v4_bits;
  int prefix = max;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), is_digit)) {
      return make_error(errc::invalid_argument, fmt::format("\"{}\" is not a prefix length", std::string(p)));
    }
    prefix = std::stoi(std::string(p));
    if (prefix > max) {
      return make_error(errc::invalid_argument,
                        fmt::format("prefix /{} is longer than an {} address ({} bits)", prefix,
                                    addr->v6 ? "IPv6" : "IPv4", max));
    }
  }
  cidr out{*addr, prefix};
  cidr canonical = out;
  for (int bit = prefix; bit < max; ++bit) {
    canonical.network.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  }
  if (!(canonical.network == out.network)) {
    return make_error(errc::invalid_argument, fmt::format("host bits are set after the /{} prefix; did you mean {}?",
                                                          prefix, canonical.to_string()));
  }
  // ::ffff:a.b.c.d/104 is the IPv4 block a.b.c.d/8: store it as such so it matches both forms.
  if (out.network.v6 && out.prefix >= 96 && !(out.network.unmapped() == out.network)) {
    return cidr{out.network.unmapped(), out.prefix - 96};
  }
  return out;
}

bool cidr::contains(const ip_address& a) const {
  auto x = a.unmapped();
  if (x.v6 != network.v6) return false;
  int full = prefix / 8;
  if (!std::equal(x.bytes.begin(), x.bytes.begin() + full, network.bytes.begin())) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xFF00u >> rest);
  return (x.bytes[full] & mask) == (network.bytes[full] & mask);
}

std::string cidr::to_string() const { return fmt::format("{}/{}", network.to_string(), prefix); }

result<policy> policy::parse(std::string_view allow) {
  policy out;
  for (auto entry : split(allow, ',')) {
    if (entry.empty()) continue;
    auto fail = [&](std::string_view why) {
      return make_error(errc::invalid_argument,
                        fmt::format("{}: \"{}\" {}", allow_key, std::string(entry), why));
    };
    auto as_text = to_lower(entry);
    if (as_text.find("://") != std::string::npos) return fail("looks like a URL; list the host name alone");
    bool looks_like_address = as_text.find('/') != std::string::npos ||
                              ip_address::parse(as_text).has_value();
    if (looks_like_address) {
      auto block = cidr::parse(as_text);
      if (!block) return fail(fmt::format("is not a valid CIDR block: {}", block.err().message));
      out.networks_.push_back(*block);
      continue;
    }
    auto name = normal_host(as_text);
    if (auto why = bad_host_name(name)) return fail(*why);
    out.hosts_.push_back(std::move(name));
  }
  return out;
}

bool policy::allows_host(std::string_view host) const {
  if (hosts_.empty() || host.empty()) return false;
  auto h = normal_host(host);
  return std::find(hosts_.begin(), hosts_.end(), h) != hosts_.end();
}

std::optional<std::string> policy::refusal(const ip_address& addr, std::string_view host) const {
  if (allows_host(host)) return std::nullopt;
  for (const auto& n : networks_) {
    if (n.contains(addr)) return std::nullopt;
  }
  auto c = classify(addr);
  if (c.kind == address_kind::global) return std::nullopt;
  if (c.embedded && !(*c.embedded == addr)) {
    return fmt::format("{} is {} (it embeds {})", addr.to_string(), describe(c.kind), c.embedded->to_string());
  }
  return fmt::format("{} is {}", addr.to_string(), describe(c.kind));
}

}  // namespace zapd::outbound
