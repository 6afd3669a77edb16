// SPDX-License-Identifier: MIT
// Validation of tool arguments, shared by the wire decoder and the hub so both refuse the same things the same way.
#pragma once

#include "error.hpp"
#include "name_rules.hpp"
#include "utf8.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley {

inline constexpr std::size_t default_max_body_bytes = 8192;
inline constexpr std::size_t max_client_msg_id_length = 64;
inline constexpr std::size_t max_request_id_length = 128;

// InvalidArgumentError always names the field and the rule, so a client can fix the call.
[[nodiscard]] inline error invalid_argument(std::string_view field, std::string_view rule, std::string message) {
  return error{error_code::invalid_argument, std::move(message),
               nlohmann::json{{"field", std::string(field)}, {"rule", std::string(rule)}}};
}

// Built by appending, not as `"pattern " + std::string&&`: on that form GCC 12 at -O3 in C++20
// reports a memcpy past the end of the string (-Wstringop-overflow, -Warray-bounds), a false positive.
namespace detail {
[[nodiscard]] inline std::string pattern_rule(std::string_view pattern) { return std::string("pattern ").append(pattern); }

// [A-Za-z0-9_-]: what clientMsgIds, invite codes and knockIds are made of.
[[nodiscard]] constexpr bool is_base64url_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
}  // namespace detail

[[nodiscard]] inline result<void> check_room_slug(std::string_view field, std::string_view value) {
  if (auto v = validate_room_slug(value); !v)
    return tl::unexpected(invalid_argument(field, detail::pattern_rule(room_slug_pattern),
                                           v.error().describe(field, room_slug_pattern)));
  return {};
}

[[nodiscard]] inline result<void> check_nickname(std::string_view field, std::string_view value) {
  if (auto v = validate_nickname(value); !v)
    return tl::unexpected(invalid_argument(field, detail::pattern_rule(nickname_pattern),
                                           v.error().describe(field, nickname_pattern)));
  return {};
}

// Bodies are counted in UTF-8 bytes, not characters: 2048 four-byte emoji fill 8192.
[[nodiscard]] inline result<void> check_body(std::string_view value, std::size_t max_bytes = default_max_body_bytes) {
  if (value.empty()) return tl::unexpected(invalid_argument("body", "minBytes 1", "body must not be empty"));
  if (value.size() > max_bytes)
    return tl::unexpected(invalid_argument("body", "maxBytes " + std::to_string(max_bytes),
                                           "body is " + std::to_string(value.size()) + " bytes of UTF-8; the limit is " +
                                               std::to_string(max_bytes)));
  if (!is_valid_utf8(value)) return tl::unexpected(invalid_argument("body", "utf8", "body is not valid UTF-8"));
  return {};
}

// clientMsgId: 1-64 characters of [A-Za-z0-9_-].
[[nodiscard]] inline result<void> check_client_msg_id(std::string_view value) {
  constexpr std::string_view rule = "pattern ^[A-Za-z0-9_-]{1,64}$";
  if (value.empty() || value.size() > max_client_msg_id_length)
    return tl::unexpected(invalid_argument("clientMsgId", rule, "clientMsgId must be 1 to 64 characters"));
  for (char c : value) {
    const bool ok = detail::is_base64url_char(c);
    if (!ok) return tl::unexpected(invalid_argument("clientMsgId", rule, "clientMsgId may hold only A-Z a-z 0-9 _ -"));
  }
  return {};
}

// ---- invites (parley's addition) -------------------------------------------

inline constexpr std::uint32_t max_invite_uses = 1000000;
inline constexpr std::uint32_t max_invite_lifetime_s = 30 * 24 * 3600;    // 30 days
inline constexpr std::uint32_t default_invite_lifetime_s = 24 * 3600;     // a day
inline constexpr std::size_t max_invite_code_length = 128;

[[nodiscard]] inline result<void> check_count(std::string_view field, std::uint64_t value, std::uint32_t max) {
  if (value < 1 || value > max)
    return tl::unexpected(invalid_argument(field, "integer 1.." + std::to_string(max),
                                           std::string(field) + " must be an integer from 1 to " + std::to_string(max)));
  return {};
}

// The code is the server's (tool.invite made it); only its shape is checked here.
[[nodiscard]] inline result<void> check_invite_code(std::string_view value) {
  constexpr std::string_view rule = "pattern ^[A-Za-z0-9_-]{1,128}$";
  if (value.empty() || value.size() > max_invite_code_length)
    return tl::unexpected(invalid_argument("invite", rule, "invite must be 1 to 128 characters"));
  for (char c : value) {
    const bool ok = detail::is_base64url_char(c);
    if (!ok) return tl::unexpected(invalid_argument("invite", rule, "invite may hold only A-Z a-z 0-9 _ -"));
  }
  return {};
}

// ---- knocks (parley's addition) --------------------------------------------

inline constexpr std::size_t max_knock_note_length = 500;  // characters
inline constexpr std::size_t knock_id_length = 22;         // base64url of 128 random bits

[[nodiscard]] inline result<void> check_knock_note(std::string_view value) {
  if (value.empty() || utf8_length(value) > max_knock_note_length)
    return tl::unexpected(invalid_argument("note", "1..500 characters", "note must be 1 to 500 characters"));
  if (!is_valid_utf8(value)) return tl::unexpected(invalid_argument("note", "utf8", "note is not valid UTF-8"));
  return {};
}

[[nodiscard]] inline result<void> check_knock_id(std::string_view value) {
  constexpr std::string_view rule = "a knockId from tool.knock or a knock event";
  if (value.empty() || value.size() > 64)
    return tl::unexpected(invalid_argument("knockId", rule, "knockId must be 1 to 64 characters"));
  for (char c : value) {
    const bool ok = detail::is_base64url_char(c);
    if (!ok) return tl::unexpected(invalid_argument("knockId", rule, "knockId may hold only A-Z a-z 0-9 _ -"));
  }
  return {};
}

// ---- paging (parley's addition) --------------------------------------------
//
// list_rooms and who_is_here answer one page at a time. Without a `limit` a page holds
// at most the default below, so that an answer never outgrows the 64 KiB WebSocket
// message limit of the peer reading it, however many rooms or members there are:
// wire_test checks the worst case (32-character names and nicknames) at each bound.
inline constexpr std::uint32_t max_list_rooms_limit = 350;
inline constexpr std::uint32_t default_list_rooms_page = 175;
// A who_is_here member costs its nickname twice (in `nicknames` and in `members`).
inline constexpr std::uint32_t max_who_is_here_limit = 500;
inline constexpr std::uint32_t default_who_is_here_page = 300;

inline constexpr std::string_view cursor_rule = "a nextCursor from a previous answer";

[[nodiscard]] inline result<void> check_limit(std::uint64_t value, std::uint32_t max) {
  if (value < 1 || value > max)
    return tl::unexpected(invalid_argument("limit", "integer 1.." + std::to_string(max),
                                           "limit must be an integer from 1 to " + std::to_string(max)));
  return {};
}

// list_rooms' cursor is the last room name of the previous page.
[[nodiscard]] inline result<void> check_room_cursor(std::string_view value) {
  if (!validate_room_slug(value))
    return tl::unexpected(invalid_argument("cursor", cursor_rule, "cursor is not one this server handed out"));
  return {};
}

// who_is_here's cursor is a position in the room's join order: 1 to 19 decimal digits.
[[nodiscard]] inline result<std::uint64_t> parse_member_cursor(std::string_view value) {
  auto bad = [] { return tl::unexpected(invalid_argument("cursor", cursor_rule, "cursor is not one this server handed out")); };
  if (value.empty() || value.size() > 19) return bad();
  std::uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

}  // namespace parley
