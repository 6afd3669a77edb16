// SPDX-License-Identifier: MIT
// The server policy's room_store on SQLite: room names and seq high-water marks that survive restarts.
#pragma once

#include "database.hpp"

#include <parley/room_store.hpp>

namespace parley_tools {

class sqlite_room_store {
 public:
  // `db` must outlive the store.
  explicit sqlite_room_store(const database& db) noexcept : db_(db) {}

  parley::result<std::vector<parley::stored_room>> load_rooms();
  parley::result<void> create_room(std::string_view name, parley::wall_time now);
  // false when there is no such room (or it was deleted already).
  parley::result<bool> delete_room(std::string_view name, parley::wall_time now);
  // One UPDATE ... RETURNING: the block is durable before any seq in it is used.
  parley::result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count);

 private:
  const database& db_;
};

}  // namespace parley_tools
