// SPDX-License-Identifier: MIT
// The statements behind sqlite_room_store, and how it queues them on a database worker.
#include "sqlite_store.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace parley_tools {

namespace {

parley::result<std::vector<parley::stored_room>> select_rooms(const database& db) {
  // BINARY collation orders by bytes, as std::string's operator< does.
  auto s = db.prepare("SELECT name, created_at, next_seq, access FROM rooms WHERE deleted_at IS NULL ORDER BY name");
  if (!s) return tl::unexpected(s.error());
  std::vector<parley::stored_room> rooms;
  for (;;) {
    auto row = s->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return rooms;
    rooms.push_back(parley::stored_room{s->text(0), parley::from_unix_ms(s->int64(1)),
                                        static_cast<std::uint64_t>(s->int64(2)), s->text(3)});
  }
}

parley::result<void> update_access(const database& db, std::string_view name, std::string_view access) {
  auto s = db.prepare("UPDATE rooms SET access = ?2 WHERE name = ?1 AND deleted_at IS NULL");
  if (!s) return tl::unexpected(s.error());
  s->bind(1, name).bind(2, access);
  if (auto done = s->step(); !done) return tl::unexpected(done.error());
  if (db.changes() == 0)
    return parley::make_error(parley::error_code::internal, "access for unknown room " + std::string(name));
  return {};
}

parley::result<void> insert_room(const database& db, std::string_view name, parley::wall_time now) {
  // A tombstone comes back to life with its seqs; a live room is left as it is.
  auto s = db.prepare(
      "INSERT INTO rooms (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE "
      "SET created_at = excluded.created_at, deleted_at = NULL, access = '' WHERE deleted_at IS NOT NULL");
  if (!s) return tl::unexpected(s.error());
  s->bind(1, name).bind(2, parley::to_unix_ms(now));
  if (auto done = s->step(); !done) return tl::unexpected(done.error());
  return {};
}

parley::result<bool> remove_room(const database& db, std::string_view name, parley::wall_time now) {
  // A room that never had seqs can go entirely; one that had keeps its high-water mark.
  auto gone = db.prepare("DELETE FROM rooms WHERE name = ?1 AND next_seq = 1 AND deleted_at IS NULL");
  if (!gone) return tl::unexpected(gone.error());
  gone->bind(1, name);
  if (auto done = gone->step(); !done) return tl::unexpected(done.error());
  if (db.changes() > 0) return true;
  auto hidden = db.prepare("UPDATE rooms SET deleted_at = ?2, access = '' WHERE name = ?1 AND deleted_at IS NULL");
  if (!hidden) return tl::unexpected(hidden.error());
  hidden->bind(1, name).bind(2, parley::to_unix_ms(now));
  if (auto done = hidden->step(); !done) return tl::unexpected(done.error());
  return db.changes() > 0;
}

parley::result<std::uint64_t> update_seq_block(const database& db, std::string_view room, std::uint64_t count) {
  constexpr auto max_seq = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (count == 0 || count > max_seq)
    return parley::make_error(parley::error_code::internal, "seq block of " + std::to_string(count) + " seqs");
  const auto n = static_cast<std::int64_t>(count);
  // The guard keeps next_seq an INTEGER: SQLite turns an overflowing sum into a REAL.
  auto s = db.prepare(
      "UPDATE rooms SET next_seq = next_seq + ?2 WHERE name = ?1 AND next_seq <= ?3 - ?2 RETURNING next_seq - ?2");
  if (!s) return tl::unexpected(s.error());
  s->bind(1, room).bind(2, n).bind(3, std::numeric_limits<std::int64_t>::max());
  auto row = s->step();
  if (!row) return tl::unexpected(row.error());
  if (!*row)
    return parley::make_error(parley::error_code::internal,
                              "seq block for unknown room " + std::string(room) + " (or its seqs are exhausted)");
  const auto first = static_cast<std::uint64_t>(s->int64(0));
  // Step to the end so the UPDATE commits now, not when the statement is finalized.
  if (auto done = s->step(); !done) return tl::unexpected(done.error());
  return first;
}

}  // namespace

sqlite_room_store::~sqlite_room_store() {
  // Queued jobs point at this store.
  if (worker_) worker_->drain();
}

bool sqlite_room_store::failing() const {
  std::lock_guard lock(failure_mutex_);
  return !write_failure_.empty();
}

std::string sqlite_room_store::write_failure() const {
  std::lock_guard lock(failure_mutex_);
  return write_failure_;
}

// A disk that fails while the server runs must show in the log, once, not only in the
// InternalError the client gets; and so must its recovery. In the background this runs
// on the worker's thread.
template <class T>
parley::result<T> sqlite_room_store::noted(std::string_view what, parley::result<T> r) {
  std::lock_guard lock(failure_mutex_);
  if (!r) {
    if (write_failure_.empty() && log_)
      log_->error("database write failed (" + std::string(what) + "): " + r.error().message +
                  "; rooms go on with the seqs already reserved, new rooms and seq blocks are refused until it recovers");
    write_failure_ = r.error().message.empty() ? std::string("unknown error") : r.error().message;
  } else if (!write_failure_.empty()) {
    if (log_) log_->info("database writable again (" + std::string(what) + ")");
    write_failure_.clear();
  }
  return r;
}

parley::result<std::vector<parley::stored_room>> sqlite_room_store::load_rooms() {
  if (!worker_) return select_rooms(db_);
  worker_->drain();
  auto rooms = select_rooms(db_);
  if (!rooms) return rooms;
  // The file is the truth at start-up: a room whose creation failed to reach it is
  // forgotten here too. Rooms kept keep their blocks asked for.
  std::vector<std::pair<std::string, std::uint64_t>> ahead;  // rooms with seqs, and their epochs
  {
    std::lock_guard lock(rooms_mutex_);
    std::map<std::string, room_slot, std::less<>> known;
    for (const auto& r : *rooms) {
      auto node = rooms_.extract(r.name);
      const bool seen = !node.empty();
      room_slot& slot = seen ? known.insert(std::move(node)).position->second : known[r.name];
      if (!seen) slot.epoch = ++epochs_;
      // A room that never had seqs stays so (it may expire); one that nearly ran out
      // is left to reserve_seq_block, which says so.
      constexpr auto max_seq = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      if (slot.asked || r.next_seq <= 1 || block_size_ == 0 || block_size_ > max_seq ||
          r.next_seq > max_seq - block_size_)
        continue;
      slot.asked = true;
      slot.count = block_size_;
      ahead.emplace_back(r.name, slot.epoch);
    }
    rooms_ = std::move(known);
  }
  if (!ahead.empty()) ask_for_blocks(std::move(ahead), block_size_);
  return rooms;
}

// While writes fail, a write the hub asks for is done before answering, as without a
// worker: the hub then refuses what it could not store (a new room, an access change, a
// deletion it will try again), and the first write that succeeds again clears the
// failure. Waiting on the io thread is the price of a failing disk only.
template <class T, class Write>
parley::result<T> sqlite_room_store::write_now(std::string what, Write write) {
  blocking_waits_.fetch_add(1, std::memory_order_relaxed);
  std::optional<parley::result<T>> out;
  worker_->post([&](const database& db) { out = noted(what, write(db)); });
  worker_->drain();  // FIFO: after every write queued before it
  if (!out) return parley::make_error(parley::error_code::internal, what + ": the database worker stopped");
  return std::move(*out);
}

parley::result<void> sqlite_room_store::create_room(std::string_view name, parley::wall_time now) {
  if (!worker_) return noted("create room " + std::string(name), insert_room(db_, name, now));
  {
    std::lock_guard lock(rooms_mutex_);
    if (rooms_.find(name) != rooms_.end()) return {};  // as the INSERT would: a live room is left as it is
  }
  if (failing()) {
    auto created = write_now<void>("create room " + std::string(name),
                                   [&](const database& db) { return insert_room(db, name, now); });
    if (!created) return created;
  } else {
    worker_->post([this, room = std::string(name), now](const database& db) {
      (void)noted("create room " + room, insert_room(db, room, now));
    });
  }
  std::lock_guard lock(rooms_mutex_);
  rooms_[std::string(name)].epoch = ++epochs_;
  return {};
}

parley::result<bool> sqlite_room_store::delete_room(std::string_view name, parley::wall_time now) {
  if (!worker_) return noted("delete room " + std::string(name), remove_room(db_, name, now));
  {
    std::lock_guard lock(rooms_mutex_);
    if (rooms_.find(name) == rooms_.end()) return false;
  }
  // Queued behind any reservation for the room, so whether its row goes or stays as a
  // tombstone depends on every seq reserved for it: its high-water mark is never lost.
  if (failing()) {
    auto removed = write_now<bool>("delete room " + std::string(name),
                                   [&](const database& db) { return remove_room(db, name, now); });
    if (!removed) return tl::unexpected(removed.error());  // the hub keeps the room and tries again
  } else {
    worker_->post([this, room = std::string(name), now](const database& db) {
      (void)noted("delete room " + room, remove_room(db, room, now));
    });
  }
  // A block asked for and not handed out goes with the slot: a gap, never a repeat.
  std::lock_guard lock(rooms_mutex_);
  if (auto it = rooms_.find(name); it != rooms_.end()) rooms_.erase(it);
  return true;
}

parley::result<void> sqlite_room_store::save_room_access(std::string_view name, std::string_view access) {
  if (!worker_) return noted("change access to " + std::string(name), update_access(db_, name, access));
  {
    std::lock_guard lock(rooms_mutex_);
    if (rooms_.find(name) == rooms_.end())
      return parley::make_error(parley::error_code::internal, "access for unknown room " + std::string(name));
  }
  if (failing())
    return write_now<void>("change access to " + std::string(name),
                           [&](const database& db) { return update_access(db, name, access); });
  worker_->post([this, room = std::string(name), text = std::string(access)](const database& db) {
    (void)noted("change access to " + room, update_access(db, room, text));
  });
  return {};
}

void sqlite_room_store::ask_for_block(std::string room, std::uint64_t count, std::uint64_t epoch) {
  worker_->post([this, room = std::move(room), count, epoch](const database& db) {
    auto first = noted("reserve seqs in " + room, update_seq_block(db, room, count));
    std::lock_guard lock(rooms_mutex_);
    auto it = rooms_.find(room);
    if (it == rooms_.end() || it->second.epoch != epoch) return;  // deleted since: a gap
    it->second.ready = std::move(first);
    block_arrived_.notify_all();
  });
}

// One block for each room, all in one transaction, so one fsync. Handed to the rooms
// only once committed; if anything fails, none is, and each room asks again itself.
void sqlite_room_store::ask_for_blocks(std::vector<std::pair<std::string, std::uint64_t>> rooms_and_epochs,
                                       std::uint64_t count) {
  worker_->post([this, rooms = std::move(rooms_and_epochs), count](const database& db) {
    std::vector<std::uint64_t> firsts;
    firsts.reserve(rooms.size());
    auto reserve_all = [&]() -> parley::result<void> {
      if (auto begun = db.exec("BEGIN IMMEDIATE"); !begun) return begun;
      for (const auto& [room, epoch] : rooms) {
        auto first = update_seq_block(db, room, count);
        if (!first) {
          (void)db.exec("ROLLBACK");
          return tl::unexpected(first.error());
        }
        firsts.push_back(*first);
      }
      if (auto committed = db.exec("COMMIT"); !committed) {
        (void)db.exec("ROLLBACK");
        return committed;
      }
      return {};
    };
    const bool reserved =
        noted("reserve seqs ahead in " + std::to_string(rooms.size()) + " rooms", reserve_all()).has_value();
    std::lock_guard lock(rooms_mutex_);
    for (std::size_t i = 0; i < rooms.size(); ++i) {
      auto it = rooms_.find(rooms[i].first);
      if (it == rooms_.end() || it->second.epoch != rooms[i].second || !it->second.asked) continue;
      if (reserved)
        it->second.ready = firsts[i];
      else
        it->second.asked = false;
    }
    block_arrived_.notify_all();
  });
}

parley::result<std::uint64_t> sqlite_room_store::reserve_seq_block(std::string_view room, std::uint64_t count) {
  if (!worker_) return noted("reserve seqs in " + std::string(room), update_seq_block(db_, room, count));
  bool waited = false;
  std::unique_lock lock(rooms_mutex_);
  for (;;) {
    auto it = rooms_.find(room);
    if (it == rooms_.end())
      return parley::make_error(parley::error_code::internal, "seq block for unknown room " + std::string(room));
    room_slot& slot = it->second;
    if (slot.ready) {
      auto first = std::move(*slot.ready);
      slot.ready.reset();
      slot.asked = false;
      // A block of another size, or a failure met ahead of time that a retry may not
      // meet: dropped (a gap), and a fresh block asked for.
      if (slot.count != count || (!first && !waited)) continue;
      if (!first) return first;
      // The next block is asked for now, long before this one's seqs run out.
      slot.asked = true;
      slot.count = count;
      const std::uint64_t epoch = slot.epoch;
      lock.unlock();  // post() runs the job here once the worker has stopped
      ask_for_block(std::string(room), count, epoch);
      return first;
    }
    if (!slot.asked) {
      slot.asked = true;
      slot.count = count;
      const std::uint64_t epoch = slot.epoch;
      lock.unlock();
      ask_for_block(std::string(room), count, epoch);
      lock.lock();
      continue;
    }
    if (!waited) {
      waited = true;
      blocking_waits_.fetch_add(1, std::memory_order_relaxed);
    }
    block_arrived_.wait(lock);
  }
}

}  // namespace parley_tools
