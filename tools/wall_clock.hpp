// SPDX-License-Identifier: MIT
// The one place the tools read the wall clock; the core is always handed `now`.
#pragma once

#include <parley/clock.hpp>

#include <chrono>

namespace parley_tools {

[[nodiscard]] inline parley::time_point wall_clock_now() {
  return std::chrono::time_point_cast<parley::milliseconds>(std::chrono::system_clock::now());
}

}  // namespace parley_tools
