// SPDX-License-Identifier: MIT
// Where rooms and seq blocks live between restarts: an interface, and the in-memory store the core ships.
#pragma once

#include "clock.hpp"
#include "error.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

struct stored_room {
  std::string name;
  time_point created_at;
};

// The hub calls a store synchronously and rarely: once when a room is first created
// and once per seq block (hi/lo), never per message. Bodies never reach a store.
class room_store {
 public:
  virtual ~room_store() = default;

  // Every room that ever existed, in name order.
  [[nodiscard]] virtual result<std::vector<stored_room>> load_rooms() = 0;

  // Records a new room; creating one that exists is not an error.
  [[nodiscard]] virtual result<void> create_room(std::string_view name, time_point now) = 0;

  // Reserves `count` seqs for `room` and returns the first: [first, first + count)
  // are the caller's, and no later call, in this process or after a restart, hands
  // any of them out again. The first block of a room starts at 1.
  [[nodiscard]] virtual result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count) = 0;
};

class memory_room_store final : public room_store {
 public:
  result<std::vector<stored_room>> load_rooms() override {
    std::vector<stored_room> out;
    out.reserve(rooms_.size());
    for (const auto& [name, r] : rooms_) out.push_back(stored_room{name, r.created_at});
    return out;
  }

  result<void> create_room(std::string_view name, time_point now) override {
    rooms_.try_emplace(std::string(name), entry{now, 1});
    return {};
  }

  result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count) override {
    auto it = rooms_.find(std::string(room));
    if (it == rooms_.end()) return make_error(error_code::internal, "seq block for unknown room " + std::string(room));
    const std::uint64_t first = it->second.next_seq;
    it->second.next_seq += count;
    ++blocks_reserved_;
    return first;
  }

  [[nodiscard]] std::uint64_t blocks_reserved() const noexcept { return blocks_reserved_; }

 private:
  struct entry {
    time_point created_at;
    std::uint64_t next_seq;
  };
  std::map<std::string, entry, std::less<>> rooms_;
  std::uint64_t blocks_reserved_ = 0;
};

}  // namespace parley
