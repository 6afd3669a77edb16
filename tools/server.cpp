// PLACEHOLDER: run_server is a stub until the asio server loop lands; replace this whole file then.
#include "server.hpp"

namespace parley_tools {

int run_server(const server_options&, server_context& context) {
  context.log.error("server: not yet implemented");
  return 2;
}

}  // namespace parley_tools
