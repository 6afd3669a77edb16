// SPDX-License-Identifier: MIT
// parley's SQLite file: where it lives, how it is made private, its schema migrations, and prepared statements.
#pragma once

#include <parley/error.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

struct sqlite3;
struct sqlite3_stmt;

namespace parley_tools {

// $XDG_DATA_HOME/parley/parley.db, else ~/.local/share/parley/parley.db.
[[nodiscard]] parley::result<std::filesystem::path> default_database_path();

// Creates each missing directory on the way to `dir` with mode 0700. Directories that
// already exist are left as they are: they may be shared ones such as /tmp.
[[nodiscard]] parley::result<void> create_private_directories(const std::filesystem::path& dir);

// A prepared statement. Bind errors are remembered and reported by the next step(),
// so a chain of binds needs one check. A statement that has not stepped to its end
// holds its transaction open until destroyed: keep such statements in a short scope.
class statement {
 public:
  [[nodiscard]] static parley::result<statement> prepare(sqlite3* db, std::string_view sql);

  statement& bind(int index, std::string_view text);
  statement& bind(int index, std::int64_t value);
  statement& bind_null(int index);

  // true when a row is ready to read, false when the statement is done.
  [[nodiscard]] parley::result<bool> step();

  [[nodiscard]] bool is_null(int column) const;
  [[nodiscard]] std::int64_t int64(int column) const;
  [[nodiscard]] std::string text(int column) const;

 private:
  struct finalizer {
    void operator()(sqlite3_stmt* s) const noexcept;
  };
  statement(sqlite3* db, sqlite3_stmt* s) : db_(db), stmt_(s) {}
  void note(int rc);

  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, finalizer> stmt_;
  int bind_error_ = 0;
};

// An flock(2) on the database file, held until destroyed: a running server holds it
// shared, `room delete` exclusive, so that the one refuses while the other runs. It is a
// lock of its own kind, apart from SQLite's fcntl locks on the same file. Its descriptor
// must stay open while a `database` on the file is open in this process: closing any
// descriptor of a file drops the process's fcntl locks on it, SQLite's included.
class database_lock {
 public:
  enum class mode { shared_wait, exclusive_or_fail };
  // Fails with error_code::invalid_argument when `exclusive_or_fail` finds it held.
  [[nodiscard]] static parley::result<database_lock> acquire(const std::filesystem::path& file, mode how);

  database_lock(database_lock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  database_lock& operator=(database_lock&&) = delete;
  database_lock(const database_lock&) = delete;
  ~database_lock();

 private:
  explicit database_lock(int fd) noexcept : fd_(fd) {}
  int fd_;
};

// One connection: WAL, a busy timeout, and the schema at `latest_schema_version`.
class database {
 public:
  static constexpr int latest_schema_version = 3;

  // Creates the file with mode 0600 (and its directory, 0700) when missing, then
  // applies every migration the file has not seen yet, each in its own transaction.
  [[nodiscard]] static parley::result<database> open(const std::filesystem::path& file);

  [[nodiscard]] parley::result<statement> prepare(std::string_view sql) const {
    return statement::prepare(db_.get(), sql);
  }
  [[nodiscard]] parley::result<void> exec(const char* sql) const;
  [[nodiscard]] parley::result<int> schema_version() const;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  [[nodiscard]] std::int64_t changes() const noexcept;

 private:
  struct closer {
    void operator()(sqlite3* db) const noexcept;
  };
  explicit database(sqlite3* db) : db_(db) {}
  [[nodiscard]] parley::result<void> enable_wal() const;
  [[nodiscard]] parley::result<void> migrate() const;

  std::unique_ptr<sqlite3, closer> db_;
};

}  // namespace parley_tools
