// SPDX-License-Identifier: MIT
// Budgets as token buckets, in exact integer units so they never drift: sends per second, room creations per minute.
#pragma once

#include "clock.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace parley {

struct token_bucket_config {
  std::uint32_t capacity = 20;           // burst
  std::uint32_t refill_per_second = 10;  // sustained rate
};

// A slower budget, for what is costly and rare (creating a room writes to disk).
struct per_minute_budget {
  std::uint32_t capacity = 20;          // burst
  std::uint32_t refill_per_minute = 10; // sustained rate
};

// `Time` is a monotonic clock's time point: a wall-clock step must not mint or withhold tokens.
//
// One token is `period` units (the period in milliseconds), and each millisecond adds
// `refill` units: refill tokens per period, in integers, with no remainder lost.
template <class Time>
class token_bucket {
 public:
  explicit token_bucket(token_bucket_config config, Time now) noexcept
      : token_bucket(config.capacity, config.refill_per_second, 1000, now) {}
  // Not a constructor: `token_bucket({20, 10}, now)` must keep meaning per second.
  [[nodiscard]] static token_bucket per_minute(per_minute_budget config, Time now) noexcept {
    return token_bucket(config.capacity, config.refill_per_minute, 60000, now);
  }

  // Takes one token, or returns how long until one is available (rounded up, so a
  // caller that waits exactly that long succeeds).
  [[nodiscard]] std::optional<milliseconds> try_take(Time now) noexcept {
    refill(now);
    if (units_ >= period_) {
      units_ -= period_;
      return std::nullopt;
    }
    if (refill_ == 0) return milliseconds::max();
    const std::uint64_t missing = period_ - units_;
    return milliseconds((missing + refill_ - 1) / refill_);
  }

  // Thousandths of a token.
  [[nodiscard]] std::uint64_t milli_tokens(Time now) noexcept {
    refill(now);
    return units_ / period_ * 1000 + units_ % period_ * 1000 / period_;
  }

  // True when the bucket is full at `now`: forgetting it changes nothing.
  [[nodiscard]] bool full(Time now) noexcept {
    refill(now);
    return units_ == cap();
  }

 private:
  token_bucket(std::uint32_t capacity, std::uint32_t refill, std::uint64_t period, Time now) noexcept
      : capacity_(capacity), refill_(refill), period_(period), units_(std::uint64_t{capacity} * period), updated_(now) {}

  std::uint64_t cap() const noexcept { return std::uint64_t{capacity_} * period_; }

  void refill(Time now) noexcept {
    if (now <= updated_) return;  // a clock stepping back never mints tokens
    const auto elapsed = static_cast<std::uint64_t>((now - updated_).count());
    // Saturate before multiplying: a long idle gap or a huge rate must not overflow.
    const std::uint64_t room = cap() - units_;
    const std::uint64_t gained = refill_ != 0 && elapsed > room / refill_ ? room : elapsed * refill_;
    units_ = std::min(cap(), units_ + gained);
    updated_ = now;
  }

  std::uint32_t capacity_;
  std::uint32_t refill_;
  std::uint64_t period_;  // units per token, = the refill period in milliseconds
  std::uint64_t units_;
  Time updated_;
};

}  // namespace parley
