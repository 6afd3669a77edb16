// SPDX-License-Identifier: MIT
// The MCP bridge's loop: stdin, stdout, one TCP/TLS connection and a timer around the core's parley::bridge.
//
// Every decision (what to answer, when to dial, what to ack, when to stop) is the
// bridge's. This file only reads stdin on a thread of its own (stdin may be a pipe,
// a file or a terminal; see stdin_reader.hpp), writes stdout, and runs the socket on
// one io_context.
#include "mcp.hpp"

#include "crypto.hpp"
#include "log.hpp"
#include "stdin_reader.hpp"
#include "wall_clock.hpp"

#include <parley/bridge.hpp>
#include <parley/server_url.hpp>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <csignal>
#include <cstdio>
#include <memory>
#include <unistd.h>

namespace parley_tools {
namespace {

using asio::ip::tcp;
using parley::server_url;

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
  bridge_runtime(asio::io_context& io, const mcp_options& options, server_url url)
      : io_(io),
        options_(options),
        url_(std::move(url)),
        log_(options.log),
        bridge_(config(options, url_), openssl_random_source(), wall_clock_now()),
        timer_(io),
        signals_(io, SIGINT, SIGTERM),
        tls_(asio::ssl::context::tls_client) {
    if (url_.tls) {
      tls_.set_default_verify_paths();
      if (!options_.ca_file.empty()) tls_.load_verify_file(options_.ca_file.string());
      tls_.set_verify_mode(asio::ssl::verify_peer);
    }
  }

  int run() {
    signals_.async_wait([this](std::error_code ec, int) {
      if (!ec) {
        bridge_.shutdown(wall_clock_now());
        pump();
      }
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
  static parley::bridge_config config(const mcp_options& options, const server_url& url) {
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
    if (bridge_.finished()) {
      close_socket();
      if (stdin_) stdin_->cut();
      io_.stop();
      return;
    }
    socket_out_ += bridge_.take_socket_output();
    if (bridge_.take_close_request()) close_after_write_ = true;
    if (connected_) start_write();
    if (!connecting_ && !connected_ && bridge_.wants_connection(wall_clock_now())) dial();
    arm_timer();
  }

  void arm_timer() {
    auto next = bridge_.next_deadline();
    if (!next) return;
    const auto wait = std::max(parley::milliseconds(1), *next - wall_clock_now());
    timer_.expires_after(wait);
    timer_.async_wait([this](std::error_code ec) {
      if (ec) return;
      bridge_.on_timer(wall_clock_now());
      pump();
    });
  }

  void dial() {
    connecting_ = true;
    bridge_.dialing(wall_clock_now());
    const std::uint64_t generation = ++generation_;
    asio::co_spawn(io_, connect(generation), asio::detached);
  }

  asio::awaitable<void> connect(std::uint64_t generation) {
    std::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = co_await resolver.async_resolve(url_.host, std::to_string(url_.port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    auto socket = std::make_unique<tcp::socket>(io_);
    if (!ec) co_await asio::async_connect(*socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) socket->set_option(tcp::no_delay(true), ec);
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;
    if (!ec && url_.tls) {
      tls = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(*socket), tls_);
      SSL_set_tlsext_host_name(tls->native_handle(), url_.host.c_str());
      tls->set_verify_callback(asio::ssl::host_name_verification(url_.host));
      co_await tls->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (generation != generation_) co_return;  // shut down meanwhile
    connecting_ = false;
    if (ec) {
      log_.debug("cannot reach " + url_.host + ":" + std::to_string(url_.port) + ": " + ec.message());
      bridge_.disconnected(wall_clock_now());
      pump();
      co_return;
    }
    socket_ = std::move(socket);
    tls_stream_ = std::move(tls);
    connected_ = true;
    bridge_.connected(wall_clock_now());
    asio::co_spawn(io_, read_loop(generation), asio::detached);
    pump();
  }

  asio::awaitable<void> read_loop(std::uint64_t generation) {
    std::array<char, 16384> buffer;
    for (;;) {
      std::error_code ec;
      std::size_t n = 0;
      if (tls_stream_)
        n = co_await tls_stream_->async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      else
        n = co_await socket_->async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (generation != generation_) co_return;
      if (ec) {
        lost(wall_clock_now());
        co_return;
      }
      bridge_.receive_socket(std::string_view(buffer.data(), n), wall_clock_now());
      pump();
    }
  }

  void start_write() {
    if (writing_ || !connected_) return;
    if (socket_out_.empty()) {
      if (close_after_write_) {
        close_after_write_ = false;
        lost(wall_clock_now());
      }
      return;
    }
    writing_ = true;
    in_write_ = std::exchange(socket_out_, {});
    auto done = [this, generation = generation_](std::error_code ec, std::size_t) {
      writing_ = false;
      if (generation != generation_) return;
      if (ec) return lost(wall_clock_now());
      start_write();
    };
    if (tls_stream_) asio::async_write(*tls_stream_, asio::buffer(in_write_), done);
    else asio::async_write(*socket_, asio::buffer(in_write_), done);
  }

  void lost(parley::time_point now) {
    close_socket();
    bridge_.disconnected(now);
    pump();
  }

  void close_socket() {
    ++generation_;
    connected_ = false;
    connecting_ = false;
    writing_ = false;
    close_after_write_ = false;
    socket_out_.clear();
    std::error_code ignored;
    if (tls_stream_) tls_stream_->lowest_layer().close(ignored);
    if (socket_) socket_->close(ignored);
  }

  asio::io_context& io_;
  const mcp_options& options_;
  server_url url_;
  logger log_;
  parley::bridge bridge_;
  asio::steady_timer timer_;
  asio::signal_set signals_;
  asio::ssl::context tls_;
  std::unique_ptr<tcp::socket> socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_stream_;
  std::string socket_out_;
  std::string in_write_;
  std::uint64_t generation_ = 0;
  bool connecting_ = false;
  bool connected_ = false;
  bool writing_ = false;
  bool close_after_write_ = false;
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
