// SPDX-License-Identifier: MIT
// Helpers for the core suite: deterministic randomness, simulated time, and the templates built on them.
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

// The core under test runs on simulated clocks and its own in-memory store: types
// that production code cannot be handed by mistake.
using test_hub = basic_hub<simulated_policy>;
using test_store = simulated_policy::room_store;
using test_moment = simulated_moment;

// 2026-11-22T00:00:00.000Z on the wall clock.
inline constexpr test_moment epoch = simulated_epoch;

}  // namespace parley::testing
