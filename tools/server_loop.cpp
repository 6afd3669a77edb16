// SPDX-License-Identifier: MIT
// The WebSocket server loop: asio sockets, timers and signals around the core's sans-I/O basic_server.
//
// One io_context thread, so nothing needs a strand. Each connection has a reader
// coroutine that hands bytes to the core and a writer coroutine that sleeps on a timer
// (the asio chat server's condition variable) and writes everything queued in one
// gathered write. Every protocol decision and every deadline is the core's; this file
// moves bytes, fires the core's timer, and closes the sockets the core gives up on.
#include "server_loop.hpp"

#include "auth_rule.hpp"
#include "wall_clock.hpp"
#include "web_assets.hpp"

#include <parley/server.hpp>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <sys/resource.h>
#include <unordered_map>

namespace parley_tools {
namespace {

using asio::ip::tcp;
using tls_stream = asio::ssl::stream<tcp::socket>;

// The core's questions of fact, answered from the token database. A database failure
// is `unavailable`; what that means on the wire is the core's decision. Uses are
// recorded in a batch at the next revocation poll (about once a second), so no hello
// waits on a synchronous database write.
class token_hooks {
 public:
  token_hooks(token_store& tokens, const sqlite_room_store& rooms, bool required, const logger& log)
      : tokens_(&tokens), rooms_(&rooms), required_(required), log_(&log) {}

  [[nodiscard]] bool tokens_required() const noexcept { return required_; }

  [[nodiscard]] parley::token_verdict check_token(std::string_view token) {
    auto verdict = tokens_->check(token);
    if (!verdict) {
      log_->error("cannot check a token: " + verdict.error().message);
      return {parley::token_status::unavailable, {}};
    }
    if (verdict->status == parley::token_status::valid) uses_[verdict->label] = wall_clock_now();
    return *verdict;
  }

  // `token revoke` runs in another process; the database is how we hear of it.
  [[nodiscard]] std::vector<std::string> revoked_labels() {
    record_uses();
    std::vector<std::string> labels;
    auto tokens = tokens_->list();
    if (!tokens) {
      log_->warn("cannot read revocations: " + tokens.error().message);
      return labels;
    }
    for (const auto& t : *tokens)
      if (t.revoked()) labels.push_back(t.label);
    return labels;
  }

  void record_uses() {
    if (auto recorded = tokens_->record_uses(uses_); !recorded)
      log_->warn("cannot record token uses: " + recorded.error().message);
    uses_.clear();
  }

  void log(parley::log_level level, std::string_view line) { log_->write(level, line); }
  [[nodiscard]] bool storage_failing() const noexcept { return !rooms_->write_failure().empty(); }

 private:
  token_store* tokens_;
  const sqlite_room_store* rooms_;
  bool required_;
  const logger* log_;
  std::map<std::string, parley::wall_time> uses_;  // label → last successful hello, not yet written
};

// The server as this binary builds it: real clocks, OpenSSL randomness, SQLite, tokens.
struct tools_policy : parley::server_policy {
  using room_store = sqlite_room_store;
  using server_hooks = token_hooks;
};

class server_runtime;

// What the runtime needs from a connection, whatever its stream type.
class connection_base {
 public:
  virtual ~connection_base() = default;
  virtual void wake_writer() = 0;
  virtual void abort() = 0;
};

template <class Stream>
class connection final : public connection_base, public std::enable_shared_from_this<connection<Stream>> {
 public:
  connection(server_runtime& runtime, parley::connection_id id, Stream stream)
      : runtime_(runtime), id_(id), stream_(std::move(stream)), wake_(stream_.get_executor()) {
    wake_.expires_at(asio::steady_timer::time_point::max());
  }

  void start();
  void wake_writer() override { wake_.cancel(); }
  void abort() override { stop(); }

 private:
  tcp::socket& socket() {
    if constexpr (std::is_same_v<Stream, tcp::socket>) return stream_;
    else return stream_.next_layer();
  }

  asio::awaitable<void> read_loop();
  asio::awaitable<void> write_loop();
  void stop();

  server_runtime& runtime_;
  parley::connection_id id_;
  Stream stream_;
  asio::steady_timer wake_;
  bool ready_to_write_ = !std::is_same_v<Stream, tls_stream>;  // TLS writes wait for the handshake
  bool stopped_ = false;
};

class server_runtime {
 public:
  server_runtime(asio::io_context& io, const server_options& options, server_context& context,
                 std::size_t connection_budget)
      : io_(io),
        options_(options),
        context_(context),
        hub_(open_hub(options, context)),
        core_(hub_, core_config(options), token_hooks(context.tokens, context.rooms, context.tokens_required, context.log)),
        acceptor_(io),
        tick_(io),
        connection_closed_(io),
        signals_(io, SIGINT, SIGTERM),
        tls_(asio::ssl::context::tls_server),
        connection_budget_(connection_budget) {
    connection_closed_.expires_at(asio::steady_timer::time_point::max());
  }

  int run() {
    if (options_.tls()) {
      std::error_code ec;
      tls_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
      tls_.use_certificate_chain_file(options_.tls_cert.string(), ec);
      if (!ec) tls_.use_private_key_file(options_.tls_key.string(), asio::ssl::context::pem, ec);
      if (ec) {
        context_.log.error("cannot load the TLS certificate or key: " + ec.message());
        return 1;
      }
    }
    std::error_code ec;
    const auto address = asio::ip::make_address(options_.bind == "localhost" ? "127.0.0.1" : options_.bind, ec);
    if (ec) {
      context_.log.error("cannot bind to " + options_.bind + ": " + ec.message());
      return 2;
    }
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      context_.log.error("cannot listen on " + options_.bind + ":" + std::to_string(options_.port) + ": " + ec.message());
      return 1;
    }
    const auto bound = acceptor_.local_endpoint();
    const std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
    // The one line on stdout, for scripts and tests that start the server on --port 0.
    std::printf("listening %s://%s:%u\n", options_.tls() ? "wss" : "ws", host.c_str(), bound.port());
    std::fflush(stdout);
    context_.log.info(std::string("listening on ") + (options_.tls() ? "wss://" : "ws://") + host + ":" +
                      std::to_string(bound.port()) + (context_.tokens_required ? " (tokens required)" : " (loopback, no tokens)"));

    tick_.expires_at(asio::steady_timer::time_point::max());
    asio::co_spawn(io_, accept_loop(), asio::detached);
    asio::co_spawn(io_, timer_loop(), asio::detached);
    signals_.async_wait([this](std::error_code error, int signal) {
      if (!error) shut_down(signal);
    });
    io_.run();
    return 0;
  }

  // ---- called by connections ----------------------------------------------

  void receive(parley::connection_id id, std::string_view bytes) {
    core_.receive(id, bytes, moment_now());
    after_core();
  }

  void closed(parley::connection_id id) {
    core_.transport_closed(id, moment_now());
    connections_.erase(id);
    connection_closed_.cancel();
    after_core();
  }

  parley::connection_output take_output(parley::connection_id id) { return core_.take_output(id); }
  void written(parley::connection_id id, std::size_t bytes) { core_.written(id, bytes); }
  const logger& log() const { return context_.log; }

 private:
  using hub_type = parley::basic_hub<tools_policy>;

  static hub_type open_hub(const server_options& options, server_context& context) {
    auto opened = hub_type::open(context.rooms, context.random, options.hub);
    if (!opened) throw std::runtime_error("cannot load rooms: " + opened.error().message);
    return std::move(*opened);
  }

  static parley::server_config core_config(const server_options& options) {
    parley::server_config config = options.core;
    config.tls = options.tls();
    config.loopback_hosts_only = is_loopback_bind(options.bind);
    for (const auto& origin : options.allow_origins) config.allowed_origins.push_back(*parley::parse_web_origin(origin));
    config.web_assets = web_assets();
    return config;
  }

  // After every call into the core: wake the writers with new output, cut the sockets
  // the core gave up on, stop when it is finished, and wake the timer sooner if the
  // core's next deadline moved earlier.
  void after_core() {
    for (parley::connection_id id : core_.take_writable())
      if (auto it = connections_.find(id); it != connections_.end()) it->second->wake_writer();
    for (parley::connection_id id : core_.take_aborted()) {
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      auto c = it->second;  // abort() ends in closed(), which erases the entry
      c->abort();
    }
    if (core_.finished()) return io_.stop();
    if (auto next = core_.next_deadline(); next && *next < tick_.expiry()) tick_.cancel();
  }

  asio::awaitable<void> accept_loop() {
    asio::steady_timer backoff(io_);
    for (;;) {
      std::error_code ec;
      // Past the budget the descriptors left are the database's, TLS's and the
      // sanitizers': connections wait in the backlog until one closes, and accept never
      // meets EMFILE of our own making.
      while (connections_.size() >= connection_budget_) {
        budget_waits_.write(context_.log, log_level::warn,
                            std::to_string(connections_.size()) +
                                " connections use the file descriptors allowed: new ones wait until one closes",
                            std::chrono::steady_clock::now());
        co_await connection_closed_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (stopping_) co_return;
      }
      tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) co_return;
        // Out of descriptors or memory, accept fails at once for as long as it lasts:
        // retrying at once would spin a core. Wait for connections to close instead.
        const int e = ec.value();
        const bool exhausted = ec.category() == asio::error::get_system_category() &&
                               (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM);
        accept_failures_.write(context_.log, log_level::warn,
                               "accept failed: " + ec.message() + (exhausted ? "; pausing accepts for 100 ms" : ""),
                               std::chrono::steady_clock::now());
        if (exhausted) {
          backoff.expires_after(std::chrono::milliseconds(100));
          co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto id = core_.accept(moment_now(), from_loopback(socket));
      if (!id) {
        refusals_.write(context_.log, log_level::warn,
                        "connection refused: the limit of " + std::to_string(options_.core.max_connections) + " is reached",
                        std::chrono::steady_clock::now());
        // A TLS client would read a plaintext 503 as a broken handshake: it gets the close alone.
        if (options_.tls()) continue;
        auto refused = std::make_shared<tcp::socket>(std::move(socket));
        auto response = std::make_shared<std::string>(parley::server::capacity_response());
        asio::async_write(*refused, asio::buffer(*response), [refused, response](std::error_code, std::size_t) {
          std::error_code ignored;
          refused->shutdown(tcp::socket::shutdown_both, ignored);
        });
        continue;
      }
      if (options_.tls()) {
        auto c = std::make_shared<connection<tls_stream>>(*this, *id, tls_stream(std::move(socket), tls_));
        connections_.emplace(*id, c);
        c->start();
      } else {
        auto c = std::make_shared<connection<tcp::socket>>(*this, *id, std::move(socket));
        connections_.emplace(*id, c);
        c->start();
      }
      after_core();  // the handshake deadline may be the core's nearest now
    }
  }

  static bool from_loopback(const tcp::socket& socket) {
    std::error_code ec;
    auto address = socket.remote_endpoint(ec).address();
    if (ec) return false;
    if (address.is_v6() && address.to_v6().is_v4_mapped())
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    return address.is_loopback();
  }

  // Sleeps until the core's next deadline; after_core() cancels the sleep when an
  // event brings that deadline closer. Both calls are cheap: the core keeps its
  // deadlines ordered, so neither walks the connections.
  asio::awaitable<void> timer_loop() {
    for (;;) {
      core_.on_timer(moment_now());
      after_core();
      if (io_.stopped()) co_return;
      const auto next = core_.next_deadline();
      tick_.expires_at(next ? asio::steady_timer::time_point(*next) : asio::steady_timer::time_point::max());
      std::error_code ec;
      co_await tick_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  void shut_down(int signal) {
    context_.log.info(std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ": shutting down");
    stopping_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    connection_closed_.cancel();
    core_.hooks().record_uses();
    core_.shutdown(moment_now());  // close frames go out; finished() within the shutdown grace
    after_core();
  }

  asio::io_context& io_;
  const server_options& options_;
  server_context& context_;
  hub_type hub_;
  parley::basic_server<tools_policy> core_;
  tcp::acceptor acceptor_;
  asio::steady_timer tick_;
  asio::steady_timer connection_closed_;  // never expires; cancelled when a connection closes
  asio::signal_set signals_;
  asio::ssl::context tls_;
  std::unordered_map<parley::connection_id, std::shared_ptr<connection_base>> connections_;
  throttled_log accept_failures_;
  throttled_log refusals_;
  throttled_log budget_waits_;
  std::size_t connection_budget_;
  bool stopping_ = false;
};

template <class Stream>
void connection<Stream>::start() {
  auto self = this->shared_from_this();
  asio::co_spawn(stream_.get_executor(), [self]() { return self->read_loop(); }, asio::detached);
  asio::co_spawn(stream_.get_executor(), [self]() { return self->write_loop(); }, asio::detached);
}

template <class Stream>
asio::awaitable<void> connection<Stream>::read_loop() {
  std::error_code ec;
  if constexpr (std::is_same_v<Stream, tls_stream>) {
    co_await stream_.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      runtime_.log().debug("TLS handshake failed: " + ec.message());
      stop();
      co_return;
    }
    ready_to_write_ = true;
    wake_writer();
  }
  std::array<char, 16384> buffer;
  while (!stopped_) {
    const std::size_t n = co_await stream_.async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    runtime_.receive(id_, std::string_view(buffer.data(), n));
  }
  stop();
}

template <class Stream>
asio::awaitable<void> connection<Stream>::write_loop() {
  std::vector<parley::shared_frame> frames;
  std::vector<asio::const_buffer> buffers;
  while (!stopped_) {
    parley::connection_output out;
    if (ready_to_write_) out = runtime_.take_output(id_);
    if (out.frames.empty() && !out.close_after) {
      std::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    // Coalesced: everything queued goes out in one gathered write.
    frames = std::move(out.frames);
    buffers.clear();
    std::size_t bytes = 0;
    for (const auto& f : frames) {
      buffers.emplace_back(asio::buffer(*f));
      bytes += f->size();
    }
    std::error_code ec;
    // A peer that stops reading holds this write open; the core's close linger then
    // aborts the connection, which cancels it.
    if (!buffers.empty()) co_await asio::async_write(stream_, buffers, asio::redirect_error(asio::use_awaitable, ec));
    runtime_.written(id_, bytes);
    if (ec) {
      stop();
      co_return;
    }
    if (out.close_after) {
      if constexpr (std::is_same_v<Stream, tls_stream>) {
        co_await stream_.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
      }
      socket().shutdown(tcp::socket::shutdown_send, ec);
      break;
    }
  }
  // The reader sees the peer's FIN and reports the transport closed; a peer that never
  // hangs up is cut off when the core's close linger runs out.
}

template <class Stream>
void connection<Stream>::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  socket().close(ignored);
  wake_.cancel();
  runtime_.closed(id_);
}

}  // namespace

// Each connection is a descriptor, and a shell's or a unit's soft limit (often 1024) is
// far below --max-connections: raise it to the hard limit, and say so when even that is
// too few, rather than find out as accept failures under load. Returns how many
// connections the limit leaves room for once the listener, the database and its
// journal, stdio, TLS and the sanitizers' pipes have theirs.
std::size_t raise_descriptor_limit(const server_options& options, const logger& log) {
  constexpr rlim_t reserved = 64;
  const auto unlimited = std::numeric_limits<std::size_t>::max();
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return unlimited;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0)
      log.debug("raised the descriptor limit from " + std::to_string(before) + " to " + std::to_string(limit.rlim_cur));
    else if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
      return unlimited;
  }
  if (limit.rlim_cur == RLIM_INFINITY) return unlimited;
  const std::size_t budget = limit.rlim_cur > reserved ? static_cast<std::size_t>(limit.rlim_cur - reserved) : 1;
  if (budget < options.core.max_connections)
    log.warn("only " + std::to_string(limit.rlim_cur) + " file descriptors are allowed, too few for --max-connections " +
             std::to_string(options.core.max_connections) + ": past " + std::to_string(budget) +
             " connections new ones wait until others close. Raise `ulimit -n` or LimitNOFILE=, or lower "
             "--max-connections");
  return budget;
}

int run_server(const server_options& options, server_context& context) {
  const std::size_t connection_budget = raise_descriptor_limit(options, context.log);
  try {
    asio::io_context io(1);
    server_runtime runtime(io, options, context, connection_budget);
    return runtime.run();
  } catch (const std::exception& e) {
    context.log.error(std::string("server stopped: ") + e.what());
    return 1;
  }
}

}  // namespace parley_tools
