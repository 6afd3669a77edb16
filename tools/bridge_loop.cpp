// SPDX-License-Identifier: MIT
// The MCP bridge's loop: stdin, stdout, one connection at a time and a timer around the core's parley::bridge.
//
// Every decision (what to answer, when to dial, what to ack, when to stop) is the
// bridge's: after each event the loop asks bridge.poll(now) and does what it says.
// Everything, stdin included (see stdin_reader.hpp), runs on one io_context thread, so a
// request from the host costs one wakeup of one thread.
#include "bridge_loop.hpp"

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
        bridge_(config(options, url_), openssl_random_source()),
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
      bridge_.shutdown(steady_clock_now());
      pump();
    });
    stdin_ = std::make_unique<stdin_reader>(
        io_, STDIN_FILENO,
        [this](std::string bytes) {
          stdin_held_ = true;  // the reader waits for resume(), which pump() gives once the bridge wants input
          bridge_.receive_stdin(bytes, steady_clock_now());
          pump();
        },
        [this] {
          bridge_.shutdown(steady_clock_now());
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
    c.client.host = url.host_header;
    c.client.path = url.path;
    if (!options.token.empty()) c.client.token = options.token;
    return c;
  }

  // After every event: do what the bridge decided. Writing stdout releases acks, which
  // the next poll hands out, so the loop goes round until a poll brings no stdout.
  void pump() {
    for (;;) {
      auto a = bridge_.poll(steady_clock_now());
      if (!a.stdout_lines.empty()) {
        std::string out;
        for (const auto& line : a.stdout_lines) out.append(line).push_back('\n');
        write_all(STDOUT_FILENO, out);  // one writer owns stdout; pushes and answers never interleave
        bridge_.stdout_written(a.batch);
      }
      if (a.finished) return stop();
      if (link_ && !a.send.empty()) link_->write(std::move(a.send));
      if (link_ && a.close) link_->close_after_write();
      if (a.dial) dial();
      arm_timer(a.deadline);
      if (a.stdout_lines.empty()) break;
    }
    if (stdin_held_ && stdin_ && bridge_.wants_input()) {
      stdin_held_ = false;
      stdin_->resume();
    }
  }

  // The deadline moves with nearly every event (the silence timeout counts from the last
  // frame heard), and re-arming costs a cancelled wait and a timerfd_settime or two each
  // time. A timer that fires early does no harm, since pump() polls with `now` and
  // re-arms; so it is re-armed only when the deadline comes sooner than the armed one.
  void arm_timer(std::optional<parley::steady_time> deadline) {
    if (!deadline || (armed_ && *deadline >= *armed_)) return;
    armed_ = deadline;
    timer_.expires_at(*deadline);
    timer_.async_wait([this](std::error_code ec) {
      if (ec) return;
      armed_.reset();
      pump();  // poll(now) handles what is due, and arms the next deadline
    });
  }

  void dial() {
    // Each connection reports through handlers that know which link they belong to, so
    // nothing from an old connection can reach the bridge once another is current.
    const std::uint64_t id = ++last_link_;
    server_link::handlers h;
    h.connected = [this, id] {
      if (id != current_link_) return;
      last_failure_.clear();
      bridge_.connected(steady_clock_now());
      pump();
    };
    h.received = [this, id](std::string_view bytes) {
      if (id != current_link_) return;
      bridge_.receive_socket(bytes, steady_clock_now());
      pump();
    };
    h.ended = [this, id](std::string why) {
      if (id != current_link_) return;
      // Retries repeat the same failure every few seconds: say it at warn when it is new
      // (an expired certificate, a refused port), then at debug until something changes.
      if (why != last_failure_) log_.warn("parley connection ended: " + why);
      else log_.debug("parley connection ended: " + why);
      last_failure_ = why;
      link_.reset();
      current_link_ = 0;
      bridge_.disconnected(steady_clock_now(), std::move(why));
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
  std::optional<parley::steady_time> armed_;  // when timer_ fires, if it is waiting
  asio::signal_set signals_;
  std::string last_failure_;  // the last connection's end, logged at warn once
  asio::ssl::context tls_;
  std::shared_ptr<server_link> link_;  // the transport the bridge knows of, from dial to ended
  std::uint64_t last_link_ = 0;
  std::uint64_t current_link_ = 0;
  std::unique_ptr<stdin_reader> stdin_;
  bool stdin_held_ = false;  // a chunk was delivered and the reader waits for resume()
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
