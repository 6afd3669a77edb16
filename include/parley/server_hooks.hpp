// SPDX-License-Identifier: MIT
// What a server asks of its host: whether a token is good, which tokens were revoked, and where log lines go.
//
// The host (tools/, a test) answers questions of fact; the core decides what each
// answer means on the wire. A hook never writes an error message or picks a code.
#pragma once

#include "log_level.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace parley {

// What the host knows of a bearer token.
enum class token_status {
  valid,        // issued and not revoked: `label` names it
  unknown,      // never issued
  revoked,      // issued, then revoked: `label` names it
  unavailable,  // the host could not tell (its database failed): the client may retry later
};

struct token_verdict {
  token_status status = token_status::unknown;
  std::string label;  // for valid and revoked
};

// A policy's server_hooks is any type with these members:
//
//   bool tokens_required() const;
//       false: every client is welcome without a token, as on a loopback bind;
//   token_verdict check_token(std::string_view token);
//       once per fresh hello that presents a token (and for the web page's sign-in);
//       a server that requires none still asks, since a token's label is a principal;
//   std::vector<std::string> revoked_labels();
//       every label revoked so far; polled while sessions hold a label, at
//       server_config::revocation_poll_interval, so a revocation made by another
//       process closes that label's sessions within the interval;
//   void log(log_level, std::string_view line);
//       one line per event; the core never passes a token or a message body;
//   bool storage_failing() const;
//       the host's storage failed its latest write and has not recovered since
//       (a full or read-only disk): /healthz then answers 503, so a probe or a load
//       balancer sees it while rooms go on from their reserved seq blocks.
//
// open_server_hooks is the loopback server's: no tokens, no log.
struct open_server_hooks {
  [[nodiscard]] bool tokens_required() const noexcept { return false; }
  [[nodiscard]] token_verdict check_token(std::string_view) { return {token_status::unknown, {}}; }
  [[nodiscard]] std::vector<std::string> revoked_labels() { return {}; }
  void log(log_level, std::string_view) {}
  [[nodiscard]] bool storage_failing() const noexcept { return false; }
};

}  // namespace parley
