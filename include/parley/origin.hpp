// SPDX-License-Identifier: MIT
// Web origins and Host headers: which pages may open a WebSocket to us, and which names a loopback server answers to.
//
// A browser's WebSocket is not bound by the same-origin policy: any page the user
// visits may open ws://127.0.0.1:7539. The browser does say who is asking, in the
// Origin header, and the server refuses an origin it does not allow. DNS rebinding
// (a page whose own name comes to resolve to 127.0.0.1) makes the page's origin look
// like the server's own; a loopback server therefore also refuses any Host that is
// not a loopback name or address. Comparisons are exact on scheme, host and port.
#pragma once

#include "authority.hpp"
#include "error.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

// scheme://host[:port], lowercased, with the scheme's default port made explicit, so
// that equal origins compare equal as strings.
struct web_origin {
  std::string scheme;  // "http" or "https"
  std::string host;    // a name, an IPv4 address, or an IPv6 address in brackets
  std::string port;    // digits; "80" or "443" when the origin leaves it out

  [[nodiscard]] std::string serialized() const { return scheme + "://" + host + ":" + port; }
  friend bool operator==(const web_origin& a, const web_origin& b) {
    return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
  }
};

namespace detail {
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

inline bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

}  // namespace detail

// An Origin header's value or an --allow-origin argument. "null" (sandboxed frames,
// file: pages) and anything with a path, query or userinfo is refused.
[[nodiscard]] inline result<web_origin> parse_web_origin(std::string_view text) {
  auto refuse = [&](const std::string& why) {
    return make_error(error_code::invalid_argument,
                      "origin " + std::string(text) + " " + why + "; write it as http(s)://host[:port]");
  };
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return refuse("has no scheme");
  web_origin out;
  out.scheme = detail::ascii_lower(text.substr(0, sep));
  if (out.scheme != "http" && out.scheme != "https") return refuse("is not http or https");
  const std::string_view rest = text.substr(sep + 3);
  if (rest.find_first_of("/?#@") != std::string_view::npos) return refuse("has more than a scheme, host and port");
  auto parsed = parse_authority(rest);
  if (!parsed) return refuse("has a malformed host or port (" + parsed.error().message + ")");
  out.host = detail::ascii_lower(parsed->host_with_brackets());
  out.port = std::to_string(parsed->port.value_or(out.scheme == "https" ? 443 : 80));
  return out;
}

// Whether a Host header names this machine's loopback: localhost, any 127.0.0.0/8
// address, or [::1], with or without a port.
[[nodiscard]] inline bool is_loopback_host(std::string_view host_header) {
  auto parsed = parse_authority(host_header);
  if (!parsed) return false;
  const std::string h = detail::ascii_lower(parsed->host_with_brackets());
  if (h == "localhost" || h == "[::1]") return true;
  if (h.rfind("127.", 0) != 0) return false;
  int parts = 0;
  std::size_t start = 0;
  while (start <= h.size()) {
    const std::size_t dot = std::min(h.find('.', start), h.size());
    const std::string_view part = std::string_view(h).substr(start, dot - start);
    if (!detail::all_digits(part) || part.size() > 3 || std::stoul(std::string(part)) > 255) return false;
    ++parts;
    start = dot + 1;
  }
  return parts == 4;
}

// The origin of the page a server serves to a request that arrived with this Host.
[[nodiscard]] inline std::optional<web_origin> own_origin(std::string_view host_header, bool tls) {
  auto origin = parse_web_origin(std::string(tls ? "https://" : "http://") + std::string(host_header));
  if (!origin) return std::nullopt;
  return *origin;
}

}  // namespace parley
