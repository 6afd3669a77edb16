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
  std::uint64_t next_seq = 1;  // the first seq not yet reserved: 1 means no message was ever sent
  std::string access{};         // who may enter and act (the hub's own JSON); empty: public, no roles
};
using stored_room = basic_stored_room<wall_time>;

// A policy's room_store is any type with these members (the hub calls them
// synchronously and rarely: once when a room is first created, once per seq block
// (hi/lo) and once when an unused room expires, never per message; bodies never reach
// a store):
//
//   result<std::vector<basic_stored_room<W>>> load_rooms();
//       every room that exists, in name order;
//   result<void> create_room(std::string_view name, W now);
//       records a new room; creating one that exists is not an error;
//   result<bool> delete_room(std::string_view name, W now);
//       forgets a room; false when there is no such room. A room whose seqs were
//       never reserved goes entirely; one that had seqs keeps its high-water mark out
//       of sight, so that creating it again continues its seqs and none ever repeats;
//   result<void> save_room_access(std::string_view name, std::string_view access);
//       replaces the room's access record: the hub's JSON of its visibility and of
//       the durable principals' roles and bans and its invites (hashed), written when
//       one of them changes; load_rooms returns it. Empty means public, no roles;
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
    for (const auto& [name, r] : rooms_)
      if (!r.deleted) out.push_back({name, r.created_at, r.next_seq, r.access});
    return out;
  }

  result<void> create_room(std::string_view name, wall_time now) {
    auto [it, created] = rooms_.try_emplace(std::string(name), entry{now, 1, false, {}});
    if (!created && it->second.deleted) it->second = entry{now, it->second.next_seq, false, {}};
    return {};
  }

  result<void> save_room_access(std::string_view name, std::string_view access) {
    if (fail_access_writes_) return make_error(error_code::internal, "access write failed (simulated)");
    auto it = rooms_.find(name);
    if (it == rooms_.end() || it->second.deleted)
      return make_error(error_code::internal, "access for unknown room " + std::string(name));
    it->second.access = std::string(access);
    return {};
  }

  // For tests: make save_room_access fail, as a full disk would.
  void fail_access_writes(bool fail) noexcept { fail_access_writes_ = fail; }

  result<bool> delete_room(std::string_view name, wall_time) {
    auto it = rooms_.find(name);
    if (it == rooms_.end() || it->second.deleted) return false;
    if (it->second.next_seq == 1)
      rooms_.erase(it);
    else
      it->second.deleted = true;
    return true;
  }

  result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count) {
    auto it = rooms_.find(room);
    if (it == rooms_.end() || it->second.deleted) return make_error(error_code::internal, "seq block for unknown room " + std::string(room));
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
    bool deleted;  // a tombstone keeping the seqs of a deleted room that had some
    std::string access;
  };
  std::map<std::string, entry, std::less<>> rooms_;
  std::uint64_t blocks_reserved_ = 0;
  bool fail_access_writes_ = false;
};

using memory_room_store = basic_memory_room_store<std::chrono::system_clock>;

}  // namespace parley
