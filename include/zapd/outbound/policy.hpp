#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
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
  private_network,  // 10/8, 172.16/12, 192.168/16, 64:ff9b:1::/48, fec0::/10 (deprecated site-local)
  link_local,       // 169.254/16 (cloud metadata at 169.254.169.254), fe80::/10
  unique_local,     // fc00::/7
  unspecified,      // 0/8, :: (0.0.0.0 connects to this host)
  shared,           // 100.64/10, carrier-grade NAT
  multicast,        // 224/4, ff00::/8
  reserved,         // every other special-purpose block: documentation, benchmarking, 240/4, 2001::/23, ...
};

/// "a loopback address", "a private address", ...
std::string_view describe(address_kind k) noexcept;

/// How an IPv6 form carries an IPv4 address; such a form leads where that address leads.
enum class embedding {
  none,
  low32,        // in the last 32 bits (IPv4-mapped, -compatible, -translated, NAT64 64:ff9b::/96)
  six_to_four,  // in bits 16-47 (2002::/16)
  teredo,       // server in bits 32-63, client inverted in the last 32 (2001::/32)
};

/// One row of the default deny list: a special-purpose block as the IANA registries name it
/// (iana-ipv4-special-registry, iana-ipv6-special-registry), plus multicast and a few
/// deprecated IPv6 forms the registries no longer list. `kind` is what an address in the
/// block is; for a row that embeds IPv4, what it is when the embedded address is public
/// (an embedded address that is not public decides instead).
struct special_range {
  std::string_view block;  // "192.0.2.0/24"
  std::string_view name;   // "Documentation (TEST-NET-1)"
  address_kind kind = address_kind::reserved;
  embedding embeds = embedding::none;
};

/// Every row, IPv4 then IPv6. An address takes the row of the longest block that holds it.
std::span<const special_range> special_ranges() noexcept;

/// The kind of an address, the registry row that decided it (none for a public address) and,
/// for IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, IPv4-translated,
/// NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32), the embedded address. When that
/// address is not public, it decides: `kind` and `range` are its own.
struct classification {
  address_kind kind = address_kind::global;
  std::optional<ip_address> embedded;
  const special_range* range = nullptr;
};

/// Pure: no DNS, no I/O. The one place that knows the special-purpose ranges (the table
/// `special_ranges()` returns).
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

/// A list of address blocks from config, e.g. `server.trusted_proxies` (the reverse proxies
/// whose X-Forwarded-For names the client). A value; const members are thread-safe.
class cidr_set {
 public:
  /// Comma-separated CIDR blocks or bare addresses; blanks and empty entries are ignored.
  /// Error (invalid_argument) names the entry and what is wrong with it.
  static result<cidr_set> parse(std::string_view list);
  /// True when `ip` (textual; an IPv4-mapped IPv6 address counts as its IPv4 address) is in
  /// one of the blocks. False for text that is not an address.
  bool contains(std::string_view ip) const;
  bool empty() const noexcept { return blocks_.empty(); }

 private:
  std::vector<cidr> blocks_;
};

/// The SSRF guard: which connect addresses outbound HTTP may use.
///
/// Refuses every address that `classify` does not call `global` (the IANA special-purpose
/// registries, multicast, and IPv6 forms embedding such addresses), except those inside an
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
