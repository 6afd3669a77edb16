// SPDX-License-Identifier: MIT
// Property tests: random sequences of room-control operations (with restarts), invariants checked after every step.
#include <parley/parley.hpp>

#include "room_access_simulation.hpp"

#include <doctest/doctest.h>

#include <random>
#include <vector>

TEST_CASE("random room-control sequences keep every access invariant") {
  std::mt19937_64 gen(20261129);
  std::uint64_t invited = 0, knocked = 0, banned = 0, directs = 0, restarts = 0;
  for (int run = 0; run < 1500; ++run) {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(gen() % 2400));
    for (auto& b : bytes) b = static_cast<std::uint8_t>(gen());
    parley::simulation::room_access_simulation sim(static_cast<std::uint64_t>(run));
    auto failure = sim.run(bytes.data(), bytes.size());
    CAPTURE(run);
    REQUIRE_MESSAGE(!failure, *failure);
    invited += sim.admitted_by_invite();
    knocked += sim.admitted_by_knock();
    banned += sim.bans();
    directs += sim.direct_messages();
    restarts += sim.restarts();
  }
  // The runs must reach the interesting states, or the properties above prove little.
  CHECK(invited > 50);
  CHECK(knocked > 50);
  CHECK(banned > 50);
  CHECK(directs > 100);
  CHECK(restarts > 50);
  MESSAGE("joined by invite ", invited, ", by knock ", knocked, ", bans ", banned, ", direct messages ", directs,
          ", restarts ", restarts);
}
