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

// Both clocks of a simulation. advance() is time passing; step_wall() is NTP or a
// suspend moving the wall clock alone, which no deadline may notice.
class simulated_time {
 public:
  explicit simulated_time(std::int64_t wall_unix_ms = 1'795'305'600'000, std::int64_t monotonic_ms = 1'000'000)
      : now_{simulated_moment::monotonic_time(milliseconds(monotonic_ms)),
             simulated_moment::wall_time(milliseconds(wall_unix_ms))} {}

  [[nodiscard]] const simulated_moment& now() const noexcept { return now_; }
  const simulated_moment& advance(milliseconds by) noexcept {
    now_.monotonic += by;
    now_.wall += by;
    return now_;
  }
  const simulated_moment& step_wall(milliseconds by) noexcept {
    now_.wall += by;
    return now_;
  }

 private:
  simulated_moment now_;
};

}  // namespace parley
