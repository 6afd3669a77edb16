// SPDX-License-Identifier: MIT
// Invariant: for any byte string, driving the hub through the operations it decodes keeps nicknames unique per
// room, membership consistent both ways, seqs strictly increasing per room, replay rings within capacity, never
// echoes a message to its sender, and delivers each message to each member exactly once unless that member was
// detached past its ring (which its resume must then report).
#include "hub_simulation.hpp"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  parley::simulation::hub_simulation sim(size);
  if (auto failure = sim.run(data, size)) {
    std::fprintf(stderr, "hub invariant violated: %s\n", failure->c_str());
    std::abort();
  }
  return 0;
}
