// SPDX-License-Identifier: MIT
// Errors as values: a stable wire code, a sentence for humans, and optional structured details.
#pragma once

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace parley {

// The codes are the reference Parley's; their spelling on the wire is load-bearing.
enum class error_code {
  // hello.err
  auth_required,
  bad_token,
  token_revoked,
  version_mismatch,
  server_shutting_down,
  unknown_session,
  bad_reconnect_token,
  replay_buffer_overflow,
  bad_handshake_frame,
  // tool.err
  nickname_taken,
  rate_limited,
  not_in_room,
  internal,
  invalid_argument,  // parley's addition: bad arguments are answered under their requestId
  room_limit,        // parley's addition: a join that would create a room past --max-rooms
  // parley's additions for rooms people control (private rooms, roles, invites, bans)
  room_exists,     // create_room on a room that exists
  room_private,    // join_room on a private room without an invite
  invite_invalid,  // an invite that is unknown, expired or used up
  banned,          // the caller's principal is banned from the room
  forbidden,       // the caller's role does not allow it (a watcher sending, a member moderating)
  not_found,       // no such member, ban or room
  // system.error
  bad_frame,
};

namespace detail {
inline constexpr std::array<std::pair<error_code, std::string_view>, 22> error_code_names{{
    {error_code::auth_required, "AuthRequiredError"},
    {error_code::bad_token, "BadTokenError"},
    {error_code::token_revoked, "TokenRevokedError"},
    {error_code::version_mismatch, "VersionMismatchError"},
    {error_code::server_shutting_down, "ServerShuttingDownError"},
    {error_code::unknown_session, "UnknownSessionError"},
    {error_code::bad_reconnect_token, "BadReconnectTokenError"},
    {error_code::replay_buffer_overflow, "ReplayBufferOverflowError"},
    {error_code::bad_handshake_frame, "BadHandshakeFrameError"},
    {error_code::nickname_taken, "NicknameTakenError"},
    {error_code::rate_limited, "RateLimitedError"},
    {error_code::not_in_room, "NotInRoomError"},
    {error_code::internal, "InternalError"},
    {error_code::invalid_argument, "InvalidArgumentError"},
    {error_code::room_limit, "RoomLimitError"},
    {error_code::room_exists, "RoomExistsError"},
    {error_code::room_private, "RoomPrivateError"},
    {error_code::invite_invalid, "InviteInvalidError"},
    {error_code::banned, "BannedError"},
    {error_code::forbidden, "ForbiddenError"},
    {error_code::not_found, "NotFoundError"},
    {error_code::bad_frame, "BadFrameError"},
}};
}  // namespace detail

[[nodiscard]] constexpr std::string_view to_string(error_code code) noexcept {
  for (const auto& [c, name] : detail::error_code_names)
    if (c == code) return name;
  return "InternalError";
}

[[nodiscard]] inline std::optional<error_code> error_code_from_string(std::string_view name) noexcept {
  for (const auto& [c, n] : detail::error_code_names)
    if (n == name) return c;
  return std::nullopt;
}

// The WebSocket close code that follows each hello failure.
[[nodiscard]] constexpr int close_code_for(error_code code) noexcept {
  switch (code) {
    case error_code::auth_required:
    case error_code::bad_token:
    case error_code::token_revoked: return 4000;
    case error_code::unknown_session: return 4001;
    case error_code::bad_reconnect_token: return 4002;
    case error_code::replay_buffer_overflow: return 4003;
    case error_code::version_mismatch: return 4004;
    case error_code::server_shutting_down: return 1001;
    default: return 1002;
  }
}

struct error {
  error_code code = error_code::internal;
  std::string message;
  nlohmann::json details = nullptr;  // null when there are none

  friend bool operator==(const error& a, const error& b) {
    return a.code == b.code && a.message == b.message && a.details == b.details;
  }
};

template <class T>
using result = tl::expected<T, error>;

[[nodiscard]] inline tl::unexpected<error> make_error(error_code code, std::string message,
                                                      nlohmann::json details = nullptr) {
  return tl::unexpected<error>(error{code, std::move(message), std::move(details)});
}

}  // namespace parley
