// SPDX-License-Identifier: MIT
// Property tests: thousands of random operation sequences through the hub, invariants checked after every step.
#include <parley/parley.hpp>

#include "hub_simulation.hpp"

#include <doctest/doctest.h>

#include <random>
#include <vector>

TEST_CASE("random operation sequences keep every hub invariant") {
  std::mt19937_64 gen(20261122);
  std::uint64_t sent = 0, received = 0, overflows = 0, expired = 0, refused = 0;
  for (int run = 0; run < 3000; ++run) {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(gen() % 3000));
    for (auto& b : bytes) b = static_cast<std::uint8_t>(gen());
    parley::simulation::hub_simulation sim(static_cast<std::uint64_t>(run));
    auto failure = sim.run(bytes.data(), bytes.size());
    CAPTURE(run);
    REQUIRE_MESSAGE(!failure, *failure);
    sent += sim.messages_sent();
    received += sim.messages_received();
    overflows += sim.overflows();
    expired += sim.the_hub().stats().rooms_expired_total;
    refused += sim.the_hub().stats().room_creations_refused_total;
  }
  // The runs must reach the interesting states, or the properties above prove little.
  CHECK(sent > 10000);
  CHECK(received > 10000);
  CHECK(overflows > 10);
  CHECK(expired > 10);
  CHECK(refused > 0);
  MESSAGE("messages sent ", sent, ", delivered ", received, ", resumes refused for overflow ", overflows,
          ", rooms expired ", expired, ", room creations refused ", refused);
}
