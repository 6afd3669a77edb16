// SPDX-License-Identifier: MIT
// What `parley-tools server` and `parley-tools mcp` are asked to do, after parsing and before running.
#pragma once

#include "log.hpp"

#include <parley/error.hpp>
#include <parley/token_bucket.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace parley_tools {

struct server_options {
  std::string bind = "127.0.0.1";  // an IP literal or "localhost"
  int port = 7539;                 // 0: the OS picks a free port
  std::filesystem::path db_file;   // filled with default_database_path() when not given
  log_level log = log_level::info;
  std::chrono::seconds session_grace{60};  // how long a dropped session may resume
  std::filesystem::path tls_cert;          // PEM; set together with tls_key or not at all
  std::filesystem::path tls_key;
  std::uint32_t max_connections = 10000;
  std::chrono::seconds handshake_timeout{10};  // TCP accept to hello.ok
  std::chrono::seconds ping_interval{30};  // between pings, periodic: not an idle timeout
  std::chrono::seconds pong_timeout{60};
  std::uint64_t max_queue_bytes = 1048576;  // per connection, before a slow consumer is cut off
  std::uint64_t max_message_bytes = 65536;
  parley::token_bucket_config rate{};  // per session (not per connection): capacity 20, 10 per second
  std::uint32_t replay_capacity = 64;  // unacked messages kept per (session, room) for a resume
  std::vector<std::string> allow_origins;  // browser origins besides our own page's (validate() checks each)

  [[nodiscard]] bool tls() const noexcept { return !tls_cert.empty(); }
};

// The first problem with `options`, said the way a user can fix it; nothing if it is fine.
[[nodiscard]] std::optional<std::string> validate(const server_options& options);

struct mcp_options {
  std::string server_url = "ws://127.0.0.1:7539";
  std::string token;                // empty: connect without one (a loopback server)
  std::filesystem::path ca_file;    // PEM bundle for wss://; empty: the system's
  log_level log = log_level::info;  // stderr only: stdout carries MCP
};

[[nodiscard]] std::optional<std::string> validate(const mcp_options& options);

// A token file's first line, without the line ending. Refuses an empty file, so a
// mistyped path never quietly means "no token".
[[nodiscard]] parley::result<std::string> read_token_file(const std::filesystem::path& file);

}  // namespace parley_tools
