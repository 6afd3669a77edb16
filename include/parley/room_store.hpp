// SPDX-License-Identifier: MIT
// Where rooms and seq blocks live between restarts: what a store must do, and the in-memory store the core ships.
#pragma once

#include "clock.hpp"
#include "error.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

template <class WallTime>
struct basic_stored_room {
  std::string name;
  WallTime created_at;
};
using stored_room = basic_stored_room<wall_time>;

// A policy's room_store is any type with these members (the hub calls them
// synchronously and rarely: once when a room is first created and once per seq block
// (hi/lo), never per message; bodies never reach a store):
//
//   result<std::vector<basic_stored_room<W>>> load_rooms();
//       every room that ever existed, in name order;
//   result<void> create_room(std::string_view name, W now);
//       records a new room; creating one that exists is not an error;
//   result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count);
//       reserves `count` seqs for `room` and returns the first: [first, first + count)
//       are the caller's, and no later call, in this process or after a restart, hands
//       any of them out again. The first block of a room starts at 1.
//
// where W is the policy's wall-clock time. tools/ has the SQLite one.
template <class WallClock>
class basic_memory_room_store {
 public:
  using wall_time = clock_time<WallClock>;

  result<std::vector<basic_stored_room<wall_time>>> load_rooms() {
    std::vector<basic_stored_room<wall_time>> out;
    out.reserve(rooms_.size());
    for (const auto& [name, r] : rooms_) out.push_back({name, r.created_at});
    return out;
  }

  result<void> create_room(std::string_view name, wall_time now) {
    rooms_.try_emplace(std::string(name), entry{now, 1});
    return {};
  }

  result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count) {
    auto it = rooms_.find(room);
    if (it == rooms_.end()) return make_error(error_code::internal, "seq block for unknown room " + std::string(room));
    const std::uint64_t first = it->second.next_seq;
    it->second.next_seq += count;
    ++blocks_reserved_;
    return first;
  }

  [[nodiscard]] std::uint64_t blocks_reserved() const noexcept { return blocks_reserved_; }

 private:
  struct entry {
    wall_time created_at;
    std::uint64_t next_seq;
  };
  std::map<std::string, entry, std::less<>> rooms_;
  std::uint64_t blocks_reserved_ = 0;
};

using memory_room_store = basic_memory_room_store<std::chrono::system_clock>;

}  // namespace parley
