// SPDX-License-Identifier: MIT
// Clocks that only move when a test says so: distinct types from production's, for tests, fuzzers and simulations.
#pragma once

#include "clock.hpp"

#include <chrono>

namespace parley {

// Neither clock has now(): time is whatever the driver of the simulation sets.
struct simulated_monotonic_clock {
  using rep = std::int64_t;
  using period = std::milli;
  using duration = milliseconds;
  using time_point = std::chrono::time_point<simulated_monotonic_clock, milliseconds>;
  static constexpr bool is_steady = true;
};

struct simulated_wall_clock {
  using rep = std::int64_t;
  using period = std::milli;
  using duration = milliseconds;
  using time_point = std::chrono::time_point<simulated_wall_clock, milliseconds>;
  static constexpr bool is_steady = false;
};

using simulated_moment = basic_moment<simulated_monotonic_clock, simulated_wall_clock>;

// 2026-11-22T00:00:00.000Z on the wall clock; the monotonic clock starts elsewhere, as
// a real one does, so a test cannot confuse the two.
inline constexpr simulated_moment simulated_epoch{simulated_moment::monotonic_time(milliseconds(1'000'000)),
                                                  simulated_moment::wall_time(milliseconds(1'795'305'600'000))};

}  // namespace parley
