// SPDX-License-Identifier: MIT
// UUIDs built from injected time and randomness: v7 for message ids (time-ordered), v4 for session ids.
#pragma once

#include "base64.hpp"
#include "clock.hpp"
#include "random_source.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace parley {

namespace detail {
inline std::string format_uuid(const std::array<unsigned char, 16>& b) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 0xF]);
  }
  return s;
}
}  // namespace detail

// RFC 9562 UUIDv7: 48-bit Unix milliseconds, then 74 random bits.
template <class WallTime, class Random>
[[nodiscard]] std::string uuid_v7(WallTime now, Random&& random) {
  std::array<unsigned char, 16> b{};
  random(b.data() + 6, 10);
  const auto ms = static_cast<std::uint64_t>(to_unix_ms(now));
  for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0F));
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3F));
  return detail::format_uuid(b);
}

// RFC 9562 UUIDv4: 122 random bits.
template <class Random>
[[nodiscard]] std::string uuid_v4(Random&& random) {
  std::array<unsigned char, 16> b{};
  random(b.data(), b.size());
  b[6] = static_cast<unsigned char>(0x40 | (b[6] & 0x0F));
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3F));
  return detail::format_uuid(b);
}

// A secret of `bytes` random bytes in base64url without padding (32 bytes → 43 characters).
template <class Random>
[[nodiscard]] std::string random_token(Random&& random, std::size_t bytes = 32) {
  std::string raw(bytes, '\0');
  random(reinterpret_cast<unsigned char*>(raw.data()), raw.size());
  return base64url_encode(raw);
}

}  // namespace parley
