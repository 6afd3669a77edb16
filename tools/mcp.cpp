// SPDX-License-Identifier: MIT
// The MCP bridge's loop: stdin, stdout, one connection at a time and a timer around the core's parley::bridge.
//
// Every decision (what to answer, when to dial, what to ack, when to stop) is the
// bridge's. stdin is read on a thread of its own (it may be a pipe, a file or a
// terminal; see stdin_reader.hpp); everything else runs on one io_context thread.
#include "mcp.hpp"

#include "crypto.hpp"
#include "log.hpp"
#include "server_link.hpp"
#include "stdin_reader.hpp"
#include "wall_clock.hpp"

#include <parley/bridge.hpp>
#include <parley/server_url.hpp>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <csignal>
#include <memory>
#include <unistd.h>

namespace parley_tools {
namespace {

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the host went away; stdin EOF follows and ends us
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

class bridge_runtime {
 public:
  bridge_runtime(asio::io_context& io, const mcp_options& options, parley::server_url url)
      : io_(io),
        url_(std::move(url)),
        log_(options.log),
        bridge_(config(options, url_), openssl_random_source(), wall_clock_now()),
        timer_(io),
        signals_(io, SIGINT, SIGTERM),
        tls_(asio::ssl::context::tls_client) {
    if (url_.tls) {
      tls_.set_default_verify_paths();
      if (!options.ca_file.empty()) tls_.load_verify_file(options.ca_file.string());
      tls_.set_verify_mode(asio::ssl::verify_peer);
    }
  }

  int run() {
    signals_.async_wait([this](std::error_code ec, int) {
      if (ec) return;
      bridge_.shutdown(wall_clock_now());
      pump();
    });
    stdin_ = std::make_unique<stdin_reader>(
        io_, STDIN_FILENO,
        [this](std::string bytes) {
          bridge_.receive_stdin(bytes, wall_clock_now());
          pump();
        },
        [this] {
          bridge_.shutdown(wall_clock_now());
          pump();
        });
    pump();
    io_.run();
    stdin_.reset();  // cuts the reader before the io_context it posts to goes away
    return 0;
  }

 private:
  static parley::bridge_config config(const mcp_options& options, const parley::server_url& url) {
    parley::bridge_config c;
    c.host = url.host_header;
    c.path = url.path;
    if (!options.token.empty()) c.token = options.token;
    return c;
  }

  // After every event: write what the bridge produced, act on what it decided.
  void pump() {
    const auto lines = bridge_.take_stdout();
    if (!lines.empty()) {
      std::string out;
      for (const auto& line : lines) out.append(line).push_back('\n');
      write_all(STDOUT_FILENO, out);  // one writer owns stdout; pushes and answers never interleave
      bridge_.stdout_written();
    }
    if (bridge_.finished()) return stop();
    std::string bytes = bridge_.take_socket_output();
    const bool close = bridge_.take_close_request();
    if (link_ && !bytes.empty()) link_->write(std::move(bytes));
    if (link_ && close) link_->close_after_write();
    if (!link_ && bridge_.wants_connection(wall_clock_now())) dial();
    arm_timer();
  }

  void arm_timer() {
    auto next = bridge_.next_deadline();
    if (!next) return;
    timer_.expires_after(std::max(parley::milliseconds(1), *next - wall_clock_now()));
    timer_.async_wait([this](std::error_code ec) {
      if (ec) return;
      bridge_.on_timer(wall_clock_now());
      pump();
    });
  }

  void dial() {
    // Each connection reports through handlers that know which link they belong to, so
    // nothing from an old connection can reach the bridge once another is current.
    bridge_.dialing(wall_clock_now());
    const std::uint64_t id = ++last_link_;
    server_link::handlers h;
    h.connected = [this, id] {
      if (id != current_link_) return;
      bridge_.connected(wall_clock_now());
      pump();
    };
    h.received = [this, id](std::string_view bytes) {
      if (id != current_link_) return;
      bridge_.receive_socket(bytes, wall_clock_now());
      pump();
    };
    h.ended = [this, id](std::string why) {
      if (id != current_link_) return;
      log_.debug("parley connection ended: " + why);
      link_.reset();
      current_link_ = 0;
      bridge_.disconnected(wall_clock_now());
      pump();
    };
    current_link_ = id;
    link_ = server_link::dial(io_, url_.tls ? &tls_ : nullptr, url_, std::move(h));
  }

  void stop() {
    if (link_) link_->cancel();
    link_.reset();
    timer_.cancel();
    signals_.cancel();
    if (stdin_) stdin_->cut();
    io_.stop();
  }

  asio::io_context& io_;
  parley::server_url url_;
  logger log_;
  parley::bridge bridge_;
  asio::steady_timer timer_;
  asio::signal_set signals_;
  asio::ssl::context tls_;
  std::shared_ptr<server_link> link_;  // the transport the bridge knows of, from dial to ended
  std::uint64_t last_link_ = 0;
  std::uint64_t current_link_ = 0;
  std::unique_ptr<stdin_reader> stdin_;
};

}  // namespace

int run_mcp(const mcp_options& options) {
  auto url = parley::parse_server_url(options.server_url);
  if (!url) {
    logger(options.log).error("--server " + options.server_url + ": " + url.error().message);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  try {
    asio::io_context io(1);
    bridge_runtime runtime(io, options, *url);
    return runtime.run();
  } catch (const std::exception& e) {
    logger(options.log).error(std::string("mcp bridge stopped: ") + e.what());
    return 1;
  }
}

}  // namespace parley_tools
