// SPDX-License-Identifier: MIT
// The SQLite connection, the private file it lives in, and the ordered list of schema migrations.
#include "database.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace parley_tools {

namespace {

// Migration N takes a file from user_version N to N + 1. Steps are only ever
// appended: a released step is never edited, because files in the field ran it.
// Times are Unix milliseconds. Message bodies have no column, on purpose.
constexpr const char* migrations[] = {
    // 1: rooms with their seq high-water mark, and tokens kept only as digests.
    "CREATE TABLE rooms ("
    "  name TEXT PRIMARY KEY,"
    "  created_at INTEGER NOT NULL,"
    "  next_seq INTEGER NOT NULL DEFAULT 1 CHECK (next_seq >= 1)"
    ");"
    "CREATE TABLE tokens ("
    "  label TEXT NOT NULL UNIQUE,"
    "  sha256 TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER,"
    "  revoked_at INTEGER"
    ");",
    // 2: a deleted room that had seqs stays as a tombstone, so that creating it again
    // continues its seqs instead of repeating them.
    "ALTER TABLE rooms ADD COLUMN deleted_at INTEGER;",
    // 3: who may enter a room and act in it: the hub's JSON of its visibility, durable
    // principals' roles and bans, and invites (SHA-256 of each code, never the code).
    "ALTER TABLE rooms ADD COLUMN access TEXT NOT NULL DEFAULT '';",
};
static_assert(std::size(migrations) == database::latest_schema_version);

// Long enough to ride out `parley-tools token issue` writing while the server runs.
constexpr int busy_timeout_ms = 5000;

tl::unexpected<parley::error> sqlite_error(sqlite3* db, std::string_view what) {
  return parley::make_error(parley::error_code::internal,
                            "sqlite: " + std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

tl::unexpected<parley::error> os_error(std::string_view what, const std::filesystem::path& path) {
  return parley::make_error(parley::error_code::internal,
                            std::string(what) + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

parley::result<std::filesystem::path> default_database_path() {
  std::filesystem::path data_home;
  // The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && xdg[0] == '/') {
    data_home = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    data_home = std::filesystem::path(home) / ".local" / "share";
  } else if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    data_home = std::filesystem::path(pw->pw_dir) / ".local" / "share";
  } else {
    return parley::make_error(parley::error_code::internal,
                              "no home directory to keep the database in; pass --db or set PARLEY_DB_FILE");
  }
  return data_home / "parley" / "parley.db";
}

parley::result<void> create_private_directories(const std::filesystem::path& dir) {
  std::filesystem::path prefix;
  for (const auto& part : dir) {
    prefix /= part;
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      // mkdir's mode passes through the umask; say exactly what we mean.
      if (::chmod(prefix.c_str(), 0700) != 0) return os_error("cannot chmod", prefix);
      continue;
    }
    std::error_code ec;
    if (errno == EEXIST || std::filesystem::is_directory(prefix, ec)) continue;
    return os_error("cannot create directory", prefix);
  }
  return {};
}

// ---- database_lock ----

parley::result<database_lock> database_lock::acquire(const std::filesystem::path& file, mode how) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return os_error("cannot open", file);
  int rc;
  do {
    rc = ::flock(fd, how == mode::shared_wait ? LOCK_SH : LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return parley::make_error(parley::error_code::invalid_argument,
                                "a server is running on " + file.string() + "; stop it first");
    errno = err;
    return os_error("cannot lock", file);
  }
  return database_lock(fd);
}

database_lock::~database_lock() {
  if (fd_ >= 0) ::close(fd_);
}

// ---- statement ----

void statement::finalizer::operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }

parley::result<statement> statement::prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK)
    return sqlite_error(db, "prepare");
  return statement(db, s);
}

void statement::note(int rc) {
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
}

statement& statement::bind(int index, std::string_view text) {
  note(sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

statement& statement::bind(int index, std::int64_t value) {
  note(sqlite3_bind_int64(stmt_.get(), index, value));
  return *this;
}

statement& statement::bind_null(int index) {
  note(sqlite3_bind_null(stmt_.get(), index));
  return *this;
}

parley::result<bool> statement::step() {
  if (bind_error_ != 0)
    return parley::make_error(parley::error_code::internal,
                              std::string("sqlite: bind: ") + sqlite3_errstr(bind_error_));
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(db_, "step");
}

bool statement::is_null(int column) const { return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL; }

std::int64_t statement::int64(int column) const { return sqlite3_column_int64(stmt_.get(), column); }

std::string statement::text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), column));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column))) : std::string();
}

// ---- database ----

void database::closer::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

parley::result<database> database::open(const std::filesystem::path& file) {
  if (file.has_parent_path())
    if (auto made = create_private_directories(file.parent_path()); !made) return tl::unexpected(made.error());

  // Create the file ourselves so it is private from its first byte; SQLite would
  // create it with 0644 less the umask. An existing file is left as its owner set it.
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    const bool chmodded = ::fchmod(fd, 0600) == 0;
    ::close(fd);
    if (!chmodded) return os_error("cannot chmod", file);
  } else if (errno != EEXIST) {
    return os_error("cannot create", file);
  }

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  database db(raw);  // owns the handle even when opening failed
  if (rc != SQLITE_OK) return sqlite_error(raw, "open " + file.string());
  sqlite3_busy_timeout(raw, busy_timeout_ms);

  if (auto wal = db.enable_wal(); !wal) return tl::unexpected(wal.error());

  // FULL syncs every commit: a seq block must survive power loss, not only a crash,
  // and commits are rare (one per block, one per room, one per token use).
  if (auto set = db.exec("PRAGMA synchronous = FULL"); !set) return tl::unexpected(set.error());
  if (auto migrated = db.migrate(); !migrated) return tl::unexpected(migrated.error());
  return db;
}

parley::result<void> database::enable_wal() const {
  // SQLite answers with the mode it ended up in, which is not WAL on some file systems.
  auto mode = prepare("PRAGMA journal_mode = WAL");
  if (!mode) return tl::unexpected(mode.error());
  auto row = mode->step();
  if (!row) return tl::unexpected(row.error());
  if (!*row || mode->text(0) != "wal")
    return parley::make_error(parley::error_code::internal, "sqlite: cannot switch to WAL journal mode");
  return {};
}

parley::result<void> database::exec(const char* sql) const {
  char* message = nullptr;
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = "sqlite: " + std::string(message ? message : sqlite3_errmsg(db_.get()));
    sqlite3_free(message);
    return parley::make_error(parley::error_code::internal, std::move(text));
  }
  return {};
}

parley::result<int> database::schema_version() const {
  auto s = prepare("PRAGMA user_version");
  if (!s) return tl::unexpected(s.error());
  auto row = s->step();
  if (!row) return tl::unexpected(row.error());
  return *row ? static_cast<int>(s->int64(0)) : 0;
}

std::int64_t database::changes() const noexcept { return sqlite3_changes64(db_.get()); }

parley::result<void> database::migrate() const {
  for (;;) {
    auto version = schema_version();
    if (!version) return tl::unexpected(version.error());
    if (*version == latest_schema_version) return {};
    if (*version < 0 || *version > latest_schema_version)
      return parley::make_error(parley::error_code::internal, "database schema version " + std::to_string(*version) +
                                                                  " is not one this parley-tools knows (latest " +
                                                                  std::to_string(latest_schema_version) +
                                                                  "); is it from a newer release?");

    if (auto begun = exec("BEGIN IMMEDIATE"); !begun) return begun;
    // Another process may have migrated between our read and the write lock.
    auto locked = schema_version();
    if (!locked || *locked != *version) {
      (void)exec("ROLLBACK");
      if (!locked) return tl::unexpected(locked.error());
      continue;
    }
    const std::string bump = "PRAGMA user_version = " + std::to_string(*version + 1);
    auto applied = exec(migrations[*version]);
    if (applied) applied = exec(bump.c_str());
    if (applied) applied = exec("COMMIT");
    if (!applied) {
      (void)exec("ROLLBACK");
      return applied;
    }
  }
}

}  // namespace parley_tools
