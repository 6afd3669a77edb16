// SPDX-License-Identifier: MIT
// host[:port]: the one parser behind server URLs, Origin headers and Host headers.
#pragma once

#include "error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

// An authority without userinfo (RFC 3986 3.2), as a URL, an Origin or a Host header
// writes it.
struct authority {
  std::string host;                   // a name or an IPv4 address as written; an IPv6 address without its brackets
  bool bracketed = false;             // the host is an IPv6 address, written in brackets
  std::optional<std::uint16_t> port;  // when written; 0 is refused

  [[nodiscard]] std::string host_with_brackets() const { return bracketed ? "[" + host + "]" : host; }
};

namespace detail {

[[nodiscard]] constexpr bool is_host_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

[[nodiscard]] constexpr bool is_ipv6_char(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

}  // namespace detail

// Refused, each with a sentence and `details.part` ("host" or "port") saying what to fix:
// an empty host, characters a host name cannot have, an IPv6 address without brackets or
// with an unclosed one, anything but ":port" after the brackets, and a port that is
// empty, not a number, 0 or above 65535. `field` names the argument in `details.field`.
[[nodiscard]] inline result<authority> parse_authority(std::string_view text, std::string_view field = "authority") {
  auto refuse = [&](std::string_view part, std::string sentence) {
    return make_error(error_code::invalid_argument, std::move(sentence),
                      {{"field", std::string(field)}, {"part", std::string(part)}});
  };
  authority out;
  std::string_view port;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return refuse("host", "the IPv6 address has no closing ']'");
    const std::string_view address = text.substr(1, close - 1);
    if (address.empty()) return refuse("host", "the brackets hold no IPv6 address");
    for (char c : address)
      if (!detail::is_ipv6_char(c)) return refuse("host", "the brackets must hold an IPv6 address: hex digits, ':' and '.'");
    if (address.find(':') == std::string_view::npos)
      return refuse("host", "the brackets must hold an IPv6 address, which has at least one ':'");
    out.host = std::string(address);
    out.bracketed = true;
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return refuse("host", "only ':port' may follow the IPv6 address's ']'");
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos)
      return refuse("host", "an IPv6 address must be in brackets, as in [::1]:7539");
    const std::string_view name = text.substr(0, colon);
    if (name.empty()) return refuse("host", "there is no host");
    for (char c : name)
      if (!detail::is_host_name_char(c)) return refuse("host", "the host may hold letters, digits, '-', '.' and '_' only");
    out.host = std::string(name);
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      has_port = true;
    }
  }
  if (!has_port) return out;
  if (port.empty()) return refuse("port", "the port after ':' is empty");
  std::uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return refuse("port", "the port must be a number from 1 to 65535");
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > 65535) return refuse("port", "the port must be a number from 1 to 65535");
  }
  if (value == 0) return refuse("port", "the port must be a number from 1 to 65535");
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

}  // namespace parley
