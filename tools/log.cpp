// SPDX-License-Identifier: MIT
// The logger: formats one event into one line and writes it with a single call.
#include "log.hpp"

#include "wall_clock.hpp"

#include <array>
#include <cstdio>
#include <string>
#include <utility>

namespace parley_tools {

namespace {

constexpr std::array<std::pair<log_level, std::string_view>, 4> level_names{{
    {log_level::debug, "debug"},
    {log_level::info, "info"},
    {log_level::warn, "warn"},
    {log_level::error, "error"},
}};

constexpr std::array<std::string_view, 4> level_labels{"DEBUG", "INFO", "WARN", "ERROR"};

}  // namespace

std::string_view to_string(log_level level) noexcept {
  for (const auto& [l, name] : level_names)
    if (l == level) return name;
  return "error";
}

std::optional<log_level> log_level_from_string(std::string_view name) noexcept {
  for (const auto& [l, n] : level_names)
    if (n == name) return l;
  return std::nullopt;
}

void logger::write(log_level level, std::string_view message) const {
  if (!enabled(level)) return;
  std::string line = parley::format_rfc3339(wall_clock_now());
  line += ' ';
  line += level_labels[static_cast<std::size_t>(level)];
  line += ' ';
  // Control characters are escaped so that one event is always exactly one line,
  // whatever a peer managed to put into a name we log.
  for (const char c : message) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7F) {
      line += c;
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", u);
      line += escaped;
    }
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void throttled_log::write(const logger& log, log_level level, std::string_view message,
                          std::chrono::steady_clock::time_point now) {
  if (last_ && now - *last_ < period_) {
    ++suppressed_;
    return;
  }
  std::string line(message);
  if (suppressed_ > 0) line += " (and " + std::to_string(suppressed_) + " more like it since the last such line)";
  log.write(level, line);
  last_ = now;
  suppressed_ = 0;
}

}  // namespace parley_tools
