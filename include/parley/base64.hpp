// SPDX-License-Identifier: MIT
// Base64 (RFC 4648 §4, padded) for the WebSocket handshake, and unpadded base64url (§5) for tokens in URLs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

namespace detail {

inline constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
inline constexpr std::string_view base64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

inline std::string base64_encode_with(std::string_view data, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t i = 0;
  for (; data.size() - i >= 3; i += 3) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest == 0) return out;
  std::uint32_t v = std::uint32_t{p[i]} << 16;
  if (rest == 2) v |= std::uint32_t{p[i + 1]} << 8;
  out += alphabet[(v >> 18) & 63];
  out += alphabet[(v >> 12) & 63];
  if (rest == 2) out += alphabet[(v >> 6) & 63];
  if (pad) out.append(rest == 1 ? 2 : 1, '=');
  return out;
}

[[nodiscard]] constexpr int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace detail

[[nodiscard]] inline std::string base64_encode(std::string_view data) {
  return detail::base64_encode_with(data, detail::base64_alphabet, true);
}

[[nodiscard]] inline std::string base64url_encode(std::string_view data) {
  return detail::base64_encode_with(data, detail::base64url_alphabet, false);
}

// Strict: padded to a multiple of four, no whitespace, and the unused low bits of the
// last symbol must be zero, so every byte string has exactly one accepted encoding and
// a handshake key cannot be smuggled past a check in a second spelling.
[[nodiscard]] inline std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;

  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const std::size_t symbols = last ? 4 - padding : 4;
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      int d = 0;
      if (j < symbols) {
        d = detail::base64_value(text[i + j]);
        if (d < 0) return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out += static_cast<char>(v >> 16);
    if (symbols >= 3) out += static_cast<char>((v >> 8) & 0xFF);
    if (symbols == 4) out += static_cast<char>(v & 0xFF);
    if (symbols == 2 && (v & 0xFFFF) != 0) return std::nullopt;
    if (symbols == 3 && (v & 0xFF) != 0) return std::nullopt;
  }
  return out;
}

}  // namespace parley
