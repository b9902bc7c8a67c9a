#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zapd/core/result.hpp"

struct sockaddr;

namespace zapd::outbound {

/// An IPv4 or IPv6 address, network byte order (an IPv4 address uses the first 4 bytes).
struct ip_address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};

  /// "10.0.0.1", "::1", "[::1]"; nothing else (no ports, no zone ids, no short IPv4 forms).
  static std::optional<ip_address> parse(std::string_view text);
  /// From a connect(2) address (AF_INET or AF_INET6); nothing for other families.
  static std::optional<ip_address> from_sockaddr(const sockaddr* sa, std::size_t len);
  static ip_address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);

  /// The IPv4 address behind an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else itself:
  /// both reach the same host, so the allow list treats them alike.
  ip_address unmapped() const;
  std::string to_string() const;
  bool operator==(const ip_address&) const = default;
};

/// Where an address leads. Everything but `global` is refused unless allowed.
enum class address_kind {
  global,           // the public Internet
  loopback,         // 127/8, ::1
  private_network,  // 10/8, 172.16/12, 192.168/16, fec0::/10 (deprecated site-local)
  link_local,       // 169.254/16 (cloud metadata at 169.254.169.254), fe80::/10
  unique_local,     // fc00::/7
  unspecified,      // 0/8, :: (0.0.0.0 connects to this host)
  shared,           // 100.64/10, carrier-grade NAT
  multicast,        // 224/4, ff00::/8
  reserved,         // 192.0.0/24, 198.18/15, 240/4 (255.255.255.255 too), 100::/64, ::/96
};

/// "a loopback address", "a private address", ...
std::string_view describe(address_kind k) noexcept;

/// The kind of an address and, for IPv6 forms that carry an IPv4 address (IPv4-mapped,
/// IPv4-compatible, IPv4-translated, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16,
/// Teredo 2001::/32), the embedded address that decided it.
struct classification {
  address_kind kind = address_kind::global;
  std::optional<ip_address> embedded;
};

/// Pure: no DNS, no I/O. The one place that knows the special-purpose ranges.
classification classify(const ip_address& a);

/// An address block, e.g. 10.0.0.0/8 or fd00::/8. Host bits must be zero.
struct cidr {
  ip_address network;
  int prefix = 0;

  /// "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128). IPv4-mapped IPv6 blocks
  /// (::ffff:10.0.0.0/104) are stored as their IPv4 block.
  static result<cidr> parse(std::string_view text);
  bool contains(const ip_address& a) const;
  std::string to_string() const;
};

/// The SSRF guard: which connect addresses outbound HTTP may use.
///
/// Refuses every address that `classify` does not call `global`, except those inside an
/// allowed block or reached through an allowed host name. A host name in the allow list lets
/// through every address that name resolves to, for requests to that name only (a redirect
/// to another name is checked again). It is checked on the address each connection actually
/// goes to (http_client does it in CURLOPT_OPENSOCKETFUNCTION), so DNS rebinding and
/// redirects cannot slip past it.
///
/// Lifecycle: a value; build it once from config (`actions.http.allow`). Threading: const
/// member functions are safe from any number of threads.
class policy {
 public:
  /// Allows only global addresses.
  policy() = default;

  /// Parses the `actions.http.allow` value: comma-separated CIDR blocks, addresses and host
  /// names, e.g. "127.0.0.1/32,::1,internal.example.com". Blanks around entries and empty
  /// entries are ignored. Error (invalid_argument) names the entry and what is wrong with it.
  static result<policy> parse(std::string_view allow);

  /// Nothing if a connection to `addr` made for a request to `host` (the URL's host, as
  /// written; may be empty) may proceed; otherwise why not, e.g. "127.0.0.1 is a loopback
  /// address".
  std::optional<std::string> refusal(const ip_address& addr, std::string_view host) const;

  /// True if `host` is in the allow list by name (case-insensitive, a trailing dot and IPv6
  /// brackets ignored).
  bool allows_host(std::string_view host) const;
  bool has_hosts() const noexcept { return !hosts_.empty(); }
  const std::vector<cidr>& networks() const noexcept { return networks_; }
  const std::vector<std::string>& hosts() const noexcept { return hosts_; }

 private:
  std::vector<cidr> networks_;
  std::vector<std::string> hosts_;  // lower case, no trailing dot
};

/// The config key operators use to allow an address; quoted in every refusal message.
inline constexpr std::string_view allow_key = "actions.http.allow";

}  // namespace zapd::outbound
