// SPDX-License-Identifier: MIT
// The statements behind sqlite_room_store.
#include "sqlite_store.hpp"

#include <cstdint>
#include <limits>
#include <string>

namespace parley_tools {

parley::result<std::vector<parley::stored_room>> sqlite_room_store::load_rooms() {
  // BINARY collation orders by bytes, as std::string's operator< does.
  auto s = db_.prepare("SELECT name, created_at, next_seq, access FROM rooms WHERE deleted_at IS NULL ORDER BY name");
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

// A disk that fails while the server runs must show in the log, once, not only in the
// InternalError the client gets; and so must its recovery.
template <class T>
parley::result<T> sqlite_room_store::noted(std::string_view what, parley::result<T> r) {
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

parley::result<void> sqlite_room_store::create_room(std::string_view name, parley::wall_time now) {
  return noted("create room " + std::string(name), insert_room(name, now));
}

parley::result<std::uint64_t> sqlite_room_store::reserve_seq_block(std::string_view room, std::uint64_t count) {
  return noted("reserve seqs in " + std::string(room), update_seq_block(room, count));
}

parley::result<bool> sqlite_room_store::delete_room(std::string_view name, parley::wall_time now) {
  return noted("delete room " + std::string(name), remove_room(name, now));
}

parley::result<void> sqlite_room_store::save_room_access(std::string_view name, std::string_view access) {
  return noted("change access to " + std::string(name), update_access(name, access));
}

parley::result<void> sqlite_room_store::update_access(std::string_view name, std::string_view access) {
  auto s = db_.prepare("UPDATE rooms SET access = ?2 WHERE name = ?1 AND deleted_at IS NULL");
  if (!s) return tl::unexpected(s.error());
  s->bind(1, name).bind(2, access);
  if (auto done = s->step(); !done) return tl::unexpected(done.error());
  if (db_.changes() == 0)
    return parley::make_error(parley::error_code::internal, "access for unknown room " + std::string(name));
  return {};
}

parley::result<void> sqlite_room_store::insert_room(std::string_view name, parley::wall_time now) {
  // A tombstone comes back to life with its seqs; a live room is left as it is.
  auto s = db_.prepare(
      "INSERT INTO rooms (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE "
      "SET created_at = excluded.created_at, deleted_at = NULL, access = '' WHERE deleted_at IS NOT NULL");
  if (!s) return tl::unexpected(s.error());
  s->bind(1, name).bind(2, parley::to_unix_ms(now));
  if (auto done = s->step(); !done) return tl::unexpected(done.error());
  return {};
}

parley::result<bool> sqlite_room_store::remove_room(std::string_view name, parley::wall_time now) {
  // A room that never had seqs can go entirely; one that had keeps its high-water mark.
  auto gone = db_.prepare("DELETE FROM rooms WHERE name = ?1 AND next_seq = 1 AND deleted_at IS NULL");
  if (!gone) return tl::unexpected(gone.error());
  gone->bind(1, name);
  if (auto done = gone->step(); !done) return tl::unexpected(done.error());
  if (db_.changes() > 0) return true;
  auto hidden = db_.prepare("UPDATE rooms SET deleted_at = ?2, access = '' WHERE name = ?1 AND deleted_at IS NULL");
  if (!hidden) return tl::unexpected(hidden.error());
  hidden->bind(1, name).bind(2, parley::to_unix_ms(now));
  if (auto done = hidden->step(); !done) return tl::unexpected(done.error());
  return db_.changes() > 0;
}

parley::result<std::uint64_t> sqlite_room_store::update_seq_block(std::string_view room, std::uint64_t count) {
  constexpr auto max_seq = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (count == 0 || count > max_seq)
    return parley::make_error(parley::error_code::internal, "seq block of " + std::to_string(count) + " seqs");
  const auto n = static_cast<std::int64_t>(count);
  // The guard keeps next_seq an INTEGER: SQLite turns an overflowing sum into a REAL.
  auto s = db_.prepare(
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

}  // namespace parley_tools
