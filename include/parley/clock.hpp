// SPDX-License-Identifier: MIT
// Time as the core sees it: two clocks that are never confused, passed in by the caller, and RFC 3339 formatting.
//
// Every deadline (keepalive, handshake, session grace, rate-limit refill, backoff, the
// idempotency window) runs on a monotonic clock, so a wall-clock step (NTP, suspend)
// never closes a connection or expires a session. Wall time appears only where a
// timestamp goes on the wire: sentAt and UUIDv7. The core reads neither clock; the
// clocks are types that a policy names, so a simulated clock in a test is a different
// type from production's and the two cannot be mixed by accident.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace parley {

using milliseconds = std::chrono::milliseconds;

// A point on `Clock` at millisecond resolution, the core's only time representation.
template <class Clock>
using clock_time = std::chrono::time_point<Clock, milliseconds>;

// "Now" on both clocks, taken together by the caller once per event.
template <class MonotonicClock, class WallClock>
struct basic_moment {
  using monotonic_clock = MonotonicClock;
  using wall_clock = WallClock;
  using monotonic_time = clock_time<MonotonicClock>;
  using wall_time = clock_time<WallClock>;

  monotonic_time monotonic;  // for deadlines
  wall_time wall;            // for sentAt and UUIDv7 only

  // Time passing moves both clocks; a wall-clock step (NTP, suspend) is `wall += d` alone.
  basic_moment& operator+=(milliseconds d) noexcept {
    monotonic += d;
    wall += d;
    return *this;
  }
  friend basic_moment operator+(basic_moment m, milliseconds d) noexcept { return m += d; }
};

using steady_time = clock_time<std::chrono::steady_clock>;
using wall_time = clock_time<std::chrono::system_clock>;
using moment = basic_moment<std::chrono::steady_clock, std::chrono::system_clock>;

// Wall clocks count from the Unix epoch (system_clock does, and so must any wall
// clock a policy names).
template <class WallTime = wall_time>
[[nodiscard]] constexpr WallTime from_unix_ms(std::int64_t ms) noexcept {
  return WallTime(milliseconds(ms));
}
template <class WallTime>
[[nodiscard]] constexpr std::int64_t to_unix_ms(WallTime t) noexcept {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// RFC 3339 in UTC with milliseconds, e.g. 2026-11-22T09:30:00.125Z. Uses Howard
// Hinnant's days-to-civil algorithm so it needs no C++20 calendar and no time zone
// database.
[[nodiscard]] inline std::string format_rfc3339_ms(std::int64_t ms) {
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

template <class WallTime>
[[nodiscard]] std::string format_rfc3339(WallTime t) {
  return format_rfc3339_ms(to_unix_ms(t));
}

}  // namespace parley
