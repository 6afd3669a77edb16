// SPDX-License-Identifier: MIT
// SHA-1 (FIPS 180-4), here only because RFC 6455's Sec-WebSocket-Accept is defined with it; never use it for security.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace parley {

namespace detail {

[[nodiscard]] constexpr std::uint32_t sha1_rotl(std::uint32_t v, int n) noexcept {
  return (v << n) | (v >> (32 - n));
}

inline void sha1_block(std::array<std::uint32_t, 5>& h, const unsigned char* block) noexcept {
  std::uint32_t w[80];
  for (int i = 0; i < 16; ++i) {
    w[i] = (std::uint32_t{block[4 * i]} << 24) | (std::uint32_t{block[4 * i + 1]} << 16) |
           (std::uint32_t{block[4 * i + 2]} << 8) | std::uint32_t{block[4 * i + 3]};
  }
  for (int i = 16; i < 80; ++i) w[i] = sha1_rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; ++i) {
    std::uint32_t f = 0;
    std::uint32_t k = 0;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDC;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6;
    }
    const std::uint32_t t = sha1_rotl(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = sha1_rotl(b, 30);
    b = a;
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

}  // namespace detail

[[nodiscard]] inline std::array<unsigned char, 20> sha1(std::string_view data) noexcept {
  std::array<std::uint32_t, 5> h{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();

  std::size_t done = 0;
  for (; n - done >= 64; done += 64) detail::sha1_block(h, bytes + done);

  // The tail, the 0x80 terminator and the 64-bit bit length fill one or two final blocks.
  unsigned char tail[128] = {};
  const std::size_t rest = n - done;
  for (std::size_t i = 0; i < rest; ++i) tail[i] = bytes[done + i];
  tail[rest] = 0x80;
  const std::size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  const std::uint64_t bits = static_cast<std::uint64_t>(n) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  detail::sha1_block(h, tail);
  if (tail_len == 128) detail::sha1_block(h, tail + 64);

  std::array<unsigned char, 20> digest{};
  for (int i = 0; i < 5; ++i) {
    digest[4 * i] = static_cast<unsigned char>(h[i] >> 24);
    digest[4 * i + 1] = static_cast<unsigned char>(h[i] >> 16);
    digest[4 * i + 2] = static_cast<unsigned char>(h[i] >> 8);
    digest[4 * i + 3] = static_cast<unsigned char>(h[i]);
  }
  return digest;
}

}  // namespace parley
