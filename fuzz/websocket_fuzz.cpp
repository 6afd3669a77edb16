// SPDX-License-Identifier: MIT
// Invariant: feeding any bytes to a websocket codec, in any split, never crashes, never yields an event after a failure or close, gives the same events whole as split, and every message it yields is within the limit (text valid UTF-8) and survives re-encoding by the other role unchanged.
#include <parley/utf8.hpp>
#include <parley/websocket.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

void drain_into(parley::websocket& ws, std::vector<parley::ws_event>& events) {
  while (auto e = ws.next_event()) {
    if (!events.empty() && (std::holds_alternative<parley::ws_failure>(events.back()) ||
                            std::holds_alternative<parley::ws_close>(events.back())))
      std::abort();  // an event after the last one
    events.push_back(std::move(*e));
  }
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // Byte 0 picks the role and a limit, byte 1 seeds the chunk sizes; the rest is the stream.
  const parley::role role = (data[0] & 1) ? parley::role::client : parley::role::server;
  parley::websocket_limits limits;
  if (data[0] & 2) limits.max_message_bytes = 1 + (data[0] >> 2);
  std::uint32_t seed = data[1] | 1u;
  const std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

  parley::websocket whole_codec(role, {}, limits);
  std::vector<parley::ws_event> whole;
  whole_codec.receive(stream);
  drain_into(whole_codec, whole);

  parley::websocket split_codec(role, {}, limits);
  std::vector<parley::ws_event> split;
  for (std::size_t at = 0; at < stream.size();) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t chunk = 1 + (seed >> 16) % 17;
    split_codec.receive(stream.substr(at, chunk));
    drain_into(split_codec, split);
    at += chunk;
  }
  check(split == whole);
  check(whole_codec.failed() == split_codec.failed());
  check(whole_codec.close_received() == split_codec.close_received());

  // What came out must go back in: the other role encodes, this role decodes the same event.
  const auto other = role == parley::role::server ? parley::role::client : parley::role::server;
  unsigned char counter = 0;
  parley::websocket encoder(other, [&counter](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = counter++;
  });
  for (const auto& event : whole) {
    std::string frame;
    if (const auto* t = std::get_if<parley::ws_text>(&event)) {
      check(t->data.size() <= limits.max_message_bytes && parley::is_valid_utf8(t->data));
      frame = encoder.encode_text(t->data);
    } else if (const auto* b = std::get_if<parley::ws_binary>(&event)) {
      check(b->data.size() <= limits.max_message_bytes);
      frame = encoder.encode_binary(b->data);
    } else if (const auto* p = std::get_if<parley::ws_ping>(&event)) {
      frame = encoder.encode_ping(p->payload);
    } else if (const auto* q = std::get_if<parley::ws_pong>(&event)) {
      frame = encoder.encode_pong(q->payload);
    } else if (const auto* c = std::get_if<parley::ws_close>(&event)) {
      frame = encoder.encode_close(c->code, c->reason);
    } else {
      continue;  // a failure has no frame of its own
    }
    parley::websocket decoder(role, {}, limits);
    decoder.receive(frame);
    const auto again = decoder.next_event();
    check(again.has_value() && *again == event);
  }
  return 0;
}
