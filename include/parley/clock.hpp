// Time as the core sees it: a millisecond time point the caller passes in, and RFC 3339 formatting.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace parley {

using milliseconds = std::chrono::milliseconds;
// Wall-clock milliseconds since the Unix epoch. The core never reads a clock: every
// operation that needs time takes `now` of this type.
using time_point = std::chrono::time_point<std::chrono::system_clock, milliseconds>;

[[nodiscard]] constexpr time_point from_unix_ms(std::int64_t ms) noexcept { return time_point(milliseconds(ms)); }
[[nodiscard]] constexpr std::int64_t to_unix_ms(time_point t) noexcept { return t.time_since_epoch().count(); }

// RFC 3339 in UTC with milliseconds, e.g. 2026-11-22T09:30:00.125Z. Uses Howard
// Hinnant's days-to-civil algorithm so it needs no C++20 calendar and no time zone
// database.
[[nodiscard]] inline std::string format_rfc3339(time_point t) {
  std::int64_t ms = to_unix_ms(t);
  std::int64_t days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
  std::int64_t ms_of_day = ms - days * 86400000;
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char buf[80];  // room for any int64 year, though only 0000-9999 are meaningful
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(year),
                static_cast<long long>(month), static_cast<long long>(day),
                static_cast<long long>(ms_of_day / 3600000), static_cast<long long>(ms_of_day / 60000 % 60),
                static_cast<long long>(ms_of_day / 1000 % 60), static_cast<long long>(ms_of_day % 1000));
  return buf;
}

}  // namespace parley
