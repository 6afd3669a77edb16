// Smoke test of a packaged parley: a hub delivers one message between two sessions.
#include <parley/parley.hpp>

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>

int main() {
  unsigned char next = 0;
  parley::random_source random = [&](unsigned char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = next++;
  };
  parley::memory_room_store store;
  auto hub = parley::hub::open(store, random);
  if (!hub) return 1;
  const parley::moment now{parley::steady_time{}, parley::from_unix_ms(1'700'000'000'000)};
  auto a = hub->open_session(now);
  auto b = hub->open_session(now);
  if (!hub->join_room(a.handle, {"lobby", std::nullopt}, now) || !hub->join_room(b.handle, {"lobby", std::nullopt}, now))
    return 1;
  if (!hub->send_message(b.handle, {"lobby", "hello", std::nullopt}, now)) return 1;
  const auto frames = hub->drain(a.handle);
  if (frames.size() != 1) return 1;
  std::printf("parley %s: %s\n", std::string(parley::version_string).c_str(), frames[0]->c_str());
  return 0;
}
