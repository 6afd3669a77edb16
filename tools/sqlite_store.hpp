// SPDX-License-Identifier: MIT
// The server policy's room_store on SQLite: room names and seq high-water marks that survive restarts.
#pragma once

#include "database.hpp"
#include "log.hpp"

#include <parley/room_store.hpp>

namespace parley_tools {

class sqlite_room_store {
 public:
  // `db` and `log` must outlive the store. A write that fails is logged at error once
  // (the core answers the client with InternalError and keeps serving the seq blocks it
  // already holds), and its recovery at info; without `log` nothing is logged.
  explicit sqlite_room_store(const database& db, const logger* log = nullptr) noexcept : db_(db), log_(log) {}

  parley::result<std::vector<parley::stored_room>> load_rooms();
  parley::result<void> create_room(std::string_view name, parley::wall_time now);
  // false when there is no such room (or it was deleted already).
  parley::result<bool> delete_room(std::string_view name, parley::wall_time now);
  parley::result<void> save_room_access(std::string_view name, std::string_view access);
  // One UPDATE ... RETURNING: the block is durable before any seq in it is used.
  parley::result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count);

  // Empty while writes succeed; else what the last failed write said.
  [[nodiscard]] const std::string& write_failure() const noexcept { return write_failure_; }

 private:
  template <class T>
  parley::result<T> noted(std::string_view what, parley::result<T> r);
  parley::result<void> insert_room(std::string_view name, parley::wall_time now);
  parley::result<bool> remove_room(std::string_view name, parley::wall_time now);
  parley::result<std::uint64_t> update_seq_block(std::string_view room, std::uint64_t count);
  parley::result<void> update_access(std::string_view name, std::string_view access);

  const database& db_;
  const logger* log_;
  std::string write_failure_;
};

}  // namespace parley_tools
