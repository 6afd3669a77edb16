// SPDX-License-Identifier: MIT
// Helpers for the core suite: deterministic randomness and a fixed epoch.
#pragma once

#include <parley/parley.hpp>

#include <memory>
#include <random>

namespace parley::testing {

inline random_source seeded_random(std::uint64_t seed) {
  auto gen = std::make_shared<std::mt19937_64>(seed);
  return [gen](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>((*gen)());
  };
}

// 2026-11-22T00:00:00.000Z
inline constexpr time_point epoch = from_unix_ms(1795305600000);

}  // namespace parley::testing
