// SPDX-License-Identifier: MIT
// The policy production code names: the real clocks and a type-erased source of randomness.
#pragma once

#include "clock.hpp"
#include "random_source.hpp"

#include <chrono>

namespace parley {

struct default_policy {
  using monotonic_clock = std::chrono::steady_clock;
  using wall_clock = std::chrono::system_clock;
  using random = random_source;
};

}  // namespace parley
