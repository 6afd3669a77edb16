// SPDX-License-Identifier: MIT
// The one program every consumer test builds: two sessions in a room, one message, delivered once.
#include <parley/parley.hpp>

#include <cstddef>
#include <cstdio>
#include <optional>
#include <random>
#include <string>

int main() {
  std::mt19937_64 gen(42);
  parley::random_source random = [&](unsigned char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(gen());
  };
  parley::memory_room_store store;
  auto hub = parley::hub::open(store, random);
  if (!hub) {
    std::fprintf(stderr, "hub::open failed: %s\n", hub.error().message.c_str());
    return 1;
  }
  const parley::moment now{parley::steady_time{}, parley::from_unix_ms(1'700'000'000'000)};
  auto alice = hub->open_session(now);
  auto bob = hub->open_session(now);
  if (!hub->join_room(alice.handle, {"lobby", std::string("alice")}, now) ||
      !hub->join_room(bob.handle, {"lobby", std::nullopt}, now)) {
    std::fprintf(stderr, "join_room failed\n");
    return 1;
  }
  auto sent = hub->send_message(bob.handle, {"lobby", "hello", std::nullopt}, now);
  if (!sent) {
    std::fprintf(stderr, "send_message failed: %s\n", sent.error().message.c_str());
    return 1;
  }
  const auto frames = hub->drain(alice.handle);
  if (frames.size() != 1 || frames[0]->find("hello") == std::string::npos) {
    std::fprintf(stderr, "expected one frame with \"hello\" for alice, got %zu\n", frames.size());
    return 1;
  }
  std::printf("parley %.*s: alice got message %llu: %s\n", static_cast<int>(parley::version_string.size()),
              parley::version_string.data(), static_cast<unsigned long long>(sent->seq), frames[0]->c_str());
  return 0;
}
