// SPDX-License-Identifier: MIT
// RFC 6455 framing: every receive rule, its boundaries, both roles' encoders, and every input replayed whole, bytewise and split.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using parley::role;
using parley::ws_event;

namespace {

using mask_key = std::array<unsigned char, 4>;
constexpr mask_key rfc_key{0x37, 0xfa, 0x21, 0x3d};  // the key of RFC 6455 §5.7's examples

// A frame built by hand, so tests can say exactly which bits are wrong.
// `b0` is FIN|RSV|opcode; the length uses the minimal form unless `length_override` is set.
std::string raw_frame(unsigned b0, std::string_view payload, std::optional<mask_key> key = rfc_key,
                      std::optional<std::uint64_t> declared_length = std::nullopt, int length_form = 0) {
  const std::uint64_t n = declared_length.value_or(payload.size());
  const int form = length_form != 0 ? length_form : n <= 125 ? 7 : n <= 0xFFFF ? 16 : 64;
  std::string out;
  out += static_cast<char>(b0);
  const unsigned mask_bit = key ? 0x80 : 0;
  if (form == 7) {
    out += static_cast<char>(mask_bit | n);
  } else if (form == 16) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>((n >> 8) & 0xFF);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
  }
  if (key) out.append(reinterpret_cast<const char*>(key->data()), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out += static_cast<char>(static_cast<unsigned char>(payload[i]) ^ (key ? (*key)[i % 4] : 0));
  return out;
}

// What a client sends (masked) and what a server sends (unmasked).
std::string from_client(unsigned b0, std::string_view payload) { return raw_frame(b0, payload, rfc_key); }
std::string from_server(unsigned b0, std::string_view payload) { return raw_frame(b0, payload, std::nullopt); }

constexpr unsigned fin = 0x80;
constexpr unsigned op_cont = 0x0, op_text = 0x1, op_binary = 0x2, op_close = 0x8, op_ping = 0x9, op_pong = 0xA;

std::vector<ws_event> drain(parley::websocket& ws) {
  std::vector<ws_event> events;
  while (auto e = ws.next_event()) events.push_back(std::move(*e));
  return events;
}

std::vector<ws_event> decode_chunks(role r, const std::vector<std::string_view>& chunks, parley::websocket_limits limits) {
  parley::websocket ws(r, {}, limits);
  std::vector<ws_event> events;
  for (std::string_view chunk : chunks) {
    ws.receive(chunk);
    for (auto& e : drain(ws)) events.push_back(std::move(e));
  }
  return events;
}

// The events of `input`, after checking that bytewise and every two-way split give the same.
// Inputs over a few KiB are split at their first and last 300 bytes and at a stride between,
// which keeps every header boundary covered without quadratic time.
std::vector<ws_event> decode(role r, std::string_view input, parley::websocket_limits limits = {}) {
  const auto whole = decode_chunks(r, {input}, limits);
  // A failure or close is the last event, and there is at most one of them.
  for (std::size_t i = 0; i + 1 < whole.size(); ++i) {
    CHECK_FALSE(std::holds_alternative<parley::ws_failure>(whole[i]));
    CHECK_FALSE(std::holds_alternative<parley::ws_close>(whole[i]));
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  CHECK(decode_chunks(r, bytes, limits) == whole);
  std::size_t disagreements = 0;
  const std::size_t n = input.size();
  const std::size_t stride = n <= 4096 ? 1 : n / 97;
  for (std::size_t cut = 0; cut <= n; ++cut) {
    if (n > 4096 && cut > 300 && cut + 300 < n && cut % stride != 0) continue;
    if (decode_chunks(r, {input.substr(0, cut), input.substr(cut)}, limits) != whole) ++disagreements;
  }
  CHECK(disagreements == 0);
  return whole;
}

// The close code of the failure `input` ends in, or 0 if it does not fail.
int failure_code(role r, std::string_view input, parley::websocket_limits limits = {}) {
  const auto events = decode(r, input, limits);
  if (events.empty()) return 0;
  if (const auto* f = std::get_if<parley::ws_failure>(&events.back())) return f->close_code;
  return 0;
}

ws_event text(std::string s) { return parley::ws_text{std::move(s)}; }
ws_event binary(std::string s) { return parley::ws_binary{std::move(s)}; }

parley::random_source counter_random() {
  auto next = std::make_shared<unsigned char>(0);
  return [next](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = (*next)++;
  };
}

parley::websocket_limits limit_of(std::size_t n) {
  parley::websocket_limits l;
  l.max_message_bytes = n;
  return l;
}

}  // namespace

TEST_CASE("websocket: RFC 6455 §5.7 examples") {
  using V = std::vector<ws_event>;
  CHECK(decode(role::client, "\x81\x05Hello") == V{text("Hello")});
  CHECK(decode(role::server, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58") == V{text("Hello")});
  CHECK(decode(role::client, "\x01\x03Hel\x80\x02lo") == V{text("Hello")});
  CHECK(decode(role::client, "\x89\x05Hello") == V{parley::ws_ping{"Hello"}});
  CHECK(decode(role::server, "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58") == V{parley::ws_pong{"Hello"}});
  const std::string b256 = std::string("\x82\x7E\x01\x00", 4) + std::string(256, 'x');
  CHECK(decode(role::client, b256) == V{binary(std::string(256, 'x'))});
  const std::string b64k = std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10) + std::string(65536, 'y');
  CHECK(decode(role::client, b64k) == V{binary(std::string(65536, 'y'))});  // exactly the default limit
}

TEST_CASE("websocket: several frames in one read come out in order") {
  const std::string input = from_client(fin | op_text, "one") + from_client(fin | op_binary, std::string("\0\xff", 2)) +
                            from_client(fin | op_ping, "p") + from_client(fin | op_pong, "") +
                            from_client(fin | op_text, "");
  CHECK(decode(role::server, input) == std::vector<ws_event>{text("one"), binary(std::string("\0\xff", 2)),
                                                             parley::ws_ping{"p"}, parley::ws_pong{""}, text("")});
}

TEST_CASE("websocket: masking is required of clients and forbidden to servers") {
  CHECK(failure_code(role::server, from_server(fin | op_text, "hi")) == 1002);
  CHECK(failure_code(role::client, from_client(fin | op_text, "hi")) == 1002);
  CHECK(failure_code(role::server, from_server(fin | op_ping, "")) == 1002);
  CHECK(failure_code(role::server, from_client(fin | op_text, "hi")) == 0);
  CHECK(failure_code(role::client, from_server(fin | op_text, "hi")) == 0);
}

TEST_CASE("websocket: RSV bits without an extension are 1002") {
  for (unsigned rsv : {0x40u, 0x20u, 0x10u, 0x70u}) {
    CAPTURE(rsv);
    CHECK(failure_code(role::server, from_client(fin | rsv | op_text, "x")) == 1002);
    CHECK(failure_code(role::client, from_server(fin | rsv | op_ping, "")) == 1002);
  }
}

TEST_CASE("websocket: reserved opcodes are 1002") {
  for (unsigned op : {0x3u, 0x4u, 0x5u, 0x6u, 0x7u, 0xBu, 0xCu, 0xDu, 0xEu, 0xFu}) {
    CAPTURE(op);
    CHECK(failure_code(role::server, from_client(fin | op, "")) == 1002);
  }
}

TEST_CASE("websocket: control frames carry at most 125 bytes and are never fragmented") {
  const std::string p125(125, 'a');
  CHECK(decode(role::server, from_client(fin | op_ping, p125)) == std::vector<ws_event>{parley::ws_ping{p125}});
  CHECK(decode(role::server, from_client(fin | op_pong, p125)) == std::vector<ws_event>{parley::ws_pong{p125}});
  CHECK(failure_code(role::server, from_client(fin | op_ping, std::string(126, 'a'))) == 1002);
  CHECK(failure_code(role::server, from_client(fin | op_pong, std::string(126, 'a'))) == 1002);
  CHECK(failure_code(role::server, from_client(fin | op_close, "\x03\xe8" + std::string(124, 'a'))) == 1002);
  CHECK(failure_code(role::server, from_client(op_ping, "")) == 1002);
  CHECK(failure_code(role::server, from_client(op_close, "")) == 1002);
  // Refused from the two header bytes alone: a 126-form control header needs no more.
  parley::websocket ws(role::server);
  ws.receive("\x89\xfe");
  const auto e = ws.next_event();
  REQUIRE(e.has_value());
  CHECK(std::get<parley::ws_failure>(*e).close_code == 1002);
}

TEST_CASE("websocket: fragments must continue the message in progress") {
  CHECK(failure_code(role::server, from_client(fin | op_cont, "x")) == 1002);
  CHECK(failure_code(role::server, from_client(op_cont, "x")) == 1002);
  CHECK(failure_code(role::server, from_client(op_text, "a") + from_client(fin | op_text, "b")) == 1002);
  CHECK(failure_code(role::server, from_client(op_text, "a") + from_client(fin | op_binary, "b")) == 1002);
  CHECK(failure_code(role::server, from_client(op_binary, "a") + from_client(op_binary, "b")) == 1002);
  // A finished message frees the way for the next one, and empty fragments are fine.
  const std::string ok = from_client(op_text, "a") + from_client(op_cont, "") + from_client(fin | op_cont, "b") +
                         from_client(op_binary, "") + from_client(fin | op_cont, "c");
  CHECK(decode(role::server, ok) == std::vector<ws_event>{text("ab"), binary("c")});
}

TEST_CASE("websocket: control frames may interleave with fragments") {
  const std::string input = from_client(op_text, "Hel") + from_client(fin | op_ping, "are you there") +
                            from_client(op_cont, "l") + from_client(fin | op_pong, "") +
                            from_client(fin | op_cont, "o");
  CHECK(decode(role::server, input) ==
        std::vector<ws_event>{parley::ws_ping{"are you there"}, parley::ws_pong{""}, text("Hello")});
  // A close in the middle ends everything, the unfinished message included.
  const std::string closing = from_client(op_text, "Hel") + from_client(fin | op_close, "\x03\xe8") +
                              from_client(fin | op_cont, "lo");
  CHECK(decode(role::server, closing) == std::vector<ws_event>{parley::ws_close{1000, ""}});
}

TEST_CASE("websocket: the three length forms at their boundaries") {
  parley::websocket server(role::server);
  parley::websocket client(role::client, counter_random());
  for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u}) {
    CAPTURE(n);
    const std::string payload(n, 'z');
    const std::string frame = server.encode_binary(payload);
    const std::size_t header = n <= 125 ? 2 : n <= 65535 ? 4 : 10;
    REQUIRE(frame.size() == header + n);
    const auto len7 = static_cast<unsigned char>(frame[1]);
    CHECK(len7 == (n <= 125 ? n : n <= 65535 ? 126 : 127));
    CHECK(decode(role::client, frame) == std::vector<ws_event>{binary(payload)});
    const std::string masked = client.encode_binary(payload);
    CHECK(masked.size() == header + 4 + n);
    CHECK(decode(role::server, masked) == std::vector<ws_event>{binary(payload)});
  }
}

TEST_CASE("websocket: lengths must be minimally encoded and the 64-bit form's top bit clear") {
  CHECK(failure_code(role::client, raw_frame(fin | op_binary, "abc", std::nullopt, std::nullopt, 16)) == 1002);
  CHECK(failure_code(role::client, raw_frame(fin | op_binary, std::string(125, 'a'), std::nullopt, std::nullopt, 16)) ==
        1002);
  CHECK(failure_code(role::client, raw_frame(fin | op_binary, std::string(126, 'a'), std::nullopt, std::nullopt, 16)) ==
        0);
  CHECK(failure_code(role::client, raw_frame(fin | op_binary, std::string(65535, 'a'), std::nullopt, std::nullopt,
                                             64)) == 1002);
  // The top bit fails from the header alone, before any payload.
  const std::string top_bit = raw_frame(fin | op_binary, "", std::nullopt, std::uint64_t{1} << 63);
  CHECK(top_bit.size() == 10);
  CHECK(failure_code(role::client, top_bit) == 1002);
  CHECK(failure_code(role::client, raw_frame(fin | op_binary, "", std::nullopt, ~std::uint64_t{0})) == 1002);
}

TEST_CASE("websocket: message size limit, at and one over, across fragments") {
  CHECK(failure_code(role::server, from_client(fin | op_text, std::string(10, 'a')), limit_of(10)) == 0);
  CHECK(failure_code(role::server, from_client(fin | op_text, std::string(11, 'a')), limit_of(10)) == 1009);
  CHECK(failure_code(role::server, from_client(fin | op_binary, std::string(11, 'a')), limit_of(10)) == 1009);
  const std::string five(5, 'a');
  CHECK(failure_code(role::server, from_client(op_text, five) + from_client(fin | op_cont, five), limit_of(10)) == 0);
  CHECK(failure_code(role::server, from_client(op_text, five) + from_client(fin | op_cont, five + "a"),
                     limit_of(10)) == 1009);
  // The limit is per message: two messages at the limit are both fine.
  const std::string ten(10, 'a');
  CHECK(decode(role::server, from_client(fin | op_text, ten) + from_client(fin | op_text, ten), limit_of(10)).size() ==
        2);
  // Control frames do not count against it.
  CHECK(failure_code(role::server, from_client(op_text, ten) + from_client(fin | op_ping, std::string(100, 'p')) +
                                       from_client(fin | op_cont, ""),
                     limit_of(10)) == 0);
  // Default: 64 KiB exactly is accepted, one byte over is not.
  CHECK(failure_code(role::server, from_client(fin | op_binary, std::string(65536, 'a'))) == 0);
  CHECK(failure_code(role::server, from_client(fin | op_binary, std::string(65537, 'a'))) == 1009);
}

TEST_CASE("websocket: an announced huge length is refused from the header, before its payload") {
  parley::websocket ws(role::server);
  ws.receive(raw_frame(fin | op_binary, "", rfc_key, std::uint64_t{1} << 40));
  const auto e = ws.next_event();
  REQUIRE(e.has_value());
  CHECK(std::get<parley::ws_failure>(*e).close_code == 1009);
  CHECK(ws.failed());
  CHECK(ws.buffered_bytes() == 0);
  // The 16-bit form too, and even before the mask key has arrived.
  parley::websocket small(role::server, {}, limit_of(200));
  small.receive(std::string("\x82\xfe\x00\xc9", 4));  // 201 bytes announced
  const auto e2 = small.next_event();
  REQUIRE(e2.has_value());
  CHECK(std::get<parley::ws_failure>(*e2).close_code == 1009);
}

TEST_CASE("websocket: text must be UTF-8, checked fragment by fragment") {
  CHECK(failure_code(role::server, from_client(fin | op_text, "\xff")) == 1007);
  CHECK(failure_code(role::server, from_client(fin | op_text, "ok\xed\xa0\x80")) == 1007);  // surrogate
  CHECK(failure_code(role::server, from_client(fin | op_binary, "\xff")) == 0);            // binary is opaque
  // A character split across fragments is fine...
  const std::string euro_split = from_client(op_text, "price \xe2") + from_client(op_cont, "\x82") +
                                 from_client(fin | op_cont, "\xac!");
  CHECK(decode(role::server, euro_split) == std::vector<ws_event>{text("price \xe2\x82\xac!")});
  // ...but a message may not end inside one.
  CHECK(failure_code(role::server, from_client(op_text, "a") + from_client(fin | op_cont, "\xe2\x82")) == 1007);
  CHECK(failure_code(role::server, from_client(fin | op_text, "\xc3")) == 1007);
  // Fail fast: a bad first fragment fails before the rest of the message arrives.
  parley::websocket ws(role::server);
  ws.receive(from_client(op_text, "\xc0\xaf"));
  const auto e = ws.next_event();
  REQUIRE(e.has_value());
  CHECK(std::get<parley::ws_failure>(*e).close_code == 1007);
}

TEST_CASE("websocket: close frames") {
  using V = std::vector<ws_event>;
  CHECK(decode(role::server, from_client(fin | op_close, "")) == V{parley::ws_close{1005, ""}});
  CHECK(decode(role::server, from_client(fin | op_close, "\x03\xe8")) == V{parley::ws_close{1000, ""}});
  CHECK(decode(role::client, from_server(fin | op_close, "\x0f\xa0room closed")) == V{parley::ws_close{4000, "room closed"}});
  CHECK(failure_code(role::server, from_client(fin | op_close, "\x03")) == 1002);
  for (unsigned code : {1000u, 1001u, 1002u, 1003u, 1007u, 1008u, 1009u, 1010u, 1011u, 1014u, 3000u, 3999u, 4000u, 4999u}) {
    CAPTURE(code);
    const std::string body{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    CHECK(decode(role::server, from_client(fin | op_close, body)) ==
          V{parley::ws_close{static_cast<std::uint16_t>(code), ""}});
  }
  for (unsigned code : {0u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 2000u, 2999u, 5000u, 65535u}) {
    CAPTURE(code);
    const std::string body{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    CHECK(failure_code(role::server, from_client(fin | op_close, body)) == 1002);
  }
  CHECK(failure_code(role::server, from_client(fin | op_close, "\x03\xe8\xff")) == 1007);
  CHECK(failure_code(role::server, from_client(fin | op_close, "\x03\xe8\xe2\x82")) == 1007);
  CHECK(decode(role::server, from_client(fin | op_close, "\x03\xe8\xe2\x82\xac")) == V{parley::ws_close{1000, "\xe2\x82\xac"}});
}

TEST_CASE("websocket: bytes after a close frame are ignored") {
  parley::websocket ws(role::server);
  ws.receive(from_client(fin | op_close, "\x03\xe8") + from_client(fin | op_text, "late"));
  CHECK(drain(ws) == std::vector<ws_event>{parley::ws_close{1000, ""}});
  CHECK(ws.close_received());
  ws.receive(from_client(fin | op_text, "later"));
  ws.receive("\xff\xff garbage");
  CHECK_FALSE(ws.next_event().has_value());
  CHECK_FALSE(ws.failed());
  CHECK(ws.buffered_bytes() == 0);
  // Garbage after the close is not a protocol error either.
  CHECK(decode(role::server, from_client(fin | op_close, "") + "\xff\xff\xff") ==
        std::vector<ws_event>{parley::ws_close{1005, ""}});
}

TEST_CASE("websocket: a failure is final") {
  parley::websocket ws(role::server);
  ws.receive(from_server(fin | op_text, "unmasked") + from_client(fin | op_text, "fine"));
  const auto events = drain(ws);
  REQUIRE(events.size() == 1);
  CHECK(std::get<parley::ws_failure>(events[0]).close_code == 1002);
  CHECK(ws.failed());
  ws.receive(from_client(fin | op_text, "more"));
  CHECK_FALSE(ws.next_event().has_value());
  // The events before the failure are still delivered, in order.
  CHECK(decode(role::server, from_client(fin | op_text, "first") + from_client(fin | 0x3, "")) ==
        std::vector<ws_event>{text("first"), parley::ws_failure{1002, "unknown opcode"}});
}

TEST_CASE("websocket: server encoders are unmasked and match the RFC bytes") {
  parley::websocket server(role::server);
  CHECK(server.encode_text("Hello") == "\x81\x05Hello");
  CHECK(parley::encode_server_text_frame("Hello") == "\x81\x05Hello");
  CHECK(server.encode_binary("ab") == "\x82\x02" "ab");
  CHECK(server.encode_ping("Hello") == "\x89\x05Hello");
  CHECK(server.encode_pong("Hello") == "\x8a\x05Hello");
  CHECK(server.encode_pong() == std::string("\x8a\x00", 2));
  const std::string big(70000, 'q');
  CHECK(parley::encode_server_text_frame(big) == server.encode_text(big));
}

TEST_CASE("websocket: client encoders mask with a fresh key from the random source") {
  parley::websocket client(role::client, counter_random());
  const std::string a = client.encode_text("Hello");
  const std::string b = client.encode_text("Hello");
  REQUIRE(a.size() == 2 + 4 + 5);
  CHECK(static_cast<unsigned char>(a[0]) == 0x81);
  CHECK(static_cast<unsigned char>(a[1]) == 0x85);
  CHECK(a.substr(2, 4) == std::string("\x00\x01\x02\x03", 4));
  CHECK(b.substr(2, 4) == std::string("\x04\x05\x06\x07", 4));
  CHECK(a.substr(6) != "Hello");

  // The RFC's own key gives the RFC's own bytes.
  parley::websocket rfc(role::client, [](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = rfc_key[i % 4];
  });
  CHECK(rfc.encode_text("Hello") == "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
}

TEST_CASE("websocket: round trips between the roles, every length the 8-byte unmasking can get wrong") {
  parley::websocket client(role::client, counter_random());
  parley::websocket server(role::server);
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string payload;
    for (std::size_t i = 0; i < n; ++i) payload += static_cast<char>('a' + i % 26);
    CHECK(decode(role::server, client.encode_text(payload)) == std::vector<ws_event>{text(payload)});
    CHECK(decode(role::client, server.encode_text(payload)) == std::vector<ws_event>{text(payload)});
  }
  const std::string bytes("\x00\x01\xfe\xff", 4);
  CHECK(decode(role::server, client.encode_binary(bytes)) == std::vector<ws_event>{binary(bytes)});
  CHECK(decode(role::server, client.encode_ping("p")) == std::vector<ws_event>{parley::ws_ping{"p"}});
  CHECK(decode(role::server, client.encode_pong("q")) == std::vector<ws_event>{parley::ws_pong{"q"}});
  CHECK(decode(role::client, server.encode_close(4003, "replay overflow")) ==
        std::vector<ws_event>{parley::ws_close{4003, "replay overflow"}});
  CHECK(decode(role::server, client.encode_close(1000)) == std::vector<ws_event>{parley::ws_close{1000, ""}});
}

TEST_CASE("websocket: encode_close never produces a frame the peer must refuse") {
  parley::websocket server(role::server);
  // Codes that may not be sent give a bodiless close, which the peer reads as 1005.
  for (std::uint16_t code : {std::uint16_t{1005}, std::uint16_t{1006}, std::uint16_t{1015}, std::uint16_t{999},
                             std::uint16_t{5000}}) {
    CAPTURE(code);
    CHECK(server.encode_close(code, "why") == std::string("\x88\x00", 2));
  }
  CHECK(server.encode_close() == std::string("\x88\x00", 2));
  // The reason is cut to 123 bytes on a character boundary...
  const std::string euros = [] {
    std::string s = "a";  // so byte 123 falls inside a character
    for (int i = 0; i < 50; ++i) s += "\xe2\x82\xac";
    return s;
  }();
  const std::string frame = server.encode_close(1000, euros);
  REQUIRE(frame.size() <= 2 + 125);
  const auto events = decode(role::client, frame);
  REQUIRE(events.size() == 1);
  const auto& close = std::get<parley::ws_close>(events[0]);
  CHECK(close.reason.size() == 121);  // "a" and 40 euro signs; the 41st would need bytes 122-124
  CHECK(close.reason == euros.substr(0, 121));
  const std::string ascii(200, 'r');
  CHECK(std::get<parley::ws_close>(decode(role::client, server.encode_close(1000, ascii))[0]).reason == ascii.substr(0, 123));
  // ...and dropped when it is not UTF-8.
  CHECK(server.encode_close(1000, "\xff") == "\x88\x02\x03\xe8");
  // Control payloads are cut to what a control frame can carry.
  CHECK(server.encode_ping(std::string(200, 'p')).size() == 2 + 125);
}

TEST_CASE("websocket: the closing handshake is tracked from both sides") {
  parley::websocket server(role::server);
  parley::websocket client(role::client, counter_random());
  CHECK_FALSE(server.close_sent());
  CHECK_FALSE(server.closing_handshake_done());

  client.receive(server.encode_close(1001, "going away"));
  CHECK(server.close_sent());
  const auto got = client.next_event();
  REQUIRE(got.has_value());
  CHECK(std::get<parley::ws_close>(*got) == parley::ws_close{1001, "going away"});
  CHECK(client.close_received());
  CHECK_FALSE(client.closing_handshake_done());

  server.receive(client.encode_close(std::get<parley::ws_close>(*got).code));
  CHECK(client.closing_handshake_done());
  const auto echo = server.next_event();
  REQUIRE(echo.has_value());
  CHECK(std::get<parley::ws_close>(*echo).code == 1001);
  CHECK(server.closing_handshake_done());

  // Answering a bodiless close (reported as 1005) gives a bodiless close back.
  parley::websocket other(role::server);
  other.receive(from_client(fin | op_close, ""));
  const auto empty = other.next_event();
  REQUIRE(empty.has_value());
  CHECK(other.encode_close(std::get<parley::ws_close>(*empty).code) == std::string("\x88\x00", 2));
  CHECK(other.closing_handshake_done());
}

TEST_CASE("websocket: a large message in many fragments reassembles exactly") {
  parley::websocket client(role::client, counter_random());
  std::string expected;
  std::string input;
  for (int i = 0; i < 64; ++i) {
    std::string part(1000, static_cast<char>('A' + i % 26));
    expected += part;
    input += raw_frame((i == 63 ? fin : 0) | (i == 0 ? op_text : op_cont), part, mask_key{static_cast<unsigned char>(i), 1, 2, 3});
  }
  CHECK(decode(role::server, input) == std::vector<ws_event>{text(expected)});
}
