// SPDX-License-Identifier: MIT
// One line per event on stderr, "<RFC 3339 time> <LEVEL> <message>", filtered by level.
#pragma once

#include <parley/log_level.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace parley_tools {

using parley::log_level;

[[nodiscard]] std::string_view to_string(log_level level) noexcept;
[[nodiscard]] std::optional<log_level> log_level_from_string(std::string_view name) noexcept;

// Callers never pass tokens or message bodies; a label, a room, a nickname or a
// count says enough. stderr, because stdout is the MCP bridge's protocol channel.
class logger {
 public:
  explicit logger(log_level threshold = log_level::info) noexcept : threshold_(threshold) {}

  [[nodiscard]] bool enabled(log_level level) const noexcept { return level >= threshold_; }
  void write(log_level level, std::string_view message) const;

  void debug(std::string_view message) const { write(log_level::debug, message); }
  void info(std::string_view message) const { write(log_level::info, message); }
  void warn(std::string_view message) const { write(log_level::warn, message); }
  void error(std::string_view message) const { write(log_level::error, message); }

 private:
  log_level threshold_;
};

// One event that may repeat in a flood (accept failing on EMFILE, connections refused
// at the cap): logged at most once per period, with the count of repeats it stood for.
class throttled_log {
 public:
  explicit throttled_log(std::chrono::milliseconds period = std::chrono::seconds(1)) noexcept : period_(period) {}

  void write(const logger& log, log_level level, std::string_view message, std::chrono::steady_clock::time_point now);

 private:
  std::chrono::milliseconds period_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  std::uint64_t suppressed_ = 0;
};

}  // namespace parley_tools
