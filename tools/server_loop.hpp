// SPDX-License-Identifier: MIT
// The server loop's entry point: everything start-up opened and decided, handed over in one call.
#pragma once

#include "database_worker.hpp"
#include "log.hpp"
#include "options.hpp"
#include "sqlite_store.hpp"
#include "token_store.hpp"

#include <parley/random_source.hpp>

namespace parley_tools {

// What main() has prepared by the time the server runs. The references outlive the call.
struct server_context {
  sqlite_room_store& rooms;
  token_store& tokens;        // check() each hello's token
  database_worker& writer;    // the writes: rooms' (through `rooms`) and token uses
  bool tokens_required;       // from plan_auth(): false only on a loopback bind
  const logger& log;
  parley::random_source random;  // OpenSSL RAND_bytes
};

// Runs until SIGINT/SIGTERM. Returns the process exit code.
[[nodiscard]] int run_server(const server_options& options, server_context& context);

}  // namespace parley_tools
