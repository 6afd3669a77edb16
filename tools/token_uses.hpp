// SPDX-License-Identifier: MIT
// Token uses written by the database worker, so the server's once-a-second batch never waits on an fsync.
#pragma once

#include "database_worker.hpp"
#include "log.hpp"
#include "token_store.hpp"

#include <map>
#include <string>
#include <utility>

namespace parley_tools {

// Queues token_store::record_uses for `uses` on `worker`; a failure is logged at warn,
// as the synchronous call's caller does. `log` must outlive the worker's queue.
inline void record_token_uses_in_background(database_worker& worker, std::map<std::string, parley::wall_time> uses,
                                            const logger& log) {
  if (uses.empty()) return;
  worker.post([uses = std::move(uses), &log](const database& db) {
    token_store tokens(db, nullptr);  // record_uses draws no randomness
    if (auto recorded = tokens.record_uses(uses); !recorded)
      log.warn("cannot record token uses: " + recorded.error().message);
  });
}

}  // namespace parley_tools
