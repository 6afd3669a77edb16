// SPDX-License-Identifier: MIT
// The start-up auth rule, the tools' one security policy: loopback binds need no token, every other bind does.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace parley_tools {

// 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and the name "localhost" (any case).
// Anything else, including an unparsable host, counts as reachable from outside.
[[nodiscard]] bool is_loopback_bind(std::string_view host);

struct auth_plan {
  bool tokens_required = false;        // every hello must carry a valid token
  std::optional<std::string> refusal;  // set: do not start; print this and exit 2
  std::optional<std::string> warning;  // set: start, but log this at warn
};

// No flag or variable can relax this: a non-loopback bind requires tokens, and with
// no active token it refuses to start rather than run a server nobody can use
// safely or one someone might "fix" by turning auth off.
[[nodiscard]] auth_plan plan_auth(std::string_view bind, bool tls, bool active_token_exists);

}  // namespace parley_tools
