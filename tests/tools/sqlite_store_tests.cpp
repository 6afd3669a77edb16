// SPDX-License-Identifier: MIT
// The SQLite file: private modes, migrations, and rooms and seq blocks that survive reopening.
#include "database.hpp"
#include "database_worker.hpp"
#include "sqlite_store.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <sys/stat.h>
#include <utility>
#include <vector>

using namespace parley_tools;
using parley_tools::testing::temp_dir;

namespace {

database open_ok(const std::filesystem::path& file) {
  auto db = database::open(file);
  REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
  return std::move(*db);
}

// What the file says of a room's high-water mark, read on a connection of its own: what
// a restart after a crash would find. 0: no live or deleted row.
std::uint64_t next_seq_on_disk(const database& db, std::string_view room) {
  auto s = db.prepare("SELECT next_seq FROM rooms WHERE name = ?1");
  REQUIRE(s);
  s->bind(1, room);
  const bool found = s->step().value();
  return found ? static_cast<std::uint64_t>(s->int64(0)) : 0;
}

// The server's wiring: a store in the background on a worker of its own.
struct background {
  explicit background(const std::filesystem::path& file)
      : db(open_ok(file)), worker(std::make_unique<database_worker>(open_ok(file))), store(db, *worker) {
    REQUIRE(store.load_rooms());
  }
  database db;
  std::unique_ptr<database_worker> worker;
  sqlite_room_store store;
};

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("the file is created 0600 in directories created 0700") {
  const temp_dir dir;
  const auto file = dir / "a/b/parley.db";
  { const database db = open_ok(file); }
  CHECK(mode_of(file) == 0600);
  CHECK(mode_of(dir / "a/b") == 0700);
  CHECK(mode_of(dir / "a") == 0700);
}

TEST_CASE("an existing directory keeps its mode") {
  const temp_dir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  const database db = open_ok(dir / "parley.db");
  CHECK(mode_of(dir.path()) == 0755);
}

TEST_CASE("the default path follows XDG_DATA_HOME, then HOME") {
  const char* saved_xdg = std::getenv("XDG_DATA_HOME");
  const std::string xdg = saved_xdg ? saved_xdg : "";
  ::setenv("XDG_DATA_HOME", "/data", 1);
  CHECK(default_database_path().value() == "/data/parley/parley.db");
  ::setenv("XDG_DATA_HOME", "relative", 1);  // invalid per the spec, so ignored
  ::setenv("HOME", "/home/someone", 1);
  CHECK(default_database_path().value() == "/home/someone/.local/share/parley/parley.db");
  if (saved_xdg)
    ::setenv("XDG_DATA_HOME", xdg.c_str(), 1);
  else
    ::unsetenv("XDG_DATA_HOME");
}

TEST_CASE("migrations run once and reopening is idempotent") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  for (int i = 0; i < 3; ++i) {
    const database db = open_ok(file);
    CHECK(db.schema_version().value() == database::latest_schema_version);
  }
}

TEST_CASE("a file from a newer schema is refused, not downgraded") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  {
    const database db = open_ok(file);
    REQUIRE(db.exec("PRAGMA user_version = 99"));
  }
  const auto reopened = database::open(file);
  REQUIRE_FALSE(reopened);
  CHECK(reopened.error().message.find("99") != std::string::npos);
}

TEST_CASE("a file that is not a database is an error, not a crash") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    REQUIRE(f);
    std::fputs("this is not sqlite, just some text that is long enough to have a header", f);
    std::fclose(f);
  }
  CHECK_FALSE(database::open(file));
}

TEST_CASE("rooms persist across reopening, in name order, and creating twice is fine") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  {
    const database db = open_ok(file);
    sqlite_room_store store(db);
    REQUIRE(store.create_room("zeta", parley::from_unix_ms(2000)));
    REQUIRE(store.create_room("alpha", parley::from_unix_ms(1000)));
    REQUIRE(store.create_room("alpha", parley::from_unix_ms(3000)));
  }
  const database db = open_ok(file);
  sqlite_room_store store(db);
  const auto rooms = store.load_rooms();
  REQUIRE(rooms);
  REQUIRE(rooms->size() == 2);
  CHECK((*rooms)[0].name == "alpha");
  CHECK((*rooms)[0].created_at == parley::from_unix_ms(1000));  // the first creation wins
  CHECK((*rooms)[1].name == "zeta");
}

TEST_CASE("seq blocks start at 1 and never overlap, across reopening") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  {
    const database db = open_ok(file);
    sqlite_room_store store(db);
    REQUIRE(store.create_room("lobby", parley::from_unix_ms(0)));
    REQUIRE(store.create_room("other", parley::from_unix_ms(0)));
    CHECK(store.reserve_seq_block("lobby", 100).value() == 1);
    CHECK(store.reserve_seq_block("lobby", 100).value() == 101);
    CHECK(store.reserve_seq_block("other", 5).value() == 1);  // rooms count separately
  }
  const database db = open_ok(file);
  sqlite_room_store store(db);
  CHECK(store.reserve_seq_block("lobby", 1).value() == 201);
  CHECK(store.reserve_seq_block("lobby", 10).value() == 202);
  CHECK(store.reserve_seq_block("other", 5).value() == 6);
}

TEST_CASE("seq blocks for an unknown room, of no seqs, or past the end are internal errors") {
  const temp_dir dir;
  const database db = open_ok(dir / "parley.db");
  sqlite_room_store store(db);
  REQUIRE(store.create_room("lobby", parley::from_unix_ms(0)));
  CHECK(store.reserve_seq_block("nowhere", 1).error().code == parley::error_code::internal);
  CHECK_FALSE(store.reserve_seq_block("lobby", 0));
  CHECK(store.reserve_seq_block("lobby", INT64_MAX - 2).value() == 1);
  CHECK_FALSE(store.reserve_seq_block("lobby", 2));  // next_seq would overflow; SQLite would go REAL
  CHECK(store.reserve_seq_block("lobby", 1).value() == static_cast<std::uint64_t>(INT64_MAX - 1));
  CHECK_FALSE(store.reserve_seq_block("lobby", 1));
}

TEST_CASE("deleting a room: an unused one goes, a used one keeps its seqs for when it comes back") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  {
    const database db = open_ok(file);
    sqlite_room_store store(db);
    REQUIRE(store.create_room("empty", parley::from_unix_ms(0)));
    REQUIRE(store.create_room("busy", parley::from_unix_ms(0)));
    CHECK(store.reserve_seq_block("busy", 10).value() == 1);
    CHECK(store.load_rooms().value()[0].next_seq == 11);  // "busy" sorts first
    CHECK(store.load_rooms().value()[1].next_seq == 1);
    CHECK(store.delete_room("empty", parley::from_unix_ms(5)).value());
    CHECK(store.delete_room("busy", parley::from_unix_ms(5)).value());
    CHECK_FALSE(store.delete_room("busy", parley::from_unix_ms(6)).value());  // already gone
    CHECK_FALSE(store.delete_room("nowhere", parley::from_unix_ms(6)).value());
    CHECK(store.load_rooms().value().empty());
    CHECK_FALSE(store.reserve_seq_block("empty", 1));  // no row left at all
  }
  const database db = open_ok(file);
  sqlite_room_store store(db);
  CHECK(store.load_rooms().value().empty());  // deletions survive reopening
  REQUIRE(store.create_room("busy", parley::from_unix_ms(9)));
  const auto rooms = store.load_rooms().value();
  REQUIRE(rooms.size() == 1);
  CHECK(rooms[0].created_at == parley::from_unix_ms(9));
  CHECK(store.reserve_seq_block("busy", 1).value() == 11);  // never 1 again
}

TEST_CASE("a room's access record is kept, cleared by deletion, and refused for a room that does not exist") {
  const temp_dir dir;
  const database db = open_ok(dir / "parley.db");
  sqlite_room_store store(db);
  REQUIRE(store.create_room("den", parley::from_unix_ms(1)));
  const std::string access = R"({"visibility":"private","roles":{"token:ann":"owner"}})";
  REQUIRE(store.save_room_access("den", access));
  CHECK(store.load_rooms().value().at(0).access == access);
  CHECK_FALSE(store.save_room_access("nowhere", "{}"));
  REQUIRE(store.reserve_seq_block("den", 4));  // seqs: deletion leaves a tombstone
  REQUIRE(store.delete_room("den", parley::from_unix_ms(2)).value());
  CHECK_FALSE(store.save_room_access("den", access));  // a tombstone takes no access
  REQUIRE(store.create_room("den", parley::from_unix_ms(3)));
  CHECK(store.load_rooms().value().at(0).access.empty());  // a room made again starts public, with no roles
}

TEST_CASE("a version 1 file migrates to tombstones and keeps its rooms") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  {
    const database db = open_ok(file);
    REQUIRE(db.exec("ALTER TABLE rooms DROP COLUMN access; ALTER TABLE rooms DROP COLUMN deleted_at; PRAGMA user_version = 1;"
                    "INSERT INTO rooms (name, created_at, next_seq) VALUES ('old', 1, 7)"));
  }
  const database db = open_ok(file);
  CHECK(db.schema_version().value() == database::latest_schema_version);
  sqlite_room_store store(db);
  const auto rooms = store.load_rooms().value();
  REQUIRE(rooms.size() == 1);
  CHECK(rooms[0].next_seq == 7);
}

// ---- in the background, as the server runs it ----

TEST_CASE("in the background a block is on disk before it is handed out, and blocks never overlap") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  std::uint64_t end = 1;  // one past the last seq handed out so far
  std::uint64_t waits = 0;
  {
    background b(file);
    REQUIRE(b.store.create_room("lobby", parley::from_unix_ms(0)));
    for (int i = 0; i < 20; ++i) {
      const std::uint64_t first = b.store.reserve_seq_block("lobby", 256).value();
      CHECK(first >= end);
      end = first + 256;
      // A crash now must not hand out any of these seqs again.
      CHECK(next_seq_on_disk(b.db, "lobby") >= end);
      if (i % 3 == 0) b.worker->drain();  // sometimes the next block is ready, sometimes not yet
    }
    waits = b.store.blocking_waits();
  }
  CHECK(waits >= 1);   // the room's first block
  CHECK(waits <= 20);  // not more than one per block
  background b(file);  // a clean stop: the store drained, the worker stopped
  CHECK(b.store.reserve_seq_block("lobby", 256).value() >= end);
}

TEST_CASE("in the background the next block is reserved ahead, so handing it out does not wait") {
  const temp_dir dir;
  background b(dir / "parley.db");
  REQUIRE(b.store.create_room("lobby", parley::from_unix_ms(0)));
  CHECK(b.store.reserve_seq_block("lobby", 256).value() == 1);  // created and reserved in order
  CHECK(b.store.blocking_waits() == 1);                           // a new room's first block is waited for
  b.worker->drain();
  CHECK(next_seq_on_disk(b.db, "lobby") == 513);  // the block after it is already committed
  CHECK(b.store.reserve_seq_block("lobby", 256).value() == 257);
  CHECK(b.store.blocking_waits() == 1);
  b.worker->drain();
  CHECK(b.store.reserve_seq_block("lobby", 256).value() == 513);
  CHECK(b.store.blocking_waits() == 1);
  // A block of another size is not the one asked for ahead: it is skipped, never reused.
  CHECK(b.store.reserve_seq_block("lobby", 10).value() == 1025);
  CHECK(b.store.blocking_waits() == 2);
}

TEST_CASE("in the background a crash that loses queued work repeats no seq") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  std::uint64_t end = 1;
  for (int round = 0; round < 4; ++round) {
    CAPTURE(round);
    background b(file);
    REQUIRE(b.store.create_room("lobby", parley::from_unix_ms(0)));  // the row exists after round 0
    if (round == 0) b.worker->drain();
    for (int i = 0; i < 3; ++i) {
      const std::uint64_t first = b.store.reserve_seq_block("lobby", 256).value();
      CHECK(first >= end);
      end = first + 256;
    }
    // Crash: whatever is queued (the next block, at times) never reaches the file.
    if (round % 2 == 0) b.worker->stop_discarding();
    else b.worker->post([&b](const database&) { b.worker->stop_discarding(); });
  }
  background b(file);
  CHECK(b.store.reserve_seq_block("lobby", 256).value() >= end);
}

TEST_CASE("in the background deleting and creating again continues the seqs, and the answers come from memory") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  std::uint64_t end = 0;
  {
    background b(file);
    REQUIRE(b.store.create_room("busy", parley::from_unix_ms(0)));
    REQUIRE(b.store.create_room("empty", parley::from_unix_ms(0)));
    end = b.store.reserve_seq_block("busy", 256).value() + 256;
    // Deleted at once, its next block maybe still queued: the tombstone keeps all of it.
    CHECK(b.store.delete_room("busy", parley::from_unix_ms(5)).value());
    CHECK_FALSE(b.store.delete_room("busy", parley::from_unix_ms(6)).value());
    CHECK_FALSE(b.store.delete_room("nowhere", parley::from_unix_ms(6)).value());
    CHECK(b.store.delete_room("empty", parley::from_unix_ms(5)).value());
    CHECK_FALSE(b.store.reserve_seq_block("busy", 256));  // a deleted room has no seqs to hand out
    CHECK_FALSE(b.store.save_room_access("busy", "{}"));
    REQUIRE(b.store.create_room("busy", parley::from_unix_ms(7)));
    const std::uint64_t again = b.store.reserve_seq_block("busy", 256).value();
    CHECK(again >= end);
    end = again + 256;
    REQUIRE(b.store.delete_room("busy", parley::from_unix_ms(8)).value());
    CHECK(b.store.load_rooms().value().empty());  // sees the queued writes
    CHECK(next_seq_on_disk(b.db, "empty") == 0);  // never had seqs: gone entirely
    CHECK(next_seq_on_disk(b.db, "busy") >= end);
  }
  background b(file);
  REQUIRE(b.store.create_room("busy", parley::from_unix_ms(9)));
  CHECK(b.store.reserve_seq_block("busy", 256).value() >= end);  // never an earlier seq again
  REQUIRE(b.store.create_room("empty", parley::from_unix_ms(9)));
  CHECK(b.store.reserve_seq_block("empty", 256).value() == 1);
}

TEST_CASE("in the background every queued write is applied when the worker stops") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  background b(file);
  for (int i = 0; i < 50; ++i) {
    const std::string name = "room-" + std::to_string(i);
    REQUIRE(b.store.create_room(name, parley::from_unix_ms(i)));
    if (i % 2 == 0) REQUIRE(b.store.save_room_access(name, "{\"n\":" + std::to_string(i) + "}"));
    if (i % 5 == 0) REQUIRE(b.store.delete_room(name, parley::from_unix_ms(100)).value());
  }
  b.worker->stop();
  const database db = open_ok(file);
  sqlite_room_store reader(db);
  const auto rooms = reader.load_rooms().value();
  CHECK(rooms.size() == 40);
  for (const auto& r : rooms) {
    CAPTURE(r.name);
    const int i = std::stoi(r.name.substr(5));
    CHECK(i % 5 != 0);
    CHECK(r.created_at == parley::from_unix_ms(i));
    CHECK(r.access == (i % 2 == 0 ? "{\"n\":" + std::to_string(i) + "}" : std::string()));
  }
  // A store call after the stop still reaches the file: it runs on the calling thread.
  REQUIRE(b.store.create_room("late", parley::from_unix_ms(1)));
  CHECK(b.store.reserve_seq_block("late", 256).value() == 1);
  CHECK(next_seq_on_disk(db, "late") >= 257);
}

TEST_CASE("in the background a failed write shows in write_failure(), and so does its recovery") {
  const temp_dir dir;
  background b(dir / "parley.db");
  REQUIRE(b.store.create_room("lobby", parley::from_unix_ms(0)));
  REQUIRE(b.store.reserve_seq_block("lobby", 256));
  b.worker->drain();
  CHECK(b.store.write_failure().empty());
  // The worker's connection refuses writes from here on, as a disk gone read-only would.
  // (No doctest assertion on the worker's thread: a failed one would throw into the worker.)
  bool switched = false;
  b.worker->post([&switched](const database& db) { switched = db.exec("PRAGMA query_only = 1").has_value(); });
  REQUIRE(b.store.create_room("new", parley::from_unix_ms(0)));  // answered now, written later
  b.worker->drain();
  REQUIRE(switched);
  CHECK_FALSE(b.store.write_failure().empty());
  CHECK_FALSE(b.store.reserve_seq_block("new", 256));  // its row never reached the file
  // The block reserved ahead for "lobby" is still good; the one after it fails.
  CHECK(b.store.reserve_seq_block("lobby", 256).value() == 257);
  b.worker->drain();
  CHECK_FALSE(b.store.reserve_seq_block("lobby", 256));  // retried once, waited for, failed
  b.worker->post([](const database& db) { (void)db.exec("PRAGMA query_only = 0"); });
  CHECK(b.store.reserve_seq_block("lobby", 256).value() >= 513);  // retried, and the disk is back
  CHECK(b.store.write_failure().empty());
}

TEST_CASE("in the background, while writes fail, creating, deleting and changing access wait and say so") {
  const temp_dir dir;
  background b(dir / "parley.db");
  REQUIRE(b.store.create_room("lobby", parley::from_unix_ms(0)));
  b.worker->post([](const database& db) { (void)db.exec("PRAGMA query_only = 1"); });
  REQUIRE(b.store.create_room("first", parley::from_unix_ms(0)));  // not failing yet: answered at once
  b.worker->drain();
  REQUIRE_FALSE(b.store.write_failure().empty());
  const auto waits = b.store.blocking_waits();
  CHECK_FALSE(b.store.create_room("second", parley::from_unix_ms(0)));
  CHECK_FALSE(b.store.save_room_access("lobby", "{}"));
  CHECK_FALSE(b.store.delete_room("lobby", parley::from_unix_ms(1)));  // kept: the hub tries again later
  CHECK(b.store.blocking_waits() == waits + 3);
  CHECK_FALSE(b.store.delete_room("second", parley::from_unix_ms(1)).value());  // never created
  b.worker->post([](const database& db) { (void)db.exec("PRAGMA query_only = 0"); });
  REQUIRE(b.store.create_room("second", parley::from_unix_ms(0)));  // waited for, and it recovers
  CHECK(b.store.write_failure().empty());
  REQUIRE(b.store.save_room_access("lobby", "{\"v\":1}"));  // at once again
  REQUIRE(b.store.delete_room("lobby", parley::from_unix_ms(1)).value());
  CHECK(b.store.blocking_waits() == waits + 4);
  const auto rooms = b.store.load_rooms().value();
  REQUIRE(rooms.size() == 1);  // "first" never reached the file and is forgotten; "lobby" deleted
  CHECK(rooms[0].name == "second");
}

TEST_CASE("in the background loading reserves a block ahead for each room that had seqs, in one commit") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  std::uint64_t end = 0;
  {
    background b(file);
    REQUIRE(b.store.create_room("busy", parley::from_unix_ms(0)));
    REQUIRE(b.store.create_room("quiet", parley::from_unix_ms(0)));
    REQUIRE(b.store.create_room("gone", parley::from_unix_ms(0)));
    end = b.store.reserve_seq_block("busy", 256).value() + 256;
    REQUIRE(b.store.reserve_seq_block("gone", 256));
  }
  const std::uint64_t busy_before = [&] {
    const database db = open_ok(file);
    return next_seq_on_disk(db, "busy");
  }();
  background b(file);
  b.worker->drain();
  CHECK(next_seq_on_disk(b.db, "busy") == busy_before + 256);
  CHECK(next_seq_on_disk(b.db, "quiet") == 1);  // never had seqs: nothing reserved, it may still expire
  // Deleted before its block ahead is handed out: the tombstone keeps that block too.
  const std::uint64_t gone_mark = next_seq_on_disk(b.db, "gone");
  REQUIRE(b.store.delete_room("gone", parley::from_unix_ms(1)).value());
  b.worker->drain();
  CHECK(next_seq_on_disk(b.db, "gone") == gone_mark);
  const std::uint64_t first = b.store.reserve_seq_block("busy", 256).value();
  CHECK(first >= end);
  CHECK(first == busy_before);
  CHECK(b.store.blocking_waits() == 0);  // the first send after a restart did not wait
}

TEST_CASE("in the background blocks ahead at loading that fail to commit are asked for again, one room at a time") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  {
    background b(file);
    REQUIRE(b.store.create_room("busy", parley::from_unix_ms(0)));
    REQUIRE(b.store.reserve_seq_block("busy", 256));
  }
  const database db = open_ok(file);
  database_worker worker(open_ok(file));
  sqlite_room_store store(db, worker);
  worker.post([](const database& w) { (void)w.exec("PRAGMA query_only = 1"); });
  const std::uint64_t mark = next_seq_on_disk(db, "busy");
  REQUIRE(store.load_rooms());
  worker.drain();
  CHECK_FALSE(store.write_failure().empty());
  CHECK(next_seq_on_disk(db, "busy") == mark);  // rolled back: nothing was handed out
  CHECK_FALSE(store.reserve_seq_block("busy", 256));
  worker.post([](const database& w) { (void)w.exec("PRAGMA query_only = 0"); });
  CHECK(store.reserve_seq_block("busy", 256).value() == mark);
  CHECK(store.write_failure().empty());
}
