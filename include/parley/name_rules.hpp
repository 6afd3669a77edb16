// SPDX-License-Identifier: MIT
// Validation of the two names users pick, room slugs and nicknames, reporting which rule failed.
#pragma once

#include <tl/expected.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace parley {

enum class name_rule {
  empty,           // no characters at all
  too_long,        // more than 32 characters
  bad_first,       // the first character is outside its class
  bad_character,   // a later character is outside its class
};


inline constexpr std::size_t max_name_length = 32;
inline constexpr std::string_view room_slug_pattern = "^[a-z0-9][a-z0-9-]{0,31}$";
inline constexpr std::string_view nickname_pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$";

struct name_violation {
  name_rule rule;
  std::size_t position = 0;  // index of the offending byte, 0 for empty/too_long

  [[nodiscard]] std::string describe(std::string_view what, std::string_view pattern) const {
    std::string s(what);
    switch (rule) {
      case name_rule::empty: s += " must not be empty"; break;
      case name_rule::too_long: s += " must be at most 32 characters"; break;
      case name_rule::bad_first:
        s += pattern == room_slug_pattern ? " must start with a lowercase letter or digit" : " must start with a letter or digit";
        break;
      case name_rule::bad_character:
        s += " has a character not allowed at position " + std::to_string(position);
        break;
    }
    s += " (pattern ";
    s += pattern;
    s += ")";
    return s;
  }
};

namespace detail {
constexpr bool is_lower_or_digit(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
constexpr bool is_alnum(char c) noexcept { return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z'); }

template <class First, class Rest>
constexpr tl::expected<void, name_violation> validate_name(std::string_view s, First first, Rest rest) noexcept {
  if (s.empty()) return tl::unexpected(name_violation{name_rule::empty, 0});
  if (s.size() > max_name_length) return tl::unexpected(name_violation{name_rule::too_long, 0});
  if (!first(s[0])) return tl::unexpected(name_violation{name_rule::bad_first, 0});
  for (std::size_t i = 1; i < s.size(); ++i)
    if (!rest(s[i])) return tl::unexpected(name_violation{name_rule::bad_character, i});
  return {};
}
}  // namespace detail

// ^[a-z0-9][a-z0-9-]{0,31}$
[[nodiscard]] constexpr tl::expected<void, name_violation> validate_room_slug(std::string_view s) noexcept {
  return detail::validate_name(s, detail::is_lower_or_digit,
                               [](char c) { return detail::is_lower_or_digit(c) || c == '-'; });
}

// ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$
[[nodiscard]] constexpr tl::expected<void, name_violation> validate_nickname(std::string_view s) noexcept {
  return detail::validate_name(s, detail::is_alnum,
                               [](char c) { return detail::is_alnum(c) || c == '-' || c == '_'; });
}

// Nicknames collide case-insensitively (`Alice` and `alice`); the chosen spelling is
// kept for display. Nicknames are ASCII by rule, so an ASCII fold is exact.
[[nodiscard]] inline std::string fold_nickname(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace parley
