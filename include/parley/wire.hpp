// SPDX-License-Identifier: MIT
// The JSON wire frames of the Parley protocol, both directions: typed structs, complete validation, encoding.
//
// One frame per WebSocket text message, a JSON object discriminated by `_tag`.
// Unknown extra fields are ignored (as the reference's schemas do), so either side
// may add fields; missing or mistyped known fields are errors. docs/protocol.md is
// the normative description.
#pragma once

#include "arguments.hpp"
#include "error.hpp"
#include "utf8.hpp"

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace parley {

using json = nlohmann::json;

// Whether a member is a person (the server's web page, or any client that says so) or
// an agent. Our addition: hello's optional clientKind sets it, and who_is_here's
// `members` and room.message's `fromKind` report it; the reference ignores both.
enum class member_kind { agent, person };

[[nodiscard]] constexpr std::string_view to_string(member_kind k) noexcept {
  return k == member_kind::person ? "person" : "agent";
}

// Rooms people control (our addition): a room is public (anyone may join, as in the
// reference) or private (an invite, or an owner's approval of a knock); each member has a role.
enum class room_visibility { public_room, private_room };
enum class member_role { owner, member, watcher };

[[nodiscard]] constexpr std::string_view to_string(room_visibility v) noexcept {
  return v == room_visibility::private_room ? "private" : "public";
}
[[nodiscard]] constexpr std::string_view to_string(member_role r) noexcept {
  return r == member_role::owner ? "owner" : r == member_role::watcher ? "watcher" : "member";
}
[[nodiscard]] inline std::optional<member_role> parse_member_role(std::string_view s) noexcept {
  if (s == "owner") return member_role::owner;
  if (s == "member") return member_role::member;
  if (s == "watcher") return member_role::watcher;
  return std::nullopt;
}

// ---- client → server ------------------------------------------------------

struct resume_block {
  std::string session_id;
  std::string reconnect_token;
  std::map<std::string, std::uint64_t, std::less<>> last_acked_seq_by_room;
  // Our addition: the same for each room's direct messages, which have seqs of their own.
  std::map<std::string, std::uint64_t, std::less<>> last_acked_direct_seq_by_room{};
};

struct hello_frame {
  std::string client_version;
  std::optional<std::string> auth_token;
  std::optional<resume_block> resume;
  member_kind client_kind = member_kind::agent;  // "clientKind", our addition
  bool direct_messages = false;  // "features" holds "directMessages": the client can take them (our addition)
};

struct join_room_args {
  std::string room;
  std::optional<std::string> nickname;
  std::optional<std::string> invite{};  // a private room's invite code: our addition
};
struct leave_room_args {
  std::string room;
};
// Paging is parley's addition: without a limit a page holds at most the default of
// arguments.hpp, and the answer carries nextCursor when more remain.
struct list_rooms_args {
  std::optional<std::uint32_t> limit{};  // 1..max_list_rooms_limit
  std::optional<std::string> cursor{};   // the nextCursor of the previous page
};
struct send_message_args {
  std::string room;
  std::string body;
  std::optional<std::string> client_msg_id;  // parley's addition: the idempotency key
  std::optional<std::string> to{};           // parley's addition: a direct message to this member only
};
struct who_is_here_args {
  std::string room;
  std::optional<std::uint32_t> limit{};  // 1..max_who_is_here_limit
  std::optional<std::string> cursor{};   // the nextCursor of the previous page
};

struct create_room_args {
  std::string room;
  room_visibility visibility = room_visibility::public_room;
  std::optional<std::string> nickname{};
};
struct invite_args {
  std::string room;
  std::optional<std::uint32_t> max_uses{};     // 1..max_invite_uses; none: unlimited
  std::optional<std::uint32_t> expires_in_s{};  // 1..max_invite_lifetime_s; none: a day
  member_role role = member_role::member;       // member or watcher
};
// kick, ban and unban: one member of a room, named by nickname.
enum class member_action { kick, ban, unban };
struct member_action_args {
  std::string room;
  std::string nickname;
  member_action action = member_action::kick;
};
struct set_role_args {
  std::string room;
  std::string nickname;
  member_role role = member_role::member;
};
struct knock_args {
  std::string room;
  std::optional<std::string> nickname{};
  std::optional<std::string> note{};  // 1..max_knock_note_length characters
};
// approve and deny: an owner's answer to one knock.
struct knock_answer_args {
  std::string room;
  std::string knock_id;
  bool approve = false;
};

using tool_args = std::variant<join_room_args, leave_room_args, list_rooms_args, send_message_args, who_is_here_args,
                               create_room_args, invite_args, member_action_args, set_role_args, knock_args,
                               knock_answer_args>;

struct tool_request {
  std::string request_id;
  tool_args args;
};

struct ack_frame {
  std::string room;
  std::uint64_t seq = 0;
  bool direct = false;  // our addition: acks the room's direct messages, whose seqs are their own
};

using client_frame = std::variant<tool_request, ack_frame>;

// A client frame that cannot be served. With a request id it is answered by
// `tool.err` under that id; without one, by `system.error`.
struct frame_error {
  error err;
  std::optional<std::string> request_id;
};

// ---- tool results ---------------------------------------------------------

struct join_room_result {
  std::string room;
  std::string nickname;
  std::size_t members_count = 0;
  member_role role = member_role::member;                      // our addition
  room_visibility visibility = room_visibility::public_room;   // our addition
};
struct leave_room_result {
  std::string room;
};
struct joined_room {
  std::string name;
  std::string nickname;
  std::size_t members_count = 0;
  member_role role = member_role::member;                     // our addition
  room_visibility visibility = room_visibility::public_room;  // our addition
};
struct available_room {
  std::string name;
  std::size_t members_count = 0;
  room_visibility visibility = room_visibility::public_room;  // our addition: private only for one admitted to it
};
struct list_rooms_result {
  std::vector<joined_room> joined;
  std::vector<available_room> available;
  std::optional<std::string> next_cursor{};  // set when rooms after this page remain
};
struct send_message_result {
  std::string room;
  std::uint64_t seq = 0;
  std::string message_id;
  std::string sent_at;
  std::optional<std::string> to{};  // a direct message's recipient; seq is then in its direct stream
};
struct member_entry {
  std::string nickname;
  member_kind kind = member_kind::agent;
  member_role role = member_role::member;
};
struct who_is_here_result {
  std::string room;
  std::vector<std::string> nicknames;
  std::optional<std::string> next_cursor{};  // set when members after this page remain
  std::vector<member_entry> members{};       // the same members with their kind: our addition
};

struct invite_result {
  std::string room;
  std::string code;
  std::string expires_at;
  member_role role = member_role::member;
  std::optional<std::uint32_t> max_uses{};
};
struct knock_result {
  std::string room;
  std::string knock_id;
};
struct knock_answer_result {
  std::string room;
  std::string knock_id;
  std::string nickname;  // the knocker's nickname in the room (approve) or the one it asked for (deny)
};
inline void to_json(json& j, const knock_result& r) {
  j = json{{"status", "pending"}, {"room", r.room}, {"knockId", r.knock_id}};
}
inline void to_json(json& j, const knock_answer_result& r) {
  j = json{{"room", r.room}, {"knockId", r.knock_id}, {"nickname", r.nickname}};
}
struct member_action_result {
  std::string room;
  std::string nickname;
};
struct set_role_result {
  std::string room;
  std::string nickname;
  member_role role = member_role::member;
};

inline void to_json(json& j, const join_room_result& r) {
  j = json{{"room", r.room},
           {"nickname", r.nickname},
           {"membersCount", r.members_count},
           {"role", to_string(r.role)},
           {"visibility", to_string(r.visibility)}};
}
inline void to_json(json& j, const invite_result& r) {
  j = json{{"room", r.room}, {"code", r.code}, {"expiresAt", r.expires_at}, {"role", to_string(r.role)}};
  if (r.max_uses) j["maxUses"] = *r.max_uses;
}
inline void to_json(json& j, const member_action_result& r) { j = json{{"room", r.room}, {"nickname", r.nickname}}; }
inline void to_json(json& j, const set_role_result& r) {
  j = json{{"room", r.room}, {"nickname", r.nickname}, {"role", to_string(r.role)}};
}
inline void to_json(json& j, const leave_room_result& r) { j = json{{"room", r.room}}; }
inline void to_json(json& j, const list_rooms_result& r) {
  json joined = json::array();
  // visibility appears only on a private room, to keep the worst-case page within a message.
  for (const auto& x : r.joined) {
    json entry{{"name", x.name}, {"nickname", x.nickname}, {"membersCount", x.members_count}, {"role", to_string(x.role)}};
    if (x.visibility == room_visibility::private_room) entry["visibility"] = "private";
    joined.push_back(std::move(entry));
  }
  json available = json::array();
  for (const auto& x : r.available) {
    json entry{{"name", x.name}, {"membersCount", x.members_count}};
    if (x.visibility == room_visibility::private_room) entry["visibility"] = "private";
    available.push_back(std::move(entry));
  }
  j = json{{"joined", std::move(joined)}, {"available", std::move(available)}};
  if (r.next_cursor) j["nextCursor"] = *r.next_cursor;
}
inline void to_json(json& j, const send_message_result& r) {
  j = json{{"room", r.room}, {"seq", r.seq}, {"messageId", r.message_id}, {"sentAt", r.sent_at}};
  if (r.to) j["to"] = *r.to;
}
inline void to_json(json& j, const who_is_here_result& r) {
  json members = json::array();
  for (const auto& m : r.members)
    members.push_back(json{{"nickname", m.nickname}, {"kind", to_string(m.kind)}, {"role", to_string(m.role)}});
  j = json{{"room", r.room}, {"nicknames", r.nicknames}, {"members", std::move(members)}};
  if (r.next_cursor) j["nextCursor"] = *r.next_cursor;
}

// ---- server → client ------------------------------------------------------

struct hello_ok_frame {
  std::string session_id;
  std::string reconnect_token;
  std::string server_version;
};
struct hello_err_frame {
  std::string code;  // a string, not error_code: a newer server may send codes we do not know
  std::string message;
};
struct tool_ok_frame {
  std::string request_id;
  json result;
};
struct tool_err_frame {
  std::string request_id;
  std::string code;
  std::string message;
  json details;  // null when absent
};
struct room_message_frame {
  std::string room;
  std::uint64_t seq = 0;
  std::string message_id;
  std::string from_nickname;
  std::string body;
  std::string sent_at;
  member_kind from_kind = member_kind::agent;  // "fromKind", our addition; absent reads as agent
  std::optional<std::string> to{};             // a direct message: the recipient's own nickname; seq is direct
};
struct system_error_frame {
  std::string code;
  std::string message;
};
// Something that happened to the recipient in a room, our addition: "kicked", "banned",
// "role" (its role changed; `role`). `fields` holds the kind's own fields.
struct room_event_frame {
  std::string room;
  std::string kind;
  json fields = json::object();
};

using server_frame = std::variant<hello_ok_frame, hello_err_frame, tool_ok_frame, tool_err_frame, room_message_frame,
                                  system_error_frame, room_event_frame>;

// ---- decoding helpers -----------------------------------------------------

namespace detail {

// Seqs travel as JSON numbers; above 2^53 a JavaScript peer would lose precision.
inline constexpr std::uint64_t max_wire_integer = (std::uint64_t{1} << 53) - 1;

// Frames nest a few levels at most. A peer's value nested thousands deep would parse
// (the parser keeps its own stack) and then overflow the call stack when copied.
inline constexpr int max_frame_nesting = 64;

inline bool nesting_within(std::string_view text, int max_depth) noexcept {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

inline std::optional<json> parse_object(std::string_view text) {
  if (!nesting_within(text, max_frame_nesting)) return std::nullopt;
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

inline const std::string* tag_of(const json& j) {
  auto it = j.find("_tag");
  return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

// Reads fields of one frame and turns the first problem into an InvalidArgumentError.
class field_reader {
 public:
  explicit field_reader(const json& object) : object_(object) {}

  const json* find(std::string_view name) const {
    auto it = object_.find(name);
    return it == object_.end() ? nullptr : &*it;
  }

  result<std::string> string(std::string_view name) const {
    const json* v = find(name);
    if (!v) return tl::unexpected(invalid_argument(name, "required", std::string(name) + " is required"));
    if (!v->is_string()) return tl::unexpected(invalid_argument(name, "type string", std::string(name) + " must be a string"));
    return v->get<std::string>();
  }

  result<std::optional<std::string>> optional_string(std::string_view name) const {
    const json* v = find(name);
    if (!v) return std::optional<std::string>{};
    if (!v->is_string()) return tl::unexpected(invalid_argument(name, "type string", std::string(name) + " must be a string"));
    return std::optional<std::string>(v->get<std::string>());
  }

  result<std::uint64_t> seq(std::string_view name) const {
    const json* v = find(name);
    if (!v) return tl::unexpected(invalid_argument(name, "required", std::string(name) + " is required"));
    return read_seq(name, *v);
  }

  // An optional `limit`: a JSON integer (not 2.0, not a string) from 1 to `max`.
  result<std::optional<std::uint32_t>> optional_limit(std::uint32_t max) const {
    const json* v = find("limit");
    if (!v) return std::optional<std::uint32_t>{};
    if (!v->is_number_unsigned()) {
      if (v->is_number_integer()) return tl::unexpected(check_limit(0, max).error());
      return tl::unexpected(invalid_argument("limit", "integer 1.." + std::to_string(max),
                                             "limit must be an integer from 1 to " + std::to_string(max)));
    }
    if (auto ok = check_limit(v->get<std::uint64_t>(), max); !ok) return tl::unexpected(ok.error());
    return std::optional<std::uint32_t>(static_cast<std::uint32_t>(v->get<std::uint64_t>()));
  }

  // An optional count: a JSON integer from 1 to `max`.
  result<std::optional<std::uint32_t>> optional_count(std::string_view name, std::uint32_t max) const {
    const json* v = find(name);
    if (!v) return std::optional<std::uint32_t>{};
    if (!v->is_number_unsigned() || v->get<std::uint64_t>() < 1 || v->get<std::uint64_t>() > max)
      return tl::unexpected(invalid_argument(name, "integer 1.." + std::to_string(max),
                                             std::string(name) + " must be an integer from 1 to " + std::to_string(max)));
    return std::optional<std::uint32_t>(static_cast<std::uint32_t>(v->get<std::uint64_t>()));
  }

  static result<std::uint64_t> read_seq(std::string_view name, const json& v) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() <= max_wire_integer) return v.get<std::uint64_t>();
    return tl::unexpected(invalid_argument(name, "integer 0..2^53-1", std::string(name) + " must be a non-negative integer"));
  }

 private:
  const json& object_;
};

inline result<tool_args> decode_tool_args(std::string_view tag, const field_reader& f, std::size_t max_body_bytes) {
  auto room = [&]() -> result<std::string> {
    auto r = f.string("room");
    if (!r) return r;
    if (auto ok = check_room_slug("room", *r); !ok) return tl::unexpected(ok.error());
    return r;
  };
  auto nickname = [&]() -> result<std::optional<std::string>> {
    auto nick = f.optional_string("nickname");
    if (!nick) return nick;
    if (*nick)
      if (auto ok = check_nickname("nickname", **nick); !ok) return tl::unexpected(ok.error());
    return nick;
  };
  auto target = [&]() -> result<std::string> {
    auto nick = f.string("nickname");
    if (!nick) return nick;
    if (auto ok = check_nickname("nickname", *nick); !ok) return tl::unexpected(ok.error());
    return nick;
  };
  auto role = [&](std::string_view allowed) -> result<std::optional<member_role>> {
    auto text = f.optional_string("role");
    if (!text) return tl::unexpected(text.error());
    if (!*text) return std::optional<member_role>{};
    const auto parsed = parse_member_role(**text);
    if (!parsed || std::string(allowed).find(std::string(to_string(*parsed))) == std::string::npos)
      return tl::unexpected(invalid_argument("role", std::string("one of ") + std::string(allowed),
                                             "role must be one of " + std::string(allowed)));
    return parsed;
  };
  if (tag == "tool.join_room") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto nick = nickname();
    if (!nick) return tl::unexpected(nick.error());
    auto invite = f.optional_string("invite");
    if (!invite) return tl::unexpected(invite.error());
    if (*invite)
      if (auto ok = check_invite_code(**invite); !ok) return tl::unexpected(ok.error());
    return join_room_args{std::move(*r), std::move(*nick), std::move(*invite)};
  }
  if (tag == "tool.create_room") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto visibility = f.string("visibility");
    if (!visibility) return tl::unexpected(visibility.error());
    if (*visibility != "public" && *visibility != "private")
      return tl::unexpected(
          invalid_argument("visibility", "one of public, private", "visibility must be \"public\" or \"private\""));
    auto nick = nickname();
    if (!nick) return tl::unexpected(nick.error());
    return create_room_args{std::move(*r),
                            *visibility == "private" ? room_visibility::private_room : room_visibility::public_room,
                            std::move(*nick)};
  }
  if (tag == "tool.invite") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto uses = f.optional_count("maxUses", max_invite_uses);
    if (!uses) return tl::unexpected(uses.error());
    auto lifetime = f.optional_count("expiresInS", max_invite_lifetime_s);
    if (!lifetime) return tl::unexpected(lifetime.error());
    auto invited = role("member, watcher");
    if (!invited) return tl::unexpected(invited.error());
    return invite_args{std::move(*r), *uses, *lifetime, invited->value_or(member_role::member)};
  }
  if (tag == "tool.kick" || tag == "tool.ban" || tag == "tool.unban") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto nick = target();
    if (!nick) return tl::unexpected(nick.error());
    const member_action action =
        tag == "tool.kick" ? member_action::kick : tag == "tool.ban" ? member_action::ban : member_action::unban;
    return member_action_args{std::move(*r), std::move(*nick), action};
  }
  if (tag == "tool.knock") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto nick = nickname();
    if (!nick) return tl::unexpected(nick.error());
    auto note = f.optional_string("note");
    if (!note) return tl::unexpected(note.error());
    if (*note)
      if (auto ok = check_knock_note(**note); !ok) return tl::unexpected(ok.error());
    return knock_args{std::move(*r), std::move(*nick), std::move(*note)};
  }
  if (tag == "tool.approve" || tag == "tool.deny") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto id = f.string("knockId");
    if (!id) return tl::unexpected(id.error());
    if (auto ok = check_knock_id(*id); !ok) return tl::unexpected(ok.error());
    return knock_answer_args{std::move(*r), std::move(*id), tag == "tool.approve"};
  }
  if (tag == "tool.set_role") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto nick = target();
    if (!nick) return tl::unexpected(nick.error());
    auto new_role = role("owner, member, watcher");
    if (!new_role) return tl::unexpected(new_role.error());
    if (!*new_role) return tl::unexpected(invalid_argument("role", "required", "role is required"));
    return set_role_args{std::move(*r), std::move(*nick), **new_role};
  }
  if (tag == "tool.leave_room") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    return leave_room_args{std::move(*r)};
  }
  if (tag == "tool.list_rooms") {
    auto limit = f.optional_limit(max_list_rooms_limit);
    if (!limit) return tl::unexpected(limit.error());
    auto cursor = f.optional_string("cursor");
    if (!cursor) return tl::unexpected(cursor.error());
    if (*cursor)
      if (auto ok = check_room_cursor(**cursor); !ok) return tl::unexpected(ok.error());
    return list_rooms_args{*limit, std::move(*cursor)};
  }
  if (tag == "tool.send_message") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto body = f.string("body");
    if (!body) return tl::unexpected(body.error());
    if (auto ok = check_body(*body, max_body_bytes); !ok) return tl::unexpected(ok.error());
    auto key = f.optional_string("clientMsgId");
    if (!key) return tl::unexpected(key.error());
    if (*key)
      if (auto ok = check_client_msg_id(**key); !ok) return tl::unexpected(ok.error());
    auto to = f.optional_string("to");
    if (!to) return tl::unexpected(to.error());
    if (*to)
      if (auto ok = check_nickname("to", **to); !ok) return tl::unexpected(ok.error());
    return send_message_args{std::move(*r), std::move(*body), std::move(*key), std::move(*to)};
  }
  if (tag == "tool.who_is_here") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto limit = f.optional_limit(max_who_is_here_limit);
    if (!limit) return tl::unexpected(limit.error());
    auto cursor = f.optional_string("cursor");
    if (!cursor) return tl::unexpected(cursor.error());
    if (*cursor)
      if (auto ok = parse_member_cursor(**cursor); !ok) return tl::unexpected(ok.error());
    return who_is_here_args{std::move(*r), *limit, std::move(*cursor)};
  }
  return make_error(error_code::bad_frame, "unknown frame tag");
}

}  // namespace detail

// ---- client frames: decode (server role) ----------------------------------

inline constexpr std::size_t max_client_version_length = 64;
inline constexpr std::size_t max_auth_token_length = 256;
inline constexpr std::size_t max_session_id_length = 64;
inline constexpr std::size_t min_reconnect_token_length = 32;
inline constexpr std::size_t max_reconnect_token_length = 128;

// The first frame of a connection. Any problem is a BadHandshakeFrameError whose
// message says what was wrong.
[[nodiscard]] inline result<hello_frame> decode_hello(std::string_view text) {
  auto bad = [](std::string why) { return make_error(error_code::bad_handshake_frame, std::move(why)); };
  auto parsed = detail::parse_object(text);
  if (!parsed) return bad("the first frame must be a JSON object");
  const json& j = *parsed;
  const std::string* tag = detail::tag_of(j);
  if (!tag || *tag != "hello") return bad("the first frame must be a hello frame (_tag \"hello\")");
  detail::field_reader f(j);
  hello_frame hello;
  auto version = f.string("clientVersion");
  if (!version) return bad(version.error().message);
  if (version->empty() || utf8_length(*version) > max_client_version_length)
    return bad("clientVersion must be 1 to 64 characters");
  hello.client_version = std::move(*version);
  auto token = f.optional_string("authToken");
  if (!token) return bad(token.error().message);
  if (*token && ((*token)->empty() || (*token)->size() > max_auth_token_length))
    return bad("authToken must be 1 to 256 characters");
  hello.auth_token = std::move(*token);
  auto kind = f.optional_string("clientKind");
  if (!kind) return bad(kind.error().message);
  if (*kind) {
    if (**kind == "person") hello.client_kind = member_kind::person;
    else if (**kind != "agent") return bad("clientKind must be \"agent\" or \"person\"");
  }
  // Unknown features are ignored, so a newer client may name more.
  if (const json* features = f.find("features")) {
    if (!features->is_array() || features->size() > 16) return bad("features must be an array of at most 16 strings");
    for (const json& feature : *features) {
      if (!feature.is_string()) return bad("features must be an array of at most 16 strings");
      if (feature == "directMessages") hello.direct_messages = true;
    }
  }
  if (const json* r = f.find("resume")) {
    if (!r->is_object()) return bad("resume must be an object");
    detail::field_reader rf(*r);
    resume_block resume;
    auto sid = rf.string("sessionId");
    if (!sid) return bad("resume." + sid.error().message);
    if (sid->empty() || utf8_length(*sid) > max_session_id_length) return bad("resume.sessionId must be 1 to 64 characters");
    auto rt = rf.string("reconnectToken");
    if (!rt) return bad("resume." + rt.error().message);
    if (const std::size_t n = utf8_length(*rt); n < min_reconnect_token_length || n > max_reconnect_token_length)
      return bad("resume.reconnectToken must be 32 to 128 characters");
    const json* acks = rf.find("lastAckedSeqByRoom");
    if (!acks || !acks->is_object()) return bad("resume.lastAckedSeqByRoom must be an object");
    for (const auto& [room, seq] : acks->items()) {
      if (!validate_room_slug(room)) return bad("resume.lastAckedSeqByRoom has a key that is not a room slug");
      auto s = detail::field_reader::read_seq("seq", seq);
      if (!s) return bad("resume.lastAckedSeqByRoom values must be non-negative integers");
      resume.last_acked_seq_by_room.emplace(room, *s);
    }
    if (const json* direct = rf.find("lastAckedDirectSeqByRoom")) {
      if (!direct->is_object()) return bad("resume.lastAckedDirectSeqByRoom must be an object");
      for (const auto& [room, seq] : direct->items()) {
        if (!validate_room_slug(room)) return bad("resume.lastAckedDirectSeqByRoom has a key that is not a room slug");
        auto s = detail::field_reader::read_seq("seq", seq);
        if (!s) return bad("resume.lastAckedDirectSeqByRoom values must be non-negative integers");
        resume.last_acked_direct_seq_by_room.emplace(room, *s);
      }
    }
    resume.session_id = std::move(*sid);
    resume.reconnect_token = std::move(*rt);
    hello.resume = std::move(resume);
  }
  return hello;
}

namespace detail {

// decode_client_frame through nlohmann alone: what the canonical-ack fast path must agree with.
[[nodiscard]] inline tl::expected<client_frame, frame_error> decode_client_frame_parsed(std::string_view text,
                                                                                       std::size_t max_body_bytes) {
  auto bad = [](std::string why) {
    return tl::unexpected(frame_error{error{error_code::bad_frame, std::move(why), nullptr}, std::nullopt});
  };
  auto parsed = parse_object(text);
  if (!parsed) return bad("a frame must be a JSON object");
  const json& j = *parsed;
  const std::string* tag = tag_of(j);
  if (!tag) return bad("a frame must carry a string _tag");
  field_reader f(j);
  if (*tag == "ack") {
    auto room = f.string("room");
    if (!room || !validate_room_slug(*room)) return bad("ack.room must be a room slug");
    auto seq = f.seq("seq");
    if (!seq) return bad("ack.seq must be a non-negative integer");
    const json* direct = f.find("direct");
    if (direct && !direct->is_boolean()) return bad("ack.direct must be true or false");
    return ack_frame{std::move(*room), *seq, direct && direct->get<bool>()};
  }
  if (tag->rfind("tool.", 0) != 0) return bad("unknown frame _tag \"" + tag->substr(0, 64) + "\"");
  auto id = f.string("requestId");
  if (!id) return bad("a tool frame must carry a string requestId");
  if (utf8_length(*id) > max_request_id_length) return bad("requestId must be at most 128 characters");
  auto args = decode_tool_args(*tag, f, max_body_bytes);
  if (!args) {
    if (args.error().code == error_code::bad_frame) return bad("unknown frame _tag \"" + tag->substr(0, 64) + "\"");
    return tl::unexpected(frame_error{std::move(args.error()), std::move(*id)});
  }
  return tool_request{std::move(*id), std::move(*args)};
}

}  // namespace detail

// An ack as its room and seq, read in place.
struct ack_view {
  std::string_view room;
  std::uint64_t seq = 0;
  bool direct = false;
};

// Every receiver acks every message, so acks are most of what a server reads. This reads
// the compact form clients write — one flat object of "_tag":"ack", "room", "seq" and
// optionally "direct", in any order, no whitespace, no escapes — by scanning, without
// nlohmann and without allocating. It answers only when the text is such an ack and
// valid; anything else (other keys, whitespace, a bad room, a seq with a leading zero,
// a fraction or past 2^53-1, duplicates, trailing bytes) is nullopt, and the full
// decoder decides, so the two can never disagree (wire_test and wire_fuzz check it).
[[nodiscard]] inline std::optional<ack_view> decode_canonical_ack(std::string_view text) noexcept {
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto eat = [&](std::string_view lit) {
    if (text.substr(i, lit.size()) != lit) return false;
    i += lit.size();
    return true;
  };
  if (!eat("{")) return std::nullopt;
  bool tag = false, room = false, seq = false, direct = false;
  ack_view out;
  for (;;) {
    if (eat("\"_tag\":\"ack\"")) {
      if (tag) return std::nullopt;
      tag = true;
    } else if (eat("\"room\":\"")) {
      if (room) return std::nullopt;
      room = true;
      const std::size_t start = i;
      while (i < n && ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9') || text[i] == '-')) ++i;
      out.room = text.substr(start, i - start);
      if (!eat("\"") || !validate_room_slug(out.room)) return std::nullopt;
    } else if (eat("\"seq\":")) {
      if (seq) return std::nullopt;
      seq = true;
      const std::size_t start = i;
      std::uint64_t v = 0;
      while (i < n && text[i] >= '0' && text[i] <= '9' && i - start < 17) v = v * 10 + static_cast<std::uint64_t>(text[i++] - '0');
      const std::size_t digits = i - start;
      if (digits == 0 || digits > 16 || (digits > 1 && text[start] == '0') || v > detail::max_wire_integer)
        return std::nullopt;
      out.seq = v;
    } else if (eat("\"direct\":")) {
      if (direct) return std::nullopt;
      direct = true;
      if (eat("true")) out.direct = true;
      else if (!eat("false")) return std::nullopt;
    } else {
      return std::nullopt;
    }
    if (eat(",")) continue;
    if (eat("}") && i == n && tag && room && seq) return out;
    return std::nullopt;
  }
}

// Every frame after hello. Bad arguments under a readable requestId come back with
// that id (answer: tool.err InvalidArgumentError); anything else is BadFrameError
// (answer: system.error). A body over `max_body_bytes` (hub_config::max_body_bytes on a
// server) is such a bad argument.
[[nodiscard]] inline tl::expected<client_frame, frame_error> decode_client_frame(
    std::string_view text, std::size_t max_body_bytes = default_max_body_bytes) {
  if (const auto a = decode_canonical_ack(text)) return ack_frame{std::string(a->room), a->seq, a->direct};
  return detail::decode_client_frame_parsed(text, max_body_bytes);
}

// ---- client frames: encode (client role) ----------------------------------

[[nodiscard]] inline std::string encode_hello(const hello_frame& h) {
  json j{{"_tag", "hello"}, {"clientVersion", h.client_version}};
  if (h.auth_token) j["authToken"] = *h.auth_token;
  if (h.client_kind == member_kind::person) j["clientKind"] = "person";
  if (h.direct_messages) j["features"] = json::array({"directMessages"});
  if (h.resume) {
    json acks = json::object();
    for (const auto& [room, seq] : h.resume->last_acked_seq_by_room) acks[room] = seq;
    j["resume"] = json{{"sessionId", h.resume->session_id},
                       {"reconnectToken", h.resume->reconnect_token},
                       {"lastAckedSeqByRoom", std::move(acks)}};
    if (!h.resume->last_acked_direct_seq_by_room.empty()) {
      json direct = json::object();
      for (const auto& [room, seq] : h.resume->last_acked_direct_seq_by_room) direct[room] = seq;
      j["resume"]["lastAckedDirectSeqByRoom"] = std::move(direct);
    }
  }
  return j.dump();
}

[[nodiscard]] inline std::string encode_tool_request(const tool_request& r) {
  json j = std::visit(
      [](const auto& a) -> json {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, join_room_args>) {
          json o{{"_tag", "tool.join_room"}, {"room", a.room}};
          if (a.nickname) o["nickname"] = *a.nickname;
          if (a.invite) o["invite"] = *a.invite;
          return o;
        } else if constexpr (std::is_same_v<T, create_room_args>) {
          json o{{"_tag", "tool.create_room"}, {"room", a.room}, {"visibility", to_string(a.visibility)}};
          if (a.nickname) o["nickname"] = *a.nickname;
          return o;
        } else if constexpr (std::is_same_v<T, invite_args>) {
          json o{{"_tag", "tool.invite"}, {"room", a.room}, {"role", to_string(a.role)}};
          if (a.max_uses) o["maxUses"] = *a.max_uses;
          if (a.expires_in_s) o["expiresInS"] = *a.expires_in_s;
          return o;
        } else if constexpr (std::is_same_v<T, member_action_args>) {
          const char* tag = a.action == member_action::kick ? "tool.kick" : a.action == member_action::ban ? "tool.ban" : "tool.unban";
          return json{{"_tag", tag}, {"room", a.room}, {"nickname", a.nickname}};
        } else if constexpr (std::is_same_v<T, set_role_args>) {
          return json{{"_tag", "tool.set_role"}, {"room", a.room}, {"nickname", a.nickname}, {"role", to_string(a.role)}};
        } else if constexpr (std::is_same_v<T, knock_args>) {
          json o{{"_tag", "tool.knock"}, {"room", a.room}};
          if (a.nickname) o["nickname"] = *a.nickname;
          if (a.note) o["note"] = *a.note;
          return o;
        } else if constexpr (std::is_same_v<T, knock_answer_args>) {
          return json{{"_tag", a.approve ? "tool.approve" : "tool.deny"}, {"room", a.room}, {"knockId", a.knock_id}};
        } else if constexpr (std::is_same_v<T, leave_room_args>) {
          return json{{"_tag", "tool.leave_room"}, {"room", a.room}};
        } else if constexpr (std::is_same_v<T, list_rooms_args>) {
          json o{{"_tag", "tool.list_rooms"}};
          if (a.limit) o["limit"] = *a.limit;
          if (a.cursor) o["cursor"] = *a.cursor;
          return o;
        } else if constexpr (std::is_same_v<T, send_message_args>) {
          json o{{"_tag", "tool.send_message"}, {"room", a.room}, {"body", a.body}};
          if (a.client_msg_id) o["clientMsgId"] = *a.client_msg_id;
          if (a.to) o["to"] = *a.to;
          return o;
        } else {
          json o{{"_tag", "tool.who_is_here"}, {"room", a.room}};
          if (a.limit) o["limit"] = *a.limit;
          if (a.cursor) o["cursor"] = *a.cursor;
          return o;
        }
      },
      r.args);
  j["requestId"] = r.request_id;
  return j.dump();
}

[[nodiscard]] inline std::string encode_ack(const ack_frame& a) {
  json j{{"_tag", "ack"}, {"room", a.room}, {"seq", a.seq}};
  if (a.direct) j["direct"] = true;
  return j.dump();
}

// ---- server frames: encode (server role) ----------------------------------

[[nodiscard]] inline std::string encode_hello_ok(const hello_ok_frame& f) {
  return json{{"_tag", "hello.ok"},
              {"sessionId", f.session_id},
              {"reconnectToken", f.reconnect_token},
              {"serverVersion", f.server_version}}
      .dump();
}

[[nodiscard]] inline std::string encode_hello_err(const error& e) {
  return json{{"_tag", "hello.err"}, {"code", std::string(to_string(e.code))}, {"message", e.message}}.dump();
}

[[nodiscard]] inline std::string encode_tool_ok(std::string_view request_id, json result) {
  return json{{"_tag", "tool.ok"}, {"requestId", std::string(request_id)}, {"result", std::move(result)}}.dump();
}

[[nodiscard]] inline std::string encode_tool_err(std::string_view request_id, const error& e) {
  json j{{"_tag", "tool.err"},
         {"requestId", std::string(request_id)},
         {"code", std::string(to_string(e.code))},
         {"message", e.message}};
  if (!e.details.is_null()) j["details"] = e.details;
  return j.dump();
}

[[nodiscard]] inline std::string encode_room_message(const room_message_frame& m) {
  return json{{"_tag", "room.message"}, {"room", m.room},   {"seq", m.seq},        {"messageId", m.message_id},
              {"fromNickname", m.from_nickname},         {"body", m.body}, {"sentAt", m.sent_at},
              {"fromKind", to_string(m.from_kind)}}
      .dump();
}

[[nodiscard]] inline std::string encode_direct_message(const room_message_frame& m) {
  json j{{"_tag", "room.message"}, {"room", m.room},     {"seq", m.seq},   {"messageId", m.message_id},
         {"fromNickname", m.from_nickname},              {"body", m.body}, {"sentAt", m.sent_at},
         {"fromKind", to_string(m.from_kind)}};
  if (m.to) j["to"] = *m.to;
  return j.dump();
}

[[nodiscard]] inline std::string encode_room_event(const room_event_frame& e) {
  json j = e.fields.is_object() ? e.fields : json::object();
  j["_tag"] = "room.event";
  j["room"] = e.room;
  j["kind"] = e.kind;
  return j.dump();
}

// `details`, when the error has any, is our addition: the reference reads system.error
// as {code, message} and ignores other fields.
[[nodiscard]] inline std::string encode_system_error(const error& e) {
  json j{{"_tag", "system.error"}, {"code", std::string(to_string(e.code))}, {"message", e.message}};
  if (!e.details.is_null()) j["details"] = e.details;
  return j.dump();
}

// ---- server frames: decode (client role) ----------------------------------

[[nodiscard]] inline result<server_frame> decode_server_frame(std::string_view text) {
  auto bad = [](std::string why) { return make_error(error_code::bad_frame, std::move(why)); };
  auto parsed = detail::parse_object(text);
  if (!parsed) return bad("a server frame must be a JSON object");
  const json& j = *parsed;
  const std::string* tag = detail::tag_of(j);
  if (!tag) return bad("a server frame must carry a string _tag");
  detail::field_reader f(j);
  auto str = [&](std::string_view name, std::string& out) -> bool {
    auto v = f.string(name);
    if (!v) return false;
    out = std::move(*v);
    return true;
  };
  if (*tag == "room.message") {
    room_message_frame m;
    auto seq = f.seq("seq");
    if (!seq || !str("room", m.room) || !str("messageId", m.message_id) || !str("fromNickname", m.from_nickname) ||
        !str("body", m.body) || !str("sentAt", m.sent_at))
      return bad("malformed room.message frame");
    m.seq = *seq;
    if (const json* kind = f.find("fromKind"); kind && *kind == "person") m.from_kind = member_kind::person;
    if (const json* to = f.find("to"); to && to->is_string()) m.to = to->get<std::string>();
    return m;
  }
  if (*tag == "room.event") {
    room_event_frame e;
    if (!str("room", e.room) || !str("kind", e.kind)) return bad("malformed room.event frame");
    for (const auto& [key, value] : j.items())
      if (key != "_tag" && key != "room" && key != "kind") e.fields[key] = value;
    return e;
  }
  if (*tag == "tool.ok") {
    tool_ok_frame t;
    const json* res = f.find("result");
    if (!str("requestId", t.request_id) || !res) return bad("malformed tool.ok frame");
    t.result = *res;
    return t;
  }
  if (*tag == "tool.err") {
    tool_err_frame t;
    if (!str("requestId", t.request_id) || !str("code", t.code) || !str("message", t.message))
      return bad("malformed tool.err frame");
    if (const json* d = f.find("details")) t.details = *d;
    return t;
  }
  if (*tag == "hello.ok") {
    hello_ok_frame h;
    if (!str("sessionId", h.session_id) || !str("reconnectToken", h.reconnect_token) ||
        !str("serverVersion", h.server_version))
      return bad("malformed hello.ok frame");
    return h;
  }
  if (*tag == "hello.err") {
    hello_err_frame h;
    if (!str("code", h.code) || !str("message", h.message)) return bad("malformed hello.err frame");
    return h;
  }
  if (*tag == "system.error") {
    system_error_frame s;
    if (!str("code", s.code) || !str("message", s.message)) return bad("malformed system.error frame");
    return s;
  }
  return bad("unknown server frame _tag \"" + tag->substr(0, 64) + "\"");
}

}  // namespace parley
