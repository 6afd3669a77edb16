// SPDX-License-Identifier: MIT
// Must not compile: a simulated moment handed to a hub on the real clocks.
#include <parley/parley.hpp>

int main() {
  parley::memory_room_store store;
  auto hub = parley::hub::open(store, [](unsigned char*, std::size_t) {});
  (void)hub->open_session(parley::simulated_epoch);
}
