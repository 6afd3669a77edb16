// SPDX-License-Identifier: MIT
// The SQLite file: private modes, migrations, and rooms and seq blocks that survive reopening.
#include "database.hpp"
#include "sqlite_store.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <sys/stat.h>

using namespace parley_tools;
using parley_tools::testing::temp_dir;

namespace {

database open_ok(const std::filesystem::path& file) {
  auto db = database::open(file);
  REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
  return std::move(*db);
}

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
