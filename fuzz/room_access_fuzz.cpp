// SPDX-License-Identifier: MIT
// Invariant: for any byte string, sessions creating, inviting, knocking, approving, kicking, banning, setting roles,
// sending direct messages and restarting the hub never leave a room with members and no owner or a private room
// nobody can admit anyone to, never let a banned or unadmitted principal in, never list a private room to one not
// admitted, never leave an ended session's role behind, and never deliver a direct message to anyone but its recipient.
#include "room_access_simulation.hpp"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  parley::simulation::room_access_simulation sim(size);
  if (auto failure = sim.run(data, size)) {
    std::fprintf(stderr, "room access invariant violated: %s\n", failure->c_str());
    std::abort();
  }
  return 0;
}
