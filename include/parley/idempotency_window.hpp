// SPDX-License-Identifier: MIT
// Remembers a session's recent clientMsgId keys so a retried send returns its first result instead of delivering twice.
#pragma once

#include "clock.hpp"

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace parley {

struct idempotency_window_config {
  std::size_t min_keys = 1024;               // a key is kept while it is among the last min_keys...
  milliseconds min_age = std::chrono::minutes(10);  // ...or younger than min_age
};

// Memory stays bounded because only sends that passed the rate limit are recorded:
// size() <= max(min_keys, sends the token bucket allows within min_age).
// `Time` is a monotonic clock's time point.
template <class Value, class Time>
class idempotency_window {
 public:
  explicit idempotency_window(idempotency_window_config config = {}) : config_(config) {}

  [[nodiscard]] const Value* find(std::string_view key) const {
    auto it = entries_.find(std::string(key));
    return it == entries_.end() ? nullptr : &it->second;
  }

  void remember(std::string key, Value value, Time now) {
    auto [it, inserted] = entries_.emplace(std::move(key), std::move(value));
    if (inserted) {
      if (!order_) order_.emplace();
      order_->push_back(order_entry{it->first, now});
    }
    evict(now);
  }

  void evict(Time now) {
    if (!order_) return;
    while (order_->size() > config_.min_keys && now - order_->front().at >= config_.min_age) {
      entries_.erase(order_->front().key);
      order_->pop_front();
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct order_entry {
    std::string key;
    Time at;
  };
  idempotency_window_config config_;
  std::unordered_map<std::string, Value> entries_;
  // Made at the first key: an empty std::deque still allocates its map and a block
  // (over half a KiB), and most sessions never send with a clientMsgId.
  std::optional<std::deque<order_entry>> order_;
};

}  // namespace parley
