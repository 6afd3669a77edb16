// SPDX-License-Identifier: MIT
// Must not compile: a server over a hub that stores bare JSON would write JSON onto the socket.
#include <parley/parley.hpp>

struct json_server_policy : parley::simulated_policy {};  // frame_encoding = json_frames

int main() {
  parley::simulated_policy::room_store store;
  auto hub = parley::basic_hub<json_server_policy>::open(store, [](unsigned char*, std::size_t) {});
  parley::basic_server<json_server_policy> server(*hub);
  (void)server;
}
