// SPDX-License-Identifier: MIT
// What `parley-tools server` and `parley-tools mcp` are asked to do, after parsing and before running.
#pragma once

#include "log.hpp"

#include <parley/error.hpp>
#include <parley/hub.hpp>
#include <parley/server.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace parley_tools {

inline constexpr std::size_t max_io_threads = 256;

struct server_options {
  std::string bind = "127.0.0.1";  // an IP literal or "localhost"
  int port = 7539;                 // 0: the OS picks a free port
  std::filesystem::path db_file;   // filled with default_database_path() when not given
  log_level log = log_level::info;
  std::filesystem::path tls_cert;  // PEM; set together with tls_key or not at all
  std::filesystem::path tls_key;
  std::vector<std::string> allow_origins;  // browser origins besides our own page's (validate() checks each)
  // Threads for connection I/O (reads, TLS, writes); 1: everything, the hub included, on one thread.
  std::size_t threads = 1;  // main() makes the number of cores the default
  // --cluster: the NATS servers that join this server to others (docs/cluster.md); empty:
  // one process on SQLite.
  std::vector<std::string> cluster;
  std::filesystem::path cluster_creds;       // a NATS .creds file; optional
  std::filesystem::path cluster_token_file;  // a file holding a NATS token; optional
  int cluster_replicas = 1;                  // JetStream replicas of the rooms' stream: 3 on a 3-node NATS cluster
  // The core's own settings, defaults and all: the flags write into them directly.
  parley::hub_config hub;      // --session-grace, --rate-*, --replay-capacity, --max-rooms, --room-*
  parley::server_config core;  // --max-connections, --handshake-timeout, --ping-interval, --pong-timeout, --max-*-bytes

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
