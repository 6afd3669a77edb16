// SPDX-License-Identifier: MIT
// RFC 6455 framing for both roles, sans-I/O: receive() bytes, next_event() messages, encode_*() frames to send.
#pragma once

#include "random_source.hpp"
#include "utf8.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace parley {

enum class role { server, client };

enum class ws_opcode : std::uint8_t { continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA };

// Close status codes (RFC 6455 §7.4.1) that the codec itself produces or reports.
namespace ws_status {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
inline constexpr std::uint16_t no_status = 1005;  // reported for a close frame without a body; never sent
inline constexpr std::uint16_t abnormal = 1006;   // never sent: means the TCP connection just ended
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t internal_error = 1011;
}  // namespace ws_status

// Whether a code may appear in a close frame: 1000-1003 and 1007-1014 (the IANA-registered
// ones), 3000-3999 (registered libraries) and 4000-4999 (private use, where parley's live).
[[nodiscard]] constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

struct ws_text {
  std::string data;  // complete and valid UTF-8
  friend bool operator==(const ws_text& a, const ws_text& b) { return a.data == b.data; }
};
struct ws_binary {
  std::string data;
  friend bool operator==(const ws_binary& a, const ws_binary& b) { return a.data == b.data; }
};
struct ws_ping {
  std::string payload;  // answer with encode_pong(payload)
  friend bool operator==(const ws_ping& a, const ws_ping& b) { return a.payload == b.payload; }
};
struct ws_pong {
  std::string payload;
  friend bool operator==(const ws_pong& a, const ws_pong& b) { return a.payload == b.payload; }
};
// The peer's close frame. If close_sent() is still false, answer with encode_close(code)
// (a 1005 is answered with an empty close frame, which encode_close does by itself).
struct ws_close {
  std::uint16_t code = ws_status::no_status;
  std::string reason;
  friend bool operator==(const ws_close& a, const ws_close& b) { return a.code == b.code && a.reason == b.reason; }
};
// The peer broke the protocol: send encode_close(close_code, reason) and drop the connection.
// It is the last event the codec yields.
struct ws_failure {
  std::uint16_t close_code = ws_status::protocol_error;
  std::string reason;
  friend bool operator==(const ws_failure& a, const ws_failure& b) {
    return a.close_code == b.close_code && a.reason == b.reason;
  }
};

using ws_event = std::variant<ws_text, ws_binary, ws_ping, ws_pong, ws_close, ws_failure>;

// A complete text or binary message as websocket::next_view_event() yields it: a view
// of the codec's buffer, valid until its next call or receive(). Text is valid UTF-8.
struct ws_message_view {
  std::string_view data;
  bool text = true;
};
using ws_view_event = std::variant<ws_message_view, ws_ping, ws_pong, ws_close, ws_failure>;

// The largest WebSocket message either side of Parley accepts by default: the server from
// its clients and the client (the MCP bridge) from the server. One constant, so that what
// one side may send the other can take; a server frame over it would be refused with 1009
// by every bridge. Room for an 8 KiB body with its JSON escaping several times over.
inline constexpr std::size_t max_websocket_message_bytes = 64 * 1024;

struct websocket_limits {
  // Largest message accepted, summed over its fragments; larger fails with 1009 as soon
  // as a frame header announces it, before any of its payload is buffered.
  std::size_t max_message_bytes = max_websocket_message_bytes;
};

namespace detail {

// XOR with the 4-byte key, eight bytes at a time; `data` starts at key phase 0.
inline void apply_ws_mask(char* data, std::size_t n, const unsigned char key[4]) noexcept {
  const unsigned char key8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  std::uint64_t k = 0;
  std::memcpy(&k, key8, 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v = 0;
    std::memcpy(&v, data + i, 8);
    v ^= k;
    std::memcpy(data + i, &v, 8);
  }
  for (; i < n; ++i) data[i] = static_cast<char>(static_cast<unsigned char>(data[i]) ^ key[i & 3]);
}

// One FIN frame appended to `out`, masked when `mask_key` is given (the client role).
inline void append_ws_frame(std::string& out, ws_opcode opcode, std::string_view payload,
                            const unsigned char* mask_key) {
  const std::size_t n = payload.size();
  out.reserve(out.size() + 14 + n);
  out += static_cast<char>(0x80 | static_cast<unsigned char>(opcode));
  const unsigned char mask_bit = mask_key ? 0x80 : 0x00;
  if (n <= 125) {
    out += static_cast<char>(mask_bit | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(mask_bit | 127);
    const auto n64 = static_cast<std::uint64_t>(n);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n64 >> shift) & 0xFF);
  }
  if (mask_key) out.append(reinterpret_cast<const char*>(mask_key), 4);
  const std::size_t start = out.size();
  out.append(payload.data(), n);
  if (mask_key) apply_ws_mask(&out[start], n, mask_key);
}

// The longest prefix of at most `max` bytes that ends on a character boundary, or
// nothing if `text` is not UTF-8: a close reason the peer would refuse is worse than none.
[[nodiscard]] inline std::string_view utf8_prefix(std::string_view text, std::size_t max) {
  if (!is_valid_utf8(text)) return {};
  if (text.size() <= max) return text;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

}  // namespace detail

// A server's frames are unmasked, so a message's frame is a pure function of its payload:
// build it once and share it among every recipient.
[[nodiscard]] inline std::string encode_server_text_frame(std::string_view payload) {
  std::string out;
  detail::append_ws_frame(out, ws_opcode::text, payload, nullptr);
  return out;
}

// One end of a WebSocket connection after the opening handshake. It never touches a
// socket: the caller passes received bytes to receive(), drains next_event(), and writes
// whatever the encode_*() functions return.
class websocket {
 public:
  // The client role masks every frame with a key drawn from `random`, which it requires;
  // the server role never draws.
  explicit websocket(role r, random_source random = {}, websocket_limits limits = {})
      : role_(r), random_(std::move(random)), limits_(limits) {}

  // Buffers bytes; nothing is parsed until next_event(). Ignored after a failure or a close frame.
  void receive(std::string_view bytes) {
    if (done_) return;
    if (pos_ == buffer_.size()) {
      buffer_.clear();
      pos_ = 0;
    } else if (pos_ >= 4096 && pos_ * 2 >= buffer_.size()) {
      // Amortised O(1) per byte: we only shift once the consumed part is the larger half.
      buffer_.erase(0, pos_);
      pos_ = 0;
    }
    buffer_.append(bytes.data(), bytes.size());
  }

  // The next complete event, or nullopt when more bytes are needed. A ws_failure or
  // ws_close is the last event; after it this returns nullopt for good.
  [[nodiscard]] std::optional<ws_event> next_event() {
    auto event = next_view_event();
    if (!event) return std::nullopt;
    if (auto* m = std::get_if<ws_message_view>(&*event)) {
      if (m->text) return ws_event{ws_text{std::string(m->data)}};
      return ws_event{ws_binary{std::string(m->data)}};
    }
    return std::visit(
        [](auto& e) -> std::optional<ws_event> {
          if constexpr (std::is_same_v<std::decay_t<decltype(e)>, ws_message_view>) return std::nullopt;
          else return ws_event{std::move(e)};
        },
        *event);
  }

  // next_event() without copying a data message: a text or binary message comes back as
  // a view of the codec's own buffer, valid until the next call to receive() or to either
  // next_*event(). A server reads every message this way, so a steady stream allocates
  // nothing here once the buffer has grown.
  [[nodiscard]] std::optional<ws_view_event> next_view_event() {
    if (message_done_) {
      message_.clear();  // the view handed out last time is over; the capacity stays
      message_done_ = false;
    }
    while (!done_) {
      const std::size_t avail = buffer_.size() - pos_;
      if (avail < 2) return std::nullopt;
      const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + pos_);

      // Everything decidable from the first two bytes is checked before waiting for more,
      // so a hostile header fails at once instead of parking buffered bytes.
      const bool fin = (p[0] & 0x80) != 0;
      const int opcode = p[0] & 0x0F;
      const bool masked = (p[1] & 0x80) != 0;
      const unsigned len7 = p[1] & 0x7F;
      const bool control = (opcode & 0x8) != 0;
      if ((p[0] & 0x70) != 0) return fail(ws_status::protocol_error, "reserved bits set without an extension");
      if (opcode != 0x0 && opcode != 0x1 && opcode != 0x2 && opcode != 0x8 && opcode != 0x9 && opcode != 0xA)
        return fail(ws_status::protocol_error, "unknown opcode");
      if (control && !fin) return fail(ws_status::protocol_error, "fragmented control frame");
      if (control && len7 > 125) return fail(ws_status::protocol_error, "control frame payload over 125 bytes");
      if (role_ == role::server && !masked) return fail(ws_status::protocol_error, "client frame not masked");
      if (role_ == role::client && masked) return fail(ws_status::protocol_error, "server frame masked");
      if (!control && opcode == 0x0 && !in_message_)
        return fail(ws_status::protocol_error, "continuation frame without a message in progress");
      if (!control && opcode != 0x0 && in_message_)
        return fail(ws_status::protocol_error, "new message before the previous one finished");

      const std::size_t length_bytes = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
      if (avail < 2 + length_bytes) return std::nullopt;
      std::uint64_t length = len7;
      if (length_bytes != 0) {
        length = 0;
        for (std::size_t i = 0; i < length_bytes; ++i) length = (length << 8) | p[2 + i];
        if (length_bytes == 8 && (length >> 63) != 0)
          return fail(ws_status::protocol_error, "64-bit payload length with the top bit set");
        // §5.2: "the minimal number of bytes MUST be used"; one spelling per length.
        if ((length_bytes == 2 && length < 126) || (length_bytes == 8 && length <= 0xFFFF))
          return fail(ws_status::protocol_error, "payload length not minimally encoded");
      }
      if (!control && length > limits_.max_message_bytes - message_.size())
        return fail(ws_status::message_too_big, "message larger than " + std::to_string(limits_.max_message_bytes) +
                                                    " bytes");

      const std::size_t header = 2 + length_bytes + (masked ? 4 : 0);
      if (avail < header || avail - header < length) return std::nullopt;
      const auto n = static_cast<std::size_t>(length);
      // Unmasked where it lies: these bytes are consumed now and only the view reads them.
      char* payload = &buffer_[pos_ + header];
      unsigned char key[4] = {};
      if (masked) std::memcpy(key, p + 2 + length_bytes, 4);
      pos_ += header + n;
      if (masked) detail::apply_ws_mask(payload, n, key);

      if (control) {
        std::string body(payload, n);
        if (opcode == 0x9) return ws_view_event{ws_ping{std::move(body)}};
        if (opcode == 0xA) return ws_view_event{ws_pong{std::move(body)}};
        return on_close(body);
      }

      if (opcode != 0x0) {
        in_message_ = true;
        message_is_text_ = opcode == 0x1;
        utf8_ = utf8_validator{};
      }
      // Validate each fragment as it lands, so bad text fails before the rest arrives.
      if (message_is_text_ && !utf8_.feed(std::string_view(payload, n)))
        return fail(ws_status::invalid_payload, "text message is not valid UTF-8");
      if (fin && message_is_text_ && !utf8_.complete())
        return fail(ws_status::invalid_payload, "text message ends inside a UTF-8 character");
      // A message in one frame (nearly all) is read where it lies; fragments are gathered.
      if (fin && message_.empty()) {
        in_message_ = false;
        return ws_view_event{ws_message_view{std::string_view(payload, n), message_is_text_}};
      }
      message_.append(payload, n);
      if (!fin) continue;
      in_message_ = false;
      message_done_ = true;
      return ws_view_event{ws_message_view{std::string_view(message_), message_is_text_}};
    }
    return std::nullopt;
  }

  // ---- Sending. In the client role each call draws a fresh 4-byte mask key. After
  // close_sent() no data frame may follow (§5.5.1); checking that is the caller's job.

  [[nodiscard]] std::string encode_text(std::string_view payload) const { return encode(ws_opcode::text, payload); }
  [[nodiscard]] std::string encode_binary(std::string_view payload) const {
    return encode(ws_opcode::binary, payload);
  }
  // Control payloads are cut to 125 bytes, the most a control frame may carry.
  [[nodiscard]] std::string encode_ping(std::string_view payload = {}) const {
    return encode(ws_opcode::ping, payload.substr(0, 125));
  }
  [[nodiscard]] std::string encode_pong(std::string_view payload = {}) const {
    return encode(ws_opcode::pong, payload.substr(0, 125));
  }

  // Marks the close as sent. A code that may not go on the wire (1005, 1006, 1015, ...)
  // gives a close frame without a body; the reason is cut to 123 bytes on a character
  // boundary, and dropped if it is not UTF-8, so the peer never fails us for it.
  [[nodiscard]] std::string encode_close(std::uint16_t code = ws_status::no_status, std::string_view reason = {}) {
    close_sent_ = true;
    if (!is_valid_close_code(code)) return encode(ws_opcode::close, {});
    const std::string_view cut = detail::utf8_prefix(reason, 123);
    std::string body;
    body.reserve(2 + cut.size());
    body += static_cast<char>(code >> 8);
    body += static_cast<char>(code & 0xFF);
    body += cut;
    return encode(ws_opcode::close, body);
  }

  // ---- State of the closing handshake (§7.1). Once both are true the caller closes TCP
  // (the server first, §7.1.1); after failed() the caller sends a close and hangs up.

  [[nodiscard]] bool close_sent() const noexcept { return close_sent_; }
  [[nodiscard]] bool close_received() const noexcept { return close_received_; }
  [[nodiscard]] bool closing_handshake_done() const noexcept { return close_sent_ && close_received_; }
  [[nodiscard]] bool failed() const noexcept { return failed_; }
  [[nodiscard]] role which_role() const noexcept { return role_; }
  // Received bytes not yet turned into events, including a partly received message.
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return buffer_.size() - pos_ + message_.size(); }

 private:
  [[nodiscard]] std::string encode(ws_opcode opcode, std::string_view payload) const {
    std::string out;
    if (role_ == role::client) {
      unsigned char key[4];
      random_(key, sizeof key);
      detail::append_ws_frame(out, opcode, payload, key);
    } else {
      detail::append_ws_frame(out, opcode, payload, nullptr);
    }
    return out;
  }

  std::optional<ws_view_event> on_close(std::string_view body) {
    if (body.size() == 1) return fail(ws_status::protocol_error, "close frame with a one-byte body");
    ws_close event;
    if (body.size() >= 2) {
      event.code = static_cast<std::uint16_t>((static_cast<unsigned char>(body[0]) << 8) |
                                              static_cast<unsigned char>(body[1]));
      if (!is_valid_close_code(event.code)) return fail(ws_status::protocol_error, "close code not allowed on the wire");
      const std::string_view reason = body.substr(2);
      if (!is_valid_utf8(reason)) return fail(ws_status::invalid_payload, "close reason is not valid UTF-8");
      event.reason = std::string(reason);
    }
    close_received_ = true;
    finish();  // §5.5.1: nothing after a close frame is data
    return ws_view_event{std::move(event)};
  }

  std::optional<ws_view_event> fail(std::uint16_t code, std::string reason) {
    failed_ = true;
    finish();
    return ws_view_event{ws_failure{code, std::move(reason)}};
  }

  void finish() {
    done_ = true;
    buffer_ = std::string{};
    message_ = std::string{};
    pos_ = 0;
    in_message_ = false;
  }

  role role_;
  random_source random_;
  websocket_limits limits_;

  std::string buffer_;  // received bytes; [pos_, size) not yet parsed
  std::size_t pos_ = 0;

  std::string message_;  // the fragments of the message in progress, unmasked
  bool in_message_ = false;
  bool message_is_text_ = false;
  bool message_done_ = false;  // message_ was handed out as a view: cleared at the next call
  utf8_validator utf8_;

  bool done_ = false;  // a failure or a close frame was yielded; no more events
  bool failed_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
};

}  // namespace parley
