// SPDX-License-Identifier: MIT
// The one place the tools read the clocks; the core is always handed `now`.
#pragma once

#include <parley/clock.hpp>

#include <chrono>

namespace parley_tools {

[[nodiscard]] inline parley::wall_time wall_clock_now() {
  return std::chrono::time_point_cast<parley::milliseconds>(std::chrono::system_clock::now());
}

[[nodiscard]] inline parley::steady_time steady_clock_now() {
  return std::chrono::time_point_cast<parley::milliseconds>(std::chrono::steady_clock::now());
}

// Both clocks, read together once per event.
[[nodiscard]] inline parley::moment moment_now() { return {steady_clock_now(), wall_clock_now()}; }

}  // namespace parley_tools
