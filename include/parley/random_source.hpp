// SPDX-License-Identifier: MIT
// Randomness enters the core only from the caller, so tests and fuzzers are deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace parley {

// Any callable `void(unsigned char* out, std::size_t n)` that fills `n` bytes at `out` is a
// source of randomness; a policy names its type. Production passes a CSPRNG (the tools
// use OpenSSL's RAND_bytes): reconnect tokens, invite codes and WebSocket masks are
// drawn from it. This type-erased one is for callers who choose at run time.
using random_source = std::function<void(unsigned char* out, std::size_t n)>;

template <class Random>
[[nodiscard]] std::uint64_t random_u64(Random&& random) {
  unsigned char b[8];
  random(b, sizeof b);
  std::uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

// A uniform draw from [0, bound) without modulo bias; bound must be > 0.
template <class Random>
[[nodiscard]] std::uint64_t random_below(Random&& random, std::uint64_t bound) {
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    const std::uint64_t v = random_u64(random);
    if (v < limit) return v % bound;
  }
}

}  // namespace parley
