// SPDX-License-Identifier: MIT
// Policies: the one struct naming the types a hub, server or client is built from, as basic_json's parameters do.
//
// A policy names
//   monotonic_clock  the clock every deadline runs on;
//   wall_clock       the clock of sentAt and UUIDv7 (its epoch is the Unix epoch);
//   random           a callable void(unsigned char* out, std::size_t n), a CSPRNG in production;
//   room_store       where rooms and seq blocks persist (see room_store.hpp);
//   frame_encoding   how a hub stores a room.message frame: json_frames or websocket_frames;
//   server_hooks     tokens, revocations and logging for a server (see server_hooks.hpp).
// A test policy names simulated clocks and an in-memory store of its own clock, so
// production and test wiring are different types and cannot be mixed by accident.
#pragma once

#include "clock.hpp"
#include "random_source.hpp"
#include "room_store.hpp"
#include "server_hooks.hpp"
#include "simulated_clock.hpp"
#include "websocket.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace parley {

// A hub that others read through drain(): each room.message is its JSON text.
struct json_frames {
  [[nodiscard]] static std::string encode(std::string json_text) { return json_text; }
};

// A hub behind a WebSocket server: each room.message is stored as its unmasked text
// frame, built once and shared by every recipient's queue and replay ring.
struct websocket_frames {
  [[nodiscard]] static std::string encode(std::string_view json_text) { return encode_server_text_frame(json_text); }
};

struct default_policy {
  using monotonic_clock = std::chrono::steady_clock;
  using wall_clock = std::chrono::system_clock;
  using random = random_source;
  using room_store = memory_room_store;
  using frame_encoding = json_frames;
  using server_hooks = open_server_hooks;
};

// What parley::server is built from: the default policy with WebSocket frames.
struct server_policy : default_policy {
  using frame_encoding = websocket_frames;
};

// Tests, fuzzers and simulations: clocks that move only when told, and an in-memory
// store on the simulated wall clock. Randomness stays a caller-seeded callable.
struct simulated_policy {
  using monotonic_clock = simulated_monotonic_clock;
  using wall_clock = simulated_wall_clock;
  using random = random_source;
  using room_store = basic_memory_room_store<simulated_wall_clock>;
  using frame_encoding = json_frames;
  using server_hooks = open_server_hooks;
};

struct simulated_server_policy : simulated_policy {
  using frame_encoding = websocket_frames;
};

// The moment type of a policy's two clocks.
template <class Policy>
using moment_of = basic_moment<typename Policy::monotonic_clock, typename Policy::wall_clock>;

}  // namespace parley
