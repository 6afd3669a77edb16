// SPDX-License-Identifier: MIT
// Fan-out through the core with a counting allocator: the hub alone, the whole basic_server from bytes to bytes, and idle sessions' memory.
//
// Usage:
//   fanout_bench [members=100] [messages=20000] [body_bytes=200]          the hub alone
//   fanout_bench server [members=100] [messages=20000] [body_bytes=200]   basic_server, bytes in and out
//   fanout_bench idle [sessions=2000]                                     bytes live per idle session
//
// hub: one room of M members in a hub storing WebSocket frames (server_policy), N sends,
// every outbox drained. No sockets and no JSON parsing on the receiving side: the ceiling
// the hub itself puts on fan-out (validate, assign a seq, encode the frame once, share it
// into M-1 outboxes and replay rings).
//
// server: the same room behind a basic_server, driven the way tools/ drives it. Bytes in:
// one member's masked send_message frames and every receiver's masked ack of each
// message, one receive() per connection; bytes out: take_output() and written() for every
// writable connection. After a warm-up it counts every operator new in the measured
// window (the harness itself reuses its buffers, so everything counted is the core's) and
// reports allocations per message and per delivery. Per-delivery cost is what must not
// grow with the room: run it with 10 and with 100 members and compare allocations/message.
//
// idle: S sessions, each accepted, upgraded, hello'd and joined to one room, every output
// taken and written; reports the bytes the core holds live per session (malloc's usable
// sizes, so allocator rounding is included and its per-block header is not).
#include <parley/hub.hpp>
#include <parley/server.hpp>

#include <malloc.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

// ---- counting allocator -----------------------------------------------------

namespace {
std::uint64_t allocations = 0;  // operator new calls
std::uint64_t allocated_bytes = 0;
std::int64_t live_bytes = 0;  // usable sizes of blocks not yet freed

void* counted_new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (!p) throw std::bad_alloc();
  ++allocations;
  allocated_bytes += n;
  live_bytes += static_cast<std::int64_t>(malloc_usable_size(p));
  return p;
}
void* counted_new_aligned(std::size_t n, std::align_val_t a) {
  void* p = std::aligned_alloc(static_cast<std::size_t>(a), (n + static_cast<std::size_t>(a) - 1) /
                                                              static_cast<std::size_t>(a) * static_cast<std::size_t>(a));
  if (!p) throw std::bad_alloc();
  ++allocations;
  allocated_bytes += n;
  live_bytes += static_cast<std::int64_t>(malloc_usable_size(p));
  return p;
}
void counted_delete(void* p) noexcept {
  if (!p) return;
  live_bytes -= static_cast<std::int64_t>(malloc_usable_size(p));
  std::free(p);
}

struct allocation_count {
  std::uint64_t calls = allocations;
  std::uint64_t bytes = allocated_bytes;
};
}  // namespace

void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) { return counted_new_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_new_aligned(n, a); }
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_delete(p); }

namespace {

using server_hub = parley::basic_hub<parley::server_policy>;
const parley::moment bench_now{parley::steady_time(parley::milliseconds(1'000'000)),
                               parley::from_unix_ms(1'800'000'000'000)};

parley::random_source seeded_random(std::mt19937_64& engine) {
  return [&engine](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(engine());
  };
}

// A client's masked text frame, written into `out` without allocating once `out` has
// grown to fit: the harness must not add allocations of its own to the count.
void masked_text_frame(std::string& out, std::string_view payload) {
  static constexpr unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
  out.clear();
  out += static_cast<char>(0x81);
  const std::size_t n = payload.size();
  if (n <= 125) {
    out += static_cast<char>(0x80 | n);
  } else {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  }
  out.append(reinterpret_cast<const char*>(key), 4);
  const std::size_t start = out.size();
  out.append(payload.data(), n);
  for (std::size_t i = 0; i < n; ++i) out[start + i] = static_cast<char>(out[start + i] ^ key[i & 3]);
}

struct server_rig {
  std::mt19937_64 engine{42};
  parley::memory_room_store store;
  server_hub hub;
  parley::server server;
  std::vector<parley::connection_id> connections;
  std::string frame;  // reused for every masked frame the clients send
  std::vector<parley::connection_id> writable;  // reused, as a transport's loop would
  parley::connection_output out;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_out = 0;

  static server_hub open_hub(parley::memory_room_store& store, std::mt19937_64& engine, std::uint32_t rate) {
    parley::hub_config config;
    config.rate = {rate, 1};  // fan-out, not the rate limit
    auto opened = server_hub::open(store, seeded_random(engine), config);
    if (!opened) std::abort();
    return std::move(*opened);
  }

  explicit server_rig(std::uint32_t rate) : hub(open_hub(store, engine, rate)), server(hub) {}

  // What tools/ does after every event: write everything the core wants written.
  void write_all() {
    server.take_writable(writable);
    for (parley::connection_id id : writable) {
      server.take_output(id, out);
      std::size_t n = 0;
      for (const auto& f : out.frames) n += f->size();
      frames_out += out.frames.size();
      bytes_out += n;
      server.written(id, n);
    }
  }

  void send_text(parley::connection_id id, std::string_view text) {
    masked_text_frame(frame, text);
    server.receive(id, frame, bench_now);
    write_all();
  }

  // Accepted, upgraded, hello'd and joined to `room`.
  bool connect_member(const std::string& room, const std::string& nickname) {
    auto id = server.accept(bench_now, false);
    if (!id) return false;
    connections.push_back(*id);
    server.receive(*id,
                   "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   bench_now);
    write_all();
    send_text(*id, parley::encode_hello(parley::hello_frame{std::string(parley::version_string), {}, {}}));
    send_text(*id, parley::encode_tool_request(
                       parley::tool_request{"j", parley::join_room_args{room, nickname}}));
    return server.session_of(*id).has_value() && hub.rooms().count(room) &&
           hub.rooms().at(room).members.size() == connections.size();
  }
};

int run_hub(std::size_t members, std::size_t messages, std::size_t body_bytes) {
  std::mt19937_64 engine(42);
  parley::hub_config config;
  config.rate = {static_cast<std::uint32_t>(messages + 1), 1};
  parley::memory_room_store store;
  auto opened = server_hub::open(store, seeded_random(engine), config);
  if (!opened) return 1;
  server_hub& hub = *opened;

  std::vector<parley::session_handle> sessions;
  for (std::size_t i = 0; i < members; ++i) {
    sessions.push_back(hub.open_session(bench_now).handle);
    if (!hub.join_room(sessions.back(), {"bench", "m" + std::to_string(i)}, bench_now)) return 1;
  }

  const std::string body(body_bytes, 'x');
  std::uint64_t deliveries = 0;
  std::uint64_t bytes = 0;
  const allocation_count before;
  const auto started = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < messages; ++i) {
    auto sent = hub.send_message(sessions[0], {"bench", body, std::nullopt}, bench_now);
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
  const allocation_count after;

  const std::uint64_t expected = static_cast<std::uint64_t>(messages) * (members - 1);
  if (deliveries != expected) {
    std::fprintf(stderr, "expected %llu deliveries, drained %llu\n", static_cast<unsigned long long>(expected),
                 static_cast<unsigned long long>(deliveries));
    return 1;
  }
  std::printf("fanout_bench: %zu members, %zu messages of %zu bytes: %llu deliveries in %.3f s = %.0f deliveries/s, "
              "%.0f messages/s, %.1f MB/s of frames for the transport to write; %.2f allocations/message\n",
              members, messages, body_bytes, static_cast<unsigned long long>(deliveries), seconds, deliveries / seconds,
              messages / seconds, bytes / seconds / 1e6,
              static_cast<double>(after.calls - before.calls) / static_cast<double>(messages));
  return 0;
}

struct server_figures {
  double seconds = 0;
  double allocations_per_message = 0;
  double bytes_per_message = 0;
  std::uint64_t bytes_out = 0;
  std::size_t warmup = 0;
};

// One room of `members` behind a server: warm up, then count a measured window.
std::optional<server_figures> measure_server(std::size_t members, std::size_t messages, std::size_t body_bytes) {
  server_rig rig(static_cast<std::uint32_t>(2 * messages + 1000));
  for (std::size_t i = 0; i < members; ++i)
    if (!rig.connect_member("bench", "m" + std::to_string(i))) {
      std::fprintf(stderr, "member %zu could not connect and join\n", i);
      return std::nullopt;
    }
  const std::string send_text = parley::encode_tool_request(
      parley::tool_request{"s", parley::send_message_args{"bench", std::string(body_bytes, 'x'), std::nullopt}});
  std::string ack_text;
  ack_text.reserve(128);
  rig.frame.reserve(send_text.size() + 16);

  std::uint64_t seq = 0;
  auto one_message = [&] {
    rig.send_text(rig.connections[0], send_text);
    ++seq;
    for (std::size_t r = 1; r < members; ++r) {
      ack_text.assign("{\"_tag\":\"ack\",\"room\":\"bench\",\"seq\":");
      char digits[24];
      const int n = std::snprintf(digits, sizeof digits, "%llu}", static_cast<unsigned long long>(seq));
      ack_text.append(digits, static_cast<std::size_t>(n));
      rig.send_text(rig.connections[r], ack_text);
    }
  };

  server_figures fig;
  fig.warmup = std::max<std::size_t>(messages / 10, 200);
  for (std::size_t i = 0; i < fig.warmup; ++i) one_message();
  const std::uint64_t frames_before = rig.frames_out;
  const std::uint64_t bytes_before = rig.bytes_out;
  const allocation_count before;
  const auto started = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < messages; ++i) one_message();
  fig.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const allocation_count after;

  const std::uint64_t deliveries = static_cast<std::uint64_t>(messages) * (members - 1);
  const std::uint64_t frames = rig.frames_out - frames_before;
  if (frames != deliveries + messages) {  // every delivery, and the sender's tool.ok
    std::fprintf(stderr, "expected %llu frames out, got %llu\n", static_cast<unsigned long long>(deliveries + messages),
                 static_cast<unsigned long long>(frames));
    return std::nullopt;
  }
  const auto* receiver = rig.hub.session(*rig.server.session_of(rig.connections[1]));
  if (!receiver || receiver->memberships.at("bench").ring.size() != 0) {
    std::fprintf(stderr, "the acks did not empty the replay rings\n");
    return std::nullopt;
  }
  fig.allocations_per_message = static_cast<double>(after.calls - before.calls) / static_cast<double>(messages);
  fig.bytes_per_message = static_cast<double>(after.bytes - before.bytes) / static_cast<double>(messages);
  fig.bytes_out = rig.bytes_out - bytes_before;
  return fig;
}

int run_server(std::size_t members, std::size_t messages, std::size_t body_bytes) {
  const auto fig = measure_server(members, messages, body_bytes);
  if (!fig) return 1;
  const std::uint64_t deliveries = static_cast<std::uint64_t>(messages) * (members - 1);
  std::printf("fanout_bench server: %zu members, %zu messages of %zu bytes (after %zu warm-up): %llu deliveries in "
              "%.3f s = %.0f deliveries/s, %.0f messages/s, %.1f MB/s out; every delivery acked\n",
              members, messages, body_bytes, fig->warmup, static_cast<unsigned long long>(deliveries), fig->seconds,
              static_cast<double>(deliveries) / fig->seconds, static_cast<double>(messages) / fig->seconds,
              static_cast<double>(fig->bytes_out) / fig->seconds / 1e6);
  std::printf("  allocations: %.2f per message (%.0f bytes), %.4f per delivery on average\n", fig->allocations_per_message,
              fig->bytes_per_message, fig->allocations_per_message * static_cast<double>(messages) /
                                          static_cast<double>(deliveries));
  // What a delivery itself costs: the same stream in a room of two, the difference
  // spread over the extra recipients.
  if (members > 2) {
    const auto pair = measure_server(2, std::max<std::size_t>(messages / 10, 1), body_bytes);
    if (!pair) return 1;
    std::printf("  with 2 members: %.2f allocations per message; each extra recipient adds %.4f allocations "
                "(%.1f bytes) per delivery\n",
                pair->allocations_per_message,
                (fig->allocations_per_message - pair->allocations_per_message) / static_cast<double>(members - 2),
                (fig->bytes_per_message - pair->bytes_per_message) / static_cast<double>(members - 2));
  }
  return 0;
}

int run_idle(std::size_t sessions) {
  server_rig rig(100);
  if (!rig.connect_member("idle", "first")) return 1;  // the room exists before the count starts
  const std::int64_t live_before = live_bytes;
  const allocation_count before;
  for (std::size_t i = 1; i <= sessions; ++i)
    if (!rig.connect_member("idle", "m" + std::to_string(i))) {
      std::fprintf(stderr, "session %zu could not connect and join\n", i);
      return 1;
    }
  const allocation_count after;
  // The harness's own vector of ids is not the core's.
  const std::int64_t harness = static_cast<std::int64_t>(rig.connections.capacity() * sizeof(parley::connection_id));
  const double per_session = static_cast<double>(live_bytes - live_before - harness) / static_cast<double>(sessions);
  std::printf("fanout_bench idle: %zu sessions connected, upgraded, hello'd and joined to one room: %.0f bytes live "
              "per session (%.2f KiB), %.1f allocations per session to get there\n",
              sessions, per_session, per_session / 1024.0,
              static_cast<double>(after.calls - before.calls) / static_cast<double>(sessions));
  return 0;
}

std::size_t arg(int argc, char** argv, int i, std::size_t fallback) {
  return argc > i ? std::strtoul(argv[i], nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 && !std::isdigit(static_cast<unsigned char>(argv[1][0])) ? argv[1] : "hub";
  const int first = mode == "hub" && (argc < 2 || std::isdigit(static_cast<unsigned char>(argv[1][0]))) ? 1 : 2;
  if (mode == "idle") {
    const std::size_t sessions = arg(argc, argv, first, 2000);
    if (sessions == 0) return 2;
    return run_idle(sessions);
  }
  const std::size_t members = arg(argc, argv, first, 100);
  const std::size_t messages = arg(argc, argv, first + 1, 20000);
  const std::size_t body_bytes = arg(argc, argv, first + 2, 200);
  if ((mode != "hub" && mode != "server") || members < 2 || messages == 0 || body_bytes == 0 ||
      body_bytes > parley::default_max_body_bytes) {
    std::fprintf(stderr,
                 "usage: fanout_bench [hub|server] [members>=2] [messages>=1] [body_bytes 1..8192]\n"
                 "       fanout_bench idle [sessions>=1]\n");
    return 2;
  }
  return mode == "server" ? run_server(members, messages, body_bytes) : run_hub(members, messages, body_bytes);
}
