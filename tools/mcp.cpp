// PLACEHOLDER: run_mcp is a stub until the MCP bridge lands; replace this whole file then.
#include "mcp.hpp"

namespace parley_tools {

int run_mcp(const mcp_options& options) {
  logger(options.log).error("mcp: not yet implemented");
  return 2;
}

}  // namespace parley_tools
