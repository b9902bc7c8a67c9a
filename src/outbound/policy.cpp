#include "zapd/outbound/policy.hpp"

#include "zapd/core/json.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

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

using enum address_kind;

// The default deny list. Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (RFC 6890; every row, named as the registry names it), the multicast blocks (RFC 5771,
// RFC 4291), and three deprecated IPv6 forms the registries do not list but hosts may still
// route (IPv4-compatible, IPv4-translated, site-local).
//
// Rows the registries mark "globally reachable" are refused too, except where an embedded
// IPv4 address decides (IPv4-mapped and NAT64 64:ff9b::/96 of a public address lead to that
// public address, so they are allowed). Nothing a webhook calls lives in the others:
//  - 192.0.0.9, 192.0.0.10, 2001:1::1-3 are PCP/TURN/SRP anycast service addresses;
//    192.31.196.0/24, 192.175.48.0/24, 2001:4:112::/48 and 2620:4f:8000::/48 are AS112 DNS
//    sinks; 192.52.193.0/24 and 2001:3::/32 are AMT multicast relays.
//  - 2001::/23 is refused whole (IETF protocol assignments, not generally routable), so
//    ORCHIDv2, DETs and Teredo are too; 6to4 (2002::/16) likewise: both are transition
//    mechanisms whose relays are deprecated or gone (RFC 7526), and both can spell internal
//    IPv4 addresses. Teredo and 6to4 still report an embedded internal address by name.
// An operator who needs one lists it in actions.http.allow.
constexpr special_range k_ranges[] = {
    // IPv4 (iana-ipv4-special-registry)
    {"0.0.0.0/8", "\"This network\"", unspecified},
    {"0.0.0.0/32", "\"This host on this network\"", unspecified},
    {"10.0.0.0/8", "Private-Use", private_network},
    {"100.64.0.0/10", "Shared Address Space", shared},
    {"127.0.0.0/8", "Loopback", loopback},
    {"169.254.0.0/16", "Link Local", link_local},
    {"172.16.0.0/12", "Private-Use", private_network},
    {"192.0.0.0/24", "IETF Protocol Assignments", reserved},
    {"192.0.0.0/29", "IPv4 Service Continuity Prefix", reserved},
    {"192.0.0.8/32", "IPv4 dummy address", reserved},
    {"192.0.0.9/32", "Port Control Protocol Anycast", reserved},
    {"192.0.0.10/32", "Traversal Using Relays around NAT Anycast", reserved},
    {"192.0.0.170/32", "NAT64/DNS64 Discovery", reserved},
    {"192.0.0.171/32", "NAT64/DNS64 Discovery", reserved},
    {"192.0.2.0/24", "Documentation (TEST-NET-1)", reserved},
    {"192.31.196.0/24", "AS112-v4", reserved},
    {"192.52.193.0/24", "AMT", reserved},
    {"192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", reserved},
    {"192.88.99.2/32", "6a44-relay anycast address", reserved},
    {"192.168.0.0/16", "Private-Use", private_network},
    {"192.175.48.0/24", "Direct Delegation AS112 Service", reserved},
    {"198.18.0.0/15", "Benchmarking", reserved},
    {"198.51.100.0/24", "Documentation (TEST-NET-2)", reserved},
    {"203.0.113.0/24", "Documentation (TEST-NET-3)", reserved},
    {"224.0.0.0/4", "Multicast", multicast},  // IPv4 Multicast Address Space registry
    {"240.0.0.0/4", "Reserved", reserved},
    {"255.255.255.255/32", "Limited Broadcast", reserved},
    // IPv6 (iana-ipv6-special-registry)
    {"::1/128", "Loopback Address", loopback},
    {"::/128", "Unspecified Address", unspecified},
    {"::ffff:0:0/96", "IPv4-mapped Address", global, embedding::low32},  // a dual-stack socket connects to the IPv4 address
    {"::/96", "IPv4-compatible Address (deprecated, RFC 4291)", reserved, embedding::low32},  // not in the registry
    {"::ffff:0:0:0/96", "IPv4-translated Address (RFC 2765)", reserved, embedding::low32},   // not in the registry
    {"64:ff9b::/96", "IPv4-IPv6 Translat.", global, embedding::low32},  // NAT64: a translator connects to the IPv4 address
    // Local-use NAT64 (RFC 8215) leads to the operator's own translators, and where the IPv4
    // address sits depends on their prefix length.
    {"64:ff9b:1::/48", "IPv4-IPv6 Translat. (local use)", private_network},
    {"100::/64", "Discard-Only Address Block", reserved},
    {"100:0:0:1::/64", "Dummy IPv6 Prefix", reserved},
    {"2001::/23", "IETF Protocol Assignments", reserved},
    {"2001::/32", "TEREDO", reserved, embedding::teredo},
    {"2001:1::1/128", "Port Control Protocol Anycast", reserved},
    {"2001:1::2/128", "Traversal Using Relays around NAT Anycast", reserved},
    {"2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", reserved},
    {"2001:2::/48", "Benchmarking", reserved},
    {"2001:3::/32", "AMT", reserved},
    {"2001:4:112::/48", "AS112-v6", reserved},
    {"2001:10::/28", "Deprecated (previously ORCHID)", reserved},
    {"2001:20::/28", "ORCHIDv2", reserved},
    {"2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", reserved},
    {"2001:db8::/32", "Documentation", reserved},
    {"2002::/16", "6to4", reserved, embedding::six_to_four},
    {"2620:4f:8000::/48", "Direct Delegation AS112 Service", reserved},
    {"3fff::/20", "Documentation", reserved},
    {"5f00::/16", "Segment Routing (SRv6) SIDs", reserved},
    {"fc00::/7", "Unique-Local", unique_local},
    {"fe80::/10", "Link-Local Unicast", link_local},
    {"fec0::/10", "Site-Local (deprecated, RFC 3879)", private_network},  // not in the registry
    {"ff00::/8", "Multicast", multicast},  // RFC 4291
};

// A row's block in binary. cidr::parse would turn ::ffff:0:0/96 into 0.0.0.0/0, so the table
// has its own (host bits are checked by the test that walks every row).
struct block_bits {
  std::array<std::uint8_t, 16> bytes{};
  int prefix = 0;
  bool v6 = false;
};

block_bits bits_of(std::string_view block) {
  auto slash = block.find('/');
  auto a = ip_address::parse(block.substr(0, slash));
  block_bits out;
  if (!a || slash == std::string_view::npos) return out;  // unreachable for the table above (tested)
  out.bytes = a->bytes;
  out.v6 = a->v6;
  out.prefix = std::stoi(std::string(block.substr(slash + 1)));
  return out;
}

bool holds(const block_bits& b, const std::array<std::uint8_t, 16>& x) {
  const int full = b.prefix / 8;
  if (!std::equal(x.begin(), x.begin() + full, b.bytes.begin())) return false;
  const int rest = b.prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF00u >> rest);
  return (x[full] & mask) == (b.bytes[full] & mask);
}

/// The row of the longest block holding `x` (of the family `v6`), or null.
const special_range* row_of(const std::array<std::uint8_t, 16>& x, bool v6) {
  static const std::vector<block_bits> bits = [] {
    std::vector<block_bits> out;
    for (const auto& r : k_ranges) out.push_back(bits_of(r.block));
    return out;
  }();
  const special_range* best = nullptr;
  int best_prefix = -1;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (bits[i].v6 != v6 || bits[i].prefix <= best_prefix || !holds(bits[i], x)) continue;
    best = &k_ranges[i];
    best_prefix = bits[i].prefix;
  }
  return best;
}

classification classify_v4(const ip_address& a) {
  const auto* row = row_of(a.bytes, false);
  if (!row) return {};
  return {row->kind, {}, row};
}

/// An IPv6 form carrying `embedded` (row `row`): a non-public embedded address decides.
classification carrying(const ip_address& embedded, const special_range* row) {
  auto inner = classify_v4(embedded);
  if (inner.kind != global) return {inner.kind, embedded, inner.range};
  return {row->kind, embedded, row->kind == global ? nullptr : row};
}

classification classify_v6(const std::array<std::uint8_t, 16>& x) {
  const auto* row = row_of(x, true);
  if (!row) return {};
  switch (row->embeds) {
    case embedding::none: return {row->kind, {}, row};
    case embedding::low32: return carrying(v4_at(x, 12), row);
    case embedding::six_to_four: return carrying(v4_at(x, 2), row);
    case embedding::teredo: {
      // The client (inverted) is where the traffic ends up; the server relays it.
      const auto client = v4_at(x, 12, true);
      if (classify_v4(client).kind != global) return carrying(client, row);
      return carrying(v4_at(x, 4), row);
    }
  }
  return {row->kind, {}, row};
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

std::span<const special_range> special_ranges() noexcept { return k_ranges; }

classification classify(const ip_address& a) {
  if (!a.v6) return classify_v4(a);
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
  if (c.embedded && classify(*c.embedded).kind != address_kind::global) {
    return fmt::format("{} is {} (it embeds {})", addr.to_string(), describe(c.kind), c.embedded->to_string());
  }
  // "a reserved address" alone does not say why: name the registry entry.
  if (c.kind == address_kind::reserved && c.range) {
    return fmt::format("{} is {} ({}: {})", addr.to_string(), describe(c.kind), c.range->block, c.range->name);
  }
  return fmt::format("{} is {}", addr.to_string(), describe(c.kind));
}

result<cidr_set> cidr_set::parse(std::string_view list) {
  cidr_set out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    std::string_view item = list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) {
      auto block = cidr::parse(item);
      if (!block) return make_error(errc::invalid_argument, fmt::format("'{}': {}", item, block.err().message));
      out.blocks_.push_back(*block);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

bool cidr_set::contains(std::string_view ip) const {
  auto a = ip_address::parse(ip);
  if (!a) return false;
  const auto plain = a->unmapped();
  for (const auto& b : blocks_)
    if (b.contains(plain)) return true;
  return false;
}

}  // namespace zapd::outbound
