// SPDX-License-Identifier: MIT
// What crosses the bus between servers for one room message, and how it is written there.
//
// In a cluster every server publishes the messages its sessions send to a shared,
// ordered log (tools/ uses a NATS JetStream stream, subject parley.room.<room>) and
// delivers every message it reads back from that log, its own included, to the members
// it serves. The log's order is the room's order and its sequence numbers are the
// room's seqs: strictly increasing, with gaps where other rooms' messages fall between.
// A server reading its own message back is how its sender learns the seq.
#pragma once

#include "arguments.hpp"
#include "error.hpp"
#include "wire.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace parley {

struct bus_message {
  std::string room;
  std::string message_id;  // UUIDv7 from the sending server: also the bus's de-duplication key
  std::string from_nickname;
  member_kind from_kind = member_kind::agent;
  std::string body;
  std::string sent_at;     // RFC 3339, the sending server's wall clock
  std::string node;        // the sending server's node id
  std::string session_id;  // the sending session: it gets no echo, on whichever server holds it

  friend bool operator==(const bus_message& a, const bus_message& b) {
    return a.room == b.room && a.message_id == b.message_id && a.from_nickname == b.from_nickname &&
           a.from_kind == b.from_kind && a.body == b.body && a.sent_at == b.sent_at && a.node == b.node &&
           a.session_id == b.session_id;
  }
};

[[nodiscard]] inline std::string encode_bus_message(const bus_message& m) {
  return nlohmann::json{{"room", m.room},   {"messageId", m.message_id}, {"fromNickname", m.from_nickname},
                        {"fromKind", std::string(to_string(m.from_kind))},
                        {"body", m.body},   {"sentAt", m.sent_at},       {"node", m.node},
                        {"session", m.session_id}}
      .dump();
}

// The log is shared with other servers (perhaps of another version) and anyone holding
// the bus's credentials: a record is checked as strictly as a client's frame, and one
// that fails is the caller's to log and skip, never to deliver.
[[nodiscard]] inline result<bus_message> decode_bus_message(std::string_view text,
                                                            std::size_t max_body_bytes = default_max_body_bytes) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(error_code::bad_frame, "a bus record is not a JSON object");
  auto text_field = [&](const char* name) -> result<std::string> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string())
      return make_error(error_code::bad_frame, std::string("a bus record lacks the string field ") + name);
    return it->get<std::string>();
  };
  bus_message m;
  for (auto [name, into] : {std::pair{"room", &m.room}, {"messageId", &m.message_id}, {"fromNickname", &m.from_nickname},
                            {"body", &m.body}, {"sentAt", &m.sent_at}, {"node", &m.node}, {"session", &m.session_id}}) {
    auto value = text_field(name);
    if (!value) return tl::unexpected(value.error());
    *into = std::move(*value);
  }
  if (auto ok = check_room_slug("room", m.room); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_nickname("fromNickname", m.from_nickname); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_body(m.body, max_body_bytes); !ok) return tl::unexpected(ok.error());
  auto kind = j.find("fromKind");
  if (kind != j.end()) {
    if (*kind == "person") m.from_kind = member_kind::person;
    else if (*kind != "agent") return make_error(error_code::bad_frame, "a bus record has an unknown fromKind");
  }
  return m;
}

}  // namespace parley
