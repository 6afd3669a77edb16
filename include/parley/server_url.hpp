// SPDX-License-Identifier: MIT
// Where a client connects: a ws:// or wss:// URL taken apart into what the dialer and the upgrade request need.
#pragma once

#include "authority.hpp"
#include "error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace parley {

struct server_url {
  bool tls = false;         // wss://
  std::string host;         // what to resolve and, for TLS, verify: a name or an address, IPv6 without brackets
  std::uint16_t port = 0;   // as written, else 80 for ws:// and 443 for wss://
  std::string path = "/";   // the request target: the path and any ?query
  std::string host_header;  // the authority as written, for the Host header: IPv6 in brackets, the port only if given
};

namespace detail {

inline tl::unexpected<error> url_error(std::string_view part, std::string sentence) {
  return make_error(error_code::invalid_argument, std::move(sentence), {{"field", "url"}, {"part", part}});
}

[[nodiscard]] inline bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) noexcept {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace detail

// ws://host[:port][/path][?query] or wss://..., with IPv6 hosts in brackets (ws://[::1]:7539).
// Refused, each with a sentence saying what to fix: another scheme, spaces or control
// characters (they would end up in the request line or the Host header), a #fragment
// (RFC 6455 forbids one), user:password@ (the token has its own channel), an empty or
// malformed host, an IPv6 address without brackets or with an unclosed one, and a port
// that is empty, not a number, 0 or above 65535.
[[nodiscard]] inline result<server_url> parse_server_url(std::string_view url) {
  server_url out;
  if (detail::starts_with_ignoring_case(url, "ws://")) {
    url.remove_prefix(5);
  } else if (detail::starts_with_ignoring_case(url, "wss://")) {
    out.tls = true;
    url.remove_prefix(6);
  } else {
    return detail::url_error("scheme", "the server URL must start with ws:// or wss://");
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return detail::url_error("characters", "the server URL contains a space or a control character");
  }
  if (url.find('#') != std::string_view::npos)
    return detail::url_error("fragment", "a WebSocket URL cannot have a #fragment");

  const auto authority_end = url.find_first_of("/?");
  const std::string_view authority_text = url.substr(0, authority_end);
  if (authority_end != std::string_view::npos) {
    const std::string_view target = url.substr(authority_end);
    out.path = target.front() == '?' ? "/" : "";
    out.path.append(target);
  }
  if (authority_text.find('@') != std::string_view::npos)
    return detail::url_error("userinfo",
                             "the server URL cannot carry credentials; pass the token in PARLEY_TOKEN or --token-file");
  if (authority_text.empty()) return detail::url_error("host", "the server URL has no host");
  out.host_header = std::string(authority_text);

  auto parsed = parse_authority(authority_text, "url");
  if (!parsed) return tl::unexpected(std::move(parsed.error()));
  out.host = std::move(parsed->host);
  out.port = parsed->port.value_or(out.tls ? 443 : 80);
  return out;
}

}  // namespace parley
