// SPDX-License-Identifier: MIT
// The server policy's room_store on SQLite: room names and seq high-water marks that survive restarts.
#pragma once

#include "database.hpp"
#include "database_worker.hpp"
#include "log.hpp"

#include <parley/room_store.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace parley_tools {

// Two ways to run, one contract (include/parley/room_store.hpp):
//
// - Synchronous (no worker; `room list`, `room delete`): each call is its own
//   transaction, committed (fsync'd) before it returns.
// - In the background (the server): the calling thread never waits on the disk in the
//   steady state. create_room, save_room_access and delete_room are answered from the
//   rooms the store knows (those load_rooms found, plus those created since) and their
//   writes are queued on the worker, in call order. reserve_seq_block hands out a block
//   the worker reserved and committed ahead of time; each block handed out asks the
//   worker for the room's next one, and load_rooms has one reserved for each room that
//   had seqs. It waits only when no such block is ready (a new room's first block, or a
//   burst outrunning the disk), which blocking_waits() counts. Either way a block is
//   durable before any of its seqs is handed out, so after a crash no seq repeats; a
//   block reserved ahead and never used leaves a gap, which the protocol allows. While
//   write_failure() is set, the other writes wait for the disk's answer again, so that
//   what cannot be stored is refused and the first write that succeeds clears it.
//
// The calling side is one thread (the io thread); the worker is the other.
class sqlite_room_store {
 public:
  // `db` and `log` must outlive the store. A write that fails is logged at error once
  // (the core answers the client with InternalError and keeps serving the seq blocks it
  // already holds), and its recovery at info; without `log` nothing is logged.
  explicit sqlite_room_store(const database& db, const logger* log = nullptr) noexcept
      : db_(db), worker_(nullptr), log_(log) {}
  // In the background: `worker` (a connection of its own on the same file) must outlive
  // the store too. The store's destructor waits for the writes it queued.
  // `block_size` is the size the hub asks for (its seq_block_size): load_rooms reserves
  // one such block ahead for every room that ever had seqs, all in one commit, so that
  // even the first send after a restart finds its block ready. A request of another size
  // is served too, only without one ready.
  sqlite_room_store(const database& db, database_worker& worker, const logger* log = nullptr,
                    std::uint64_t block_size = 256) noexcept
      : db_(db), worker_(&worker), log_(log), block_size_(block_size) {}
  ~sqlite_room_store();
  sqlite_room_store(const sqlite_room_store&) = delete;
  sqlite_room_store& operator=(const sqlite_room_store&) = delete;

  // In the background, first waits for every queued write, so it sees them; then queues
  // the blocks reserved ahead for rooms with seqs (see the constructor).
  parley::result<std::vector<parley::stored_room>> load_rooms();
  // In the background, while writes succeed: answered at once; a failed write shows in
  // write_failure(), and the room's first reserve_seq_block then fails as it finds no
  // row. While write_failure() is set, this, delete_room and save_room_access wait for
  // their write and report its failure, as without a worker.
  parley::result<void> create_room(std::string_view name, parley::wall_time now);
  // false when there is no such room (or it was deleted already).
  parley::result<bool> delete_room(std::string_view name, parley::wall_time now);
  parley::result<void> save_room_access(std::string_view name, std::string_view access);
  // One UPDATE ... RETURNING per block: the block is durable before any seq in it is used.
  parley::result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count);

  // Empty while writes succeed; else what the last failed write said. A copy: in the
  // background the worker's thread sets it.
  [[nodiscard]] std::string write_failure() const;

  // How often reserve_seq_block had to wait for the worker (in the background; always 0
  // otherwise). Readable from any thread.
  [[nodiscard]] std::uint64_t blocking_waits() const noexcept { return blocking_waits_.load(std::memory_order_relaxed); }

 private:
  // What the calling thread knows of a live room, in the background.
  struct room_slot {
    std::uint64_t epoch = 0;  // which creation of the room: a block asked for by an earlier one is dropped
    bool asked = false;       // a reservation is queued, running, or its answer is in `ready`
    std::uint64_t count = 0;  // the size of the block asked for
    std::optional<parley::result<std::uint64_t>> ready;
  };

  template <class T>
  parley::result<T> noted(std::string_view what, parley::result<T> r);
  [[nodiscard]] bool failing() const;
  template <class T, class Write>
  parley::result<T> write_now(std::string what, Write write);
  void ask_for_block(std::string room, std::uint64_t count, std::uint64_t epoch);
  void ask_for_blocks(std::vector<std::pair<std::string, std::uint64_t>> rooms_and_epochs, std::uint64_t count);

  const database& db_;
  database_worker* worker_;
  const logger* log_;
  std::uint64_t block_size_ = 0;

  mutable std::mutex failure_mutex_;
  std::string write_failure_;

  std::mutex rooms_mutex_;  // guards rooms_ and epochs_; the worker only fills in `ready`
  std::condition_variable block_arrived_;
  std::map<std::string, room_slot, std::less<>> rooms_;
  std::uint64_t epochs_ = 0;
  std::atomic<std::uint64_t> blocking_waits_{0};
};

}  // namespace parley_tools
