// SPDX-License-Identifier: MIT
// Serves decoded frames against a hub: hello/resume into a session, tool requests into tool.ok/tool.err frames.
#pragma once

#include "error.hpp"
#include "hub.hpp"
#include "version.hpp"
#include "wire.hpp"

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

// A clientVersion of the form MAJOR.MINOR.PATCH (an optional leading "v" allowed)
// must share our major; anything else is accepted, since the reference does not
// constrain the field's shape.
[[nodiscard]] inline bool client_version_compatible(std::string_view client_version) noexcept {
  std::string_view v = client_version;
  if (!v.empty() && (v.front() == 'v' || v.front() == 'V')) v.remove_prefix(1);
  if (v.empty() || !std::isdigit(static_cast<unsigned char>(v.front()))) return true;
  unsigned long major = 0;
  std::size_t i = 0;
  for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i) {
    major = major * 10 + static_cast<unsigned long>(v[i] - '0');
    if (major > 1000000) return false;
  }
  if (i == v.size() || v[i] != '.') return true;  // not semver-shaped
  return major == protocol_major;
}

struct hello_outcome {
  std::string frame;                         // hello.ok or hello.err, to send as is
  std::optional<session_grant> session;      // set on success
  std::optional<int> close_code;             // set on failure: close after sending `frame`
};

// `auth_failure` is the authenticator's verdict (the server's token store decides;
// the core only shapes the answer). Resume needs the reconnect token, not a bearer
// token: the session was authenticated when it began. `principal` is the label of the
// token a fresh session presented (empty: none), whose budget its room creations spend.
template <class Hub>
[[nodiscard]] hello_outcome serve_hello(Hub& h, const hello_frame& hello, const typename Hub::moment_type& now,
                                        const std::optional<error>& auth_failure = std::nullopt,
                                        std::string principal = {}) {
  auto refuse = [](const error& e) { return hello_outcome{encode_hello_err(e), std::nullopt, close_code_for(e.code)}; };
  if (!client_version_compatible(hello.client_version))
    return refuse(error{error_code::version_mismatch,
                        "client version " + hello.client_version + " is not compatible with server version " +
                            h.config().server_version,
                        nullptr});
  result<session_grant> grant = [&]() -> result<session_grant> {
    if (hello.resume) return h.resume_session(*hello.resume, now);
    if (auth_failure) return tl::unexpected(*auth_failure);
    return h.open_session(now, std::move(principal), hello.client_kind, hello.direct_messages);
  }();
  if (!grant) return refuse(grant.error());
  std::string ok = encode_hello_ok(hello_ok_frame{grant->session_id, grant->reconnect_token, h.config().server_version});
  return hello_outcome{std::move(ok), std::move(*grant), std::nullopt};
}

// Runs one tool request and encodes its answer; nullopt when the answer comes later, as
// a cluster node's send does (through the hub's outbox, once the bus has ordered it).
template <class Hub>
[[nodiscard]] std::optional<std::string> serve_tool_request(Hub& h, session_handle session, const tool_request& request,
                                             const typename Hub::moment_type& now) {
  auto answer = [&](auto&& r) -> std::optional<std::string> {
    if (r) return encode_tool_ok(request.request_id, json(*r));
    return encode_tool_err(request.request_id, r.error());
  };
  return std::visit(
      [&](const auto& args) -> std::optional<std::string> {
        using T = std::decay_t<decltype(args)>;
        if constexpr (std::is_same_v<T, join_room_args>) return answer(h.join_room(session, args, now));
        else if constexpr (std::is_same_v<T, leave_room_args>) return answer(h.leave_room(session, args, now));
        else if constexpr (std::is_same_v<T, list_rooms_args>) return answer(h.list_rooms(session, args));
        else if constexpr (std::is_same_v<T, send_message_args>) {
          if (!h.ordered_by_bus()) return answer(h.send_message(session, args, now));
          auto sent = h.send_message(session, args, now, request.request_id);
          if (!sent) return encode_tool_err(request.request_id, sent.error());
          if (!*sent) return std::nullopt;
          return encode_tool_ok(request.request_id, json(**sent));
        }
        else if constexpr (std::is_same_v<T, who_is_here_args>) return answer(h.who_is_here(session, args));
        else if constexpr (std::is_same_v<T, create_room_args>) return answer(h.create_room(session, args, now));
        else if constexpr (std::is_same_v<T, invite_args>) return answer(h.invite(session, args, now));
        else if constexpr (std::is_same_v<T, member_action_args>) return answer(h.act_on_member(session, args, now));
        else if constexpr (std::is_same_v<T, set_role_args>) return answer(h.set_role(session, args, now));
        else if constexpr (std::is_same_v<T, knock_args>) return answer(h.knock(session, args, now));
        else return answer(h.answer_knock(session, args, now));
      },
      request.args);
}

// Serves one post-hello text frame: a tool request's answer, nothing for an ack, or
// system.error for a frame that cannot be read.
template <class Hub>
[[nodiscard]] std::optional<std::string> serve_client_text(Hub& h, session_handle session, std::string_view text,
                                                           const typename Hub::moment_type& now) {
  // Most frames a server reads are acks in their compact form: read in place, no copy.
  if (const auto a = decode_canonical_ack(text)) {
    if (auto acked = h.ack(session, a->room, a->seq, a->direct); !acked) return encode_system_error(acked.error());
    return std::nullopt;
  }
  auto frame = detail::decode_client_frame_parsed(text, h.config().max_body_bytes);
  if (!frame) {
    if (frame.error().request_id) return encode_tool_err(*frame.error().request_id, frame.error().err);
    return encode_system_error(frame.error().err);
  }
  if (const auto* a = std::get_if<ack_frame>(&*frame)) {
    if (auto acked = h.ack(session, *a); !acked) return encode_system_error(acked.error());
    return std::nullopt;
  }
  return serve_tool_request(h, session, std::get<tool_request>(*frame), now);
}

}  // namespace parley
