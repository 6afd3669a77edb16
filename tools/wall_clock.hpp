// SPDX-License-Identifier: MIT
// The one place the tools read the clocks; the core is always handed `now`.
#pragma once

#include <parley/clock.hpp>

#include <chrono>

namespace parley_tools {

[[nodiscard]] inline parley::time_point wall_clock_now() {
  return std::chrono::time_point_cast<parley::milliseconds>(std::chrono::system_clock::now());
}

// For deadlines: never steps with NTP or a suspend.
[[nodiscard]] inline parley::steady_time steady_clock_now() {
  return std::chrono::time_point_cast<parley::milliseconds>(std::chrono::steady_clock::now());
}

}  // namespace parley_tools
