// SPDX-License-Identifier: MIT
// The per-session send budget: a token bucket, in integer milli-tokens so it never drifts.
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

// `Time` is a monotonic clock's time point: a wall-clock step must not mint or withhold tokens.
template <class Time>
class token_bucket {
 public:
  explicit token_bucket(token_bucket_config config, Time now) noexcept
      : config_(config), milli_tokens_(std::uint64_t{config.capacity} * 1000), updated_(now) {}

  // Takes one token, or returns how long until one is available (rounded up, so a
  // caller that waits exactly that long succeeds).
  [[nodiscard]] std::optional<milliseconds> try_take(Time now) noexcept {
    refill(now);
    if (milli_tokens_ >= 1000) {
      milli_tokens_ -= 1000;
      return std::nullopt;
    }
    if (config_.refill_per_second == 0) return milliseconds::max();
    // The refill rate is refill_per_second milli-tokens per millisecond.
    const std::uint64_t missing = 1000 - milli_tokens_;
    return milliseconds((missing + config_.refill_per_second - 1) / config_.refill_per_second);
  }

  [[nodiscard]] std::uint64_t milli_tokens(Time now) noexcept {
    refill(now);
    return milli_tokens_;
  }

 private:
  void refill(Time now) noexcept {
    if (now <= updated_) return;  // a clock stepping back never mints tokens
    const auto elapsed = static_cast<std::uint64_t>((now - updated_).count());
    const std::uint64_t cap = std::uint64_t{config_.capacity} * 1000;
    // Saturate before multiplying: a long idle gap must not overflow.
    const std::uint64_t gained =
        elapsed >= cap ? cap : std::min(cap, elapsed * config_.refill_per_second);
    milli_tokens_ = std::min(cap, milli_tokens_ + gained);
    updated_ = now;
  }

  token_bucket_config config_;
  std::uint64_t milli_tokens_;
  Time updated_;
};

}  // namespace parley
