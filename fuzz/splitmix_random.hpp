// SPDX-License-Identifier: MIT
// The simulations' randomness: splitmix64 from a seed, deterministic and cheap, so a failing input replays exactly.
#pragma once

#include <parley/parley.hpp>

#include <cstdint>
#include <memory>

namespace parley::simulation {

inline random_source splitmix_random(std::uint64_t seed) {
  auto state = std::make_shared<std::uint64_t>(seed);
  return [state](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      out[i] = static_cast<unsigned char>(z ^ (z >> 31));
    }
  };
}

}  // namespace parley::simulation
