// Randomness enters the core only through this type, so tests and fuzzers are deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace parley {

// Fills `n` bytes at `out`. Production passes a CSPRNG (the tools use OpenSSL's
// RAND_bytes): reconnect tokens and WebSocket masks are drawn from it.
using random_source = std::function<void(unsigned char* out, std::size_t n)>;

[[nodiscard]] inline std::uint64_t random_u64(const random_source& random) {
  unsigned char b[8];
  random(b, sizeof b);
  std::uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

// A uniform draw from [0, bound) without modulo bias; bound must be > 0.
[[nodiscard]] inline std::uint64_t random_below(const random_source& random, std::uint64_t bound) {
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    const std::uint64_t v = random_u64(random);
    if (v < limit) return v % bound;
  }
}

}  // namespace parley
