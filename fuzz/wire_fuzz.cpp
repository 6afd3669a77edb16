// SPDX-License-Identifier: MIT
// Invariant: decode_client_frame, decode_hello and decode_server_frame never crash or throw on any text; what they
// accept satisfies every rule the protocol states for it; and whatever decodes, encoded again with the encode_*
// functions, decodes to an equal value; a refused client frame is a BadFrameError, or an InvalidArgumentError under
// the requestId it carried. The canonical-ack fast path, whenever it answers, answers exactly what the full decoder
// (nlohmann) does.
#include <parley/wire.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace {

using namespace parley;

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  const int shown = static_cast<int>(std::min<std::size_t>(detail.size(), 200));
  std::fprintf(stderr, "wire invariant violated: %s: %.*s\n", what, shown, detail.data());
  std::abort();
}

// ---- equality, per frame type ------------------------------------------------------------

bool equal(const resume_block& a, const resume_block& b) {
  return a.session_id == b.session_id && a.reconnect_token == b.reconnect_token &&
         a.last_acked_seq_by_room == b.last_acked_seq_by_room &&
         a.last_acked_direct_seq_by_room == b.last_acked_direct_seq_by_room;
}

bool equal(const hello_frame& a, const hello_frame& b) {
  if (a.client_version != b.client_version || a.auth_token != b.auth_token) return false;
  if (a.client_kind != b.client_kind || a.direct_messages != b.direct_messages) return false;
  if (a.resume.has_value() != b.resume.has_value()) return false;
  return !a.resume || equal(*a.resume, *b.resume);
}

bool equal(const tool_args& a, const tool_args& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b);
        if constexpr (std::is_same_v<T, join_room_args>)
          return x.room == y.room && x.nickname == y.nickname && x.invite == y.invite;
        else if constexpr (std::is_same_v<T, leave_room_args>) return x.room == y.room;
        else if constexpr (std::is_same_v<T, list_rooms_args>) return x.limit == y.limit && x.cursor == y.cursor;
        else if constexpr (std::is_same_v<T, send_message_args>)
          return x.room == y.room && x.body == y.body && x.client_msg_id == y.client_msg_id && x.to == y.to;
        else if constexpr (std::is_same_v<T, who_is_here_args>)
          return x.room == y.room && x.limit == y.limit && x.cursor == y.cursor;
        else if constexpr (std::is_same_v<T, create_room_args>)
          return x.room == y.room && x.visibility == y.visibility && x.nickname == y.nickname;
        else if constexpr (std::is_same_v<T, invite_args>)
          return x.room == y.room && x.max_uses == y.max_uses && x.expires_in_s == y.expires_in_s && x.role == y.role;
        else if constexpr (std::is_same_v<T, member_action_args>)
          return x.room == y.room && x.nickname == y.nickname && x.action == y.action;
        else if constexpr (std::is_same_v<T, set_role_args>)
          return x.room == y.room && x.nickname == y.nickname && x.role == y.role;
        else if constexpr (std::is_same_v<T, knock_args>)
          return x.room == y.room && x.nickname == y.nickname && x.note == y.note;
        else return x.room == y.room && x.knock_id == y.knock_id && x.approve == y.approve;
      },
      a);
}

bool equal(const client_frame& a, const client_frame& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<ack_frame>(&a)) {
    const auto& y = std::get<ack_frame>(b);
    return x->room == y.room && x->seq == y.seq && x->direct == y.direct;
  }
  const auto& x = std::get<tool_request>(a);
  const auto& y = std::get<tool_request>(b);
  return x.request_id == y.request_id && equal(x.args, y.args);
}

bool equal(const server_frame& a, const server_frame& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b);
        if constexpr (std::is_same_v<T, hello_ok_frame>)
          return x.session_id == y.session_id && x.reconnect_token == y.reconnect_token &&
                 x.server_version == y.server_version;
        else if constexpr (std::is_same_v<T, hello_err_frame>) return x.code == y.code && x.message == y.message;
        else if constexpr (std::is_same_v<T, tool_ok_frame>)
          return x.request_id == y.request_id && x.result == y.result;
        else if constexpr (std::is_same_v<T, tool_err_frame>)
          return x.request_id == y.request_id && x.code == y.code && x.message == y.message && x.details == y.details;
        else if constexpr (std::is_same_v<T, room_message_frame>)
          return x.room == y.room && x.seq == y.seq && x.message_id == y.message_id &&
                 x.from_nickname == y.from_nickname && x.body == y.body && x.sent_at == y.sent_at &&
                 x.from_kind == y.from_kind && x.to == y.to;
        else if constexpr (std::is_same_v<T, room_event_frame>)
          return x.room == y.room && x.kind == y.kind && x.fields == y.fields;
        else return x.code == y.code && x.message == y.message;
      },
      a);
}

// ---- what an accepted frame must satisfy ------------------------------------------------

void check_rules(const tool_args& args, std::string_view text) {
  std::visit(
      [&](const auto& a) {
        using T = std::decay_t<decltype(a)>;
        if constexpr (!std::is_same_v<T, list_rooms_args>)
          if (!check_room_slug("room", a.room)) fail("accepted a room that is not a slug", text);
        if constexpr (std::is_same_v<T, join_room_args>)
          if (a.nickname && !check_nickname("nickname", *a.nickname)) fail("accepted a bad nickname", text);
        if constexpr (std::is_same_v<T, send_message_args>) {
          if (!check_body(a.body)) fail("accepted a bad body", text);
          if (a.client_msg_id && !check_client_msg_id(*a.client_msg_id)) fail("accepted a bad clientMsgId", text);
          if (a.to && !check_nickname("to", *a.to)) fail("accepted a bad direct-message recipient", text);
        }
        if constexpr (std::is_same_v<T, join_room_args>)
          if (a.invite && !check_invite_code(*a.invite)) fail("accepted a bad invite", text);
        if constexpr (std::is_same_v<T, create_room_args>)
          if (a.nickname && !check_nickname("nickname", *a.nickname)) fail("accepted a bad nickname", text);
        if constexpr (std::is_same_v<T, invite_args>) {
          if (a.max_uses && !check_count("maxUses", *a.max_uses, max_invite_uses)) fail("accepted a bad maxUses", text);
          if (a.expires_in_s && !check_count("expiresInS", *a.expires_in_s, max_invite_lifetime_s))
            fail("accepted a bad expiresInS", text);
          if (a.role == member_role::owner) fail("accepted an invite for owners", text);
        }
        if constexpr (std::is_same_v<T, member_action_args> || std::is_same_v<T, set_role_args>)
          if (!check_nickname("nickname", a.nickname)) fail("accepted a bad nickname", text);
        if constexpr (std::is_same_v<T, knock_args>) {
          if (a.nickname && !check_nickname("nickname", *a.nickname)) fail("accepted a bad nickname", text);
          if (a.note && !check_knock_note(*a.note)) fail("accepted a bad knock note", text);
        }
        if constexpr (std::is_same_v<T, knock_answer_args>)
          if (!check_knock_id(a.knock_id)) fail("accepted a bad knockId", text);
        if constexpr (std::is_same_v<T, list_rooms_args>) {
          if (a.limit && !check_limit(*a.limit, max_list_rooms_limit)) fail("accepted a bad list_rooms limit", text);
          if (a.cursor && !check_room_cursor(*a.cursor)) fail("accepted a bad list_rooms cursor", text);
        }
        if constexpr (std::is_same_v<T, who_is_here_args>) {
          if (a.limit && !check_limit(*a.limit, max_who_is_here_limit)) fail("accepted a bad who_is_here limit", text);
          if (a.cursor && !parse_member_cursor(*a.cursor)) fail("accepted a bad who_is_here cursor", text);
        }
      },
      args);
}

void check_ack_fast_path(std::string_view text) {
  const auto fast = decode_canonical_ack(text);
  if (!fast) return;  // the full decoder decides alone
  const auto full = detail::decode_client_frame_parsed(text, default_max_body_bytes);
  const ack_frame* a = full ? std::get_if<ack_frame>(&*full) : nullptr;
  if (!a || a->room != fast->room || a->seq != fast->seq || a->direct != fast->direct)
    fail("the canonical-ack fast path disagrees with the full decoder", text);
}

void check_client_frame(std::string_view text) {
  check_ack_fast_path(text);
  auto frame = decode_client_frame(text);
  if (!frame) {
    const frame_error& e = frame.error();
    if (e.request_id) {
      if (e.err.code != error_code::invalid_argument)
        fail("an error under a requestId that is not InvalidArgument", text);
      if (e.request_id->size() > max_request_id_length) fail("an error under an over-long requestId", text);
    } else if (e.err.code != error_code::bad_frame) {
      fail("an error without a requestId that is not BadFrame", text);
    }
    if (e.err.message.empty()) fail("an error without a message", text);
    return;
  }
  std::string again;
  if (const auto* ack = std::get_if<ack_frame>(&*frame)) {
    if (!validate_room_slug(ack->room)) fail("accepted an ack for a room that is not a slug", text);
    if (ack->seq > detail::max_wire_integer) fail("accepted an ack past 2^53-1", text);
    again = encode_ack(*ack);
  } else {
    const auto& request = std::get<tool_request>(*frame);
    if (request.request_id.size() > max_request_id_length) fail("accepted an over-long requestId", text);
    check_rules(request.args, text);
    again = encode_tool_request(request);
  }
  auto round = decode_client_frame(again);
  if (!round || !equal(*round, *frame)) fail("a client frame does not survive re-encoding", again);
}

void check_hello(std::string_view text) {
  auto hello = decode_hello(text);
  if (!hello) {
    if (hello.error().code != error_code::bad_handshake_frame)
      fail("a refused hello that is not BadHandshakeFrame", text);
    return;
  }
  const auto& h = *hello;
  if (h.client_version.empty() || h.client_version.size() > max_client_version_length)
    fail("accepted a bad clientVersion", text);
  if (h.auth_token && (h.auth_token->empty() || h.auth_token->size() > max_auth_token_length))
    fail("accepted a bad authToken", text);
  if (h.resume) {
    const auto& r = *h.resume;
    if (r.session_id.empty() || r.session_id.size() > max_session_id_length) fail("accepted a bad sessionId", text);
    if (r.reconnect_token.size() < min_reconnect_token_length || r.reconnect_token.size() > max_reconnect_token_length)
      fail("accepted a bad reconnectToken", text);
    for (const auto& [room, seq] : r.last_acked_seq_by_room)
      if (!validate_room_slug(room) || seq > detail::max_wire_integer) fail("accepted a bad lastAckedSeqByRoom", text);
    for (const auto& [room, seq] : r.last_acked_direct_seq_by_room)
      if (!validate_room_slug(room) || seq > detail::max_wire_integer)
        fail("accepted a bad lastAckedDirectSeqByRoom", text);
  }
  const std::string again = encode_hello(h);
  auto round = decode_hello(again);
  if (!round || !equal(*round, h)) fail("a hello does not survive re-encoding", again);
}

// Server frames whose error code we do not know cannot come from our encoders: they only decode.
std::optional<std::string> encode_server(const server_frame& frame) {
  return std::visit(
      [](const auto& f) -> std::optional<std::string> {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, hello_ok_frame>) {
          return encode_hello_ok(f);
        } else if constexpr (std::is_same_v<T, hello_err_frame>) {
          auto code = error_code_from_string(f.code);
          if (!code) return std::nullopt;
          return encode_hello_err(error{*code, f.message, nullptr});
        } else if constexpr (std::is_same_v<T, tool_ok_frame>) {
          return encode_tool_ok(f.request_id, f.result);
        } else if constexpr (std::is_same_v<T, tool_err_frame>) {
          auto code = error_code_from_string(f.code);
          if (!code) return std::nullopt;
          return encode_tool_err(f.request_id, error{*code, f.message, f.details});
        } else if constexpr (std::is_same_v<T, room_message_frame>) {
          return f.to ? encode_direct_message(f) : encode_room_message(f);
        } else if constexpr (std::is_same_v<T, room_event_frame>) {
          return encode_room_event(f);
        } else {
          auto code = error_code_from_string(f.code);
          if (!code) return std::nullopt;
          return encode_system_error(error{*code, f.message, nullptr});
        }
      },
      frame);
}

void check_server_frame(std::string_view text) {
  auto frame = decode_server_frame(text);
  if (!frame) {
    if (frame.error().code != error_code::bad_frame) fail("a refused server frame that is not BadFrame", text);
    return;
  }
  if (const auto* m = std::get_if<room_message_frame>(&*frame); m && m->seq > detail::max_wire_integer)
    fail("accepted a seq past 2^53-1", text);
  const auto again = encode_server(*frame);
  if (!again) return;
  auto round = decode_server_frame(*again);
  if (!round || !equal(*round, *frame)) fail("a server frame does not survive re-encoding", *again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_client_frame(text);
  check_hello(text);
  check_server_frame(text);
  return 0;
}
