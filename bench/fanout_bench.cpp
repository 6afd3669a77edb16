// SPDX-License-Identifier: MIT
// Core-only fan-out: one room of M members in a hub storing WebSocket frames (server_policy), N sends, every outbox drained; prints deliveries per second.
//
// Usage: fanout_bench [members=100] [messages=20000] [body_bytes=200]
// No sockets and no JSON parsing on the receiving side: this is the ceiling the hub
// itself puts on fan-out (validate, assign a seq, encode the frame once, share it into
// M-1 outboxes and replay rings), which the end-to-end bench can be compared with.
#include <parley/hub.hpp>
#include <parley/server.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const std::size_t members = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  const std::size_t messages = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20000;
  const std::size_t body_bytes = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 200;
  if (members < 2 || messages == 0 || body_bytes == 0 || body_bytes > parley::default_max_body_bytes) {
    std::fprintf(stderr, "usage: fanout_bench [members>=2] [messages>=1] [body_bytes 1..8192]\n");
    return 2;
  }

  std::mt19937_64 engine(42);
  parley::random_source random = [&engine](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(engine());
  };
  parley::hub_config config;
  config.rate = {static_cast<std::uint32_t>(messages + 1), 1};  // the bench measures fan-out, not the rate limit
  parley::memory_room_store store;
  using server_hub = parley::basic_hub<parley::server_policy>;
  auto opened = server_hub::open(store, random, config);
  if (!opened) return 1;
  server_hub& hub = *opened;

  const parley::moment now{parley::steady_time(parley::milliseconds(1'000'000)), parley::from_unix_ms(1'800'000'000'000)};
  std::vector<parley::session_handle> sessions;
  for (std::size_t i = 0; i < members; ++i) {
    sessions.push_back(hub.open_session(now).handle);
    if (!hub.join_room(sessions.back(), {"bench", "m" + std::to_string(i)}, now)) return 1;
  }

  const std::string body(body_bytes, 'x');
  std::uint64_t deliveries = 0;
  std::uint64_t bytes = 0;
  const auto started = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < messages; ++i) {
    auto sent = hub.send_message(sessions[0], {"bench", body, std::nullopt}, now);
    if (!sent) {
      std::fprintf(stderr, "send %zu failed: %s\n", i, sent.error().message.c_str());
      return 1;
    }
    for (parley::session_handle s : hub.take_ready()) {
      for (const auto& frame : hub.drain(s)) {
        ++deliveries;
        bytes += frame->size();
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const std::uint64_t expected = static_cast<std::uint64_t>(messages) * (members - 1);
  if (deliveries != expected) {
    std::fprintf(stderr, "expected %llu deliveries, drained %llu\n", static_cast<unsigned long long>(expected),
                 static_cast<unsigned long long>(deliveries));
    return 1;
  }
  std::printf("fanout_bench: %zu members, %zu messages of %zu bytes: %llu deliveries in %.3f s = %.0f deliveries/s, "
              "%.0f messages/s, %.1f MB/s of frames for the transport to write\n",
              members, messages, body_bytes, static_cast<unsigned long long>(deliveries), seconds, deliveries / seconds,
              messages / seconds, bytes / seconds / 1e6);
  return 0;
}
