// SPDX-License-Identifier: MIT
// The MCP bridge's entry point: stdin/stdout MCP on one side, a parley server's WebSocket on the other.
#pragma once

#include "options.hpp"

namespace parley_tools {

// Runs until stdin closes. Returns the process exit code.
[[nodiscard]] int run_mcp(const mcp_options& options);

}  // namespace parley_tools
