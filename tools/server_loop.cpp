// SPDX-License-Identifier: MIT
// The WebSocket server loop: asio sockets, timers and signals around the core's sans-I/O basic_server.
//
// The hub (the core: one deterministic sequencer) runs on one thread with the acceptor,
// the timer and the signals. Connections live on --threads I/O threads, one io_context
// each, so no handler needs a strand: they read, do TLS and write there, and talk to the
// hub through its io_context's queue (bytes read, writes done, closes) while the hub
// hands them frames through theirs. With --threads 1 everything shares one thread and
// no call crosses a queue. Every protocol decision and every deadline is the core's;
// this file moves bytes, fires the core's timer, and closes the sockets the core gives
// up on.
#include "server_loop.hpp"

#include "auth_rule.hpp"
#include "nats_link.hpp"
#include "token_uses.hpp"
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
#include <thread>
#include <unordered_map>
#include <utility>

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
  token_hooks(token_store& tokens, database_worker& writer, const sqlite_room_store& rooms, bool required,
              const logger& log)
      : tokens_(&tokens), writer_(&writer), rooms_(&rooms), required_(required), log_(&log) {}

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

  void record_uses() { record_token_uses_in_background(*writer_, std::exchange(uses_, {}), *log_); }

  void log(parley::log_level level, std::string_view line) { log_->write(level, line); }
  // A node that cannot reach NATS cannot order its rooms' messages: a probe hears so too.
  [[nodiscard]] bool storage_failing() const noexcept { return !rooms_->write_failure().empty() || !cluster_reachable_; }
  void cluster_reachable(bool reachable) noexcept { cluster_reachable_ = reachable; }

 private:
  token_store* tokens_;
  database_worker* writer_;
  const sqlite_room_store* rooms_;
  bool required_;
  const logger* log_;
  std::map<std::string, parley::wall_time> uses_;  // label → last successful hello, not yet written
  bool cluster_reachable_ = true;
};

// The server as this binary builds it: real clocks, OpenSSL randomness, SQLite, tokens.
struct tools_policy : parley::server_policy {
  using room_store = sqlite_room_store;
  using server_hooks = token_hooks;
};

class server_runtime;
struct io_thread;

// What the runtime needs from a connection, whatever its stream type. The hub decides
// these; each runs on the connection's own thread.
class connection_base {
 public:
  virtual ~connection_base() = default;
  virtual void deliver_here(parley::connection_output out) = 0;  // frames to write, maybe then a close
  virtual void resume_reading_here() = 0;                         // the hub took in the last read
  virtual void abort_here() = 0;                                  // cut the socket now
  [[nodiscard]] virtual io_thread* home() const noexcept = 0;     // nullptr: the hub's own thread
};

using io_executor = asio::io_context::executor_type;

// What an I/O thread tells the hub.
struct hub_event {
  enum class kind { received, written, closed, log } what;
  parley::connection_id id = 0;
  std::string bytes{};                             // received: the bytes; log: the line
  std::size_t written_bytes = 0;                   // written
  std::vector<parley::shared_frame> emptied{};     // written: the frames' vector, cleared, for reuse
  std::shared_ptr<connection_base> connection{};   // received: whom to let read again
};

// What the hub tells one connection on an I/O thread.
struct connection_job {
  std::shared_ptr<connection_base> connection;
  std::optional<parley::connection_output> output{};
  bool resume_reading = false;
  bool abort = false;
};

// One I/O thread: its io_context and its mail in both directions. Each direction is
// gathered while the sender works through what is ready and crosses in one post, so a
// fan-out to 99 connections is one wakeup per thread, not 99, and 99 acks read in one
// pass reach the hub as one.
struct io_thread {
  explicit io_thread(std::size_t i) : index(i) {}
  asio::io_context io{1};
  std::size_t index;
  std::vector<hub_event> to_hub;  // touched on this thread only
  bool to_hub_posted = false;
};

// One socket, served on one I/O thread. It reads, writes and does TLS there; every
// byte it reads and every write it finishes is reported to the hub's thread, and the
// hub hands it frames to write. An idle connection holds no read buffer and no
// coroutine frame: it waits for readability and reads into its thread's buffer.
template <class Stream>
class connection final : public connection_base, public std::enable_shared_from_this<connection<Stream>> {
  static constexpr bool tls = std::is_same_v<Stream, tls_stream>;

 public:
  connection(server_runtime& runtime, parley::connection_id id, Stream stream, io_executor own, io_thread* home)
      : runtime_(runtime), id_(id), stream_(std::move(stream)), own_(own), home_(home) {}

  void start() {
    run_here([self = this->shared_from_this()] { self->begin(); });
  }

  void deliver_here(parley::connection_output out) override { queue(std::move(out)); }
  void resume_reading_here() override {
    if constexpr (tls) read_more();
    else read_now();
  }
  void abort_here() override { stop(); }
  [[nodiscard]] io_thread* home() const noexcept override { return home_; }

 private:
  tcp::socket& socket() {
    if constexpr (tls) return stream_.next_layer();
    else return stream_;
  }

  // Inline when already on this connection's thread (always so with --threads 1).
  template <class F>
  void run_here(F&& f) {
    if (own_.running_in_this_thread()) f();
    else asio::post(own_, std::forward<F>(f));
  }

  void begin();
  void read_more();
  void read_now();
  void hand_to_hub(std::string_view bytes);
  void queue(parley::connection_output out);
  void write_more();
  void stop();

  server_runtime& runtime_;
  parley::connection_id id_;
  Stream stream_;
  io_executor own_;
  io_thread* home_;
  std::vector<parley::shared_frame> queued_;   // from the hub, not yet handed to the socket
  std::vector<parley::shared_frame> writing_;  // the frames of the write in flight
  std::vector<asio::const_buffer> buffers_;
  std::unique_ptr<std::array<char, 16384>> tls_buffer_;  // TLS reads need their own (OpenSSL keeps state)
  bool write_in_flight_ = false;
  bool ready_to_write_ = !tls;  // TLS writes wait for the handshake
  bool close_after_ = false;    // the hub's last frames are queued: close once they are written
  bool stopped_ = false;
};

// The I/O threads: one io_context each, so a connection's handlers never run
// concurrently and need no strand. With --threads 1 there are none and the hub's own
// io_context serves the connections too: today's single-threaded server, no queue hops.
class io_pool {
 public:
  explicit io_pool(std::size_t threads) {
    if (threads <= 1) return;
    for (std::size_t i = 0; i < threads; ++i) {
      contexts_.push_back(std::make_unique<io_thread>(i));
      guards_.emplace_back(contexts_.back()->io.get_executor());
    }
  }
  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;
  ~io_pool() { stop(); }

  void start() {
    for (auto& c : contexts_) threads_.emplace_back([&io = c->io] { io.run(); });
  }

  void stop() {
    for (auto& c : contexts_) c->io.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

  // Round robin: connections are alike enough that counting them is balance enough.
  // nullptr: no I/O threads, the hub's io_context serves the connection.
  io_thread* next() {
    if (contexts_.empty()) return nullptr;
    return contexts_[next_++ % contexts_.size()].get();
  }
  [[nodiscard]] std::size_t size() const noexcept { return contexts_.size(); }
  io_thread& at(std::size_t i) { return *contexts_[i]; }

 private:
  std::vector<std::unique_ptr<io_thread>> contexts_;
  std::vector<asio::executor_work_guard<io_executor>> guards_;
  std::vector<std::thread> threads_;
  std::size_t next_ = 0;
};

class server_runtime {
 public:
  server_runtime(asio::io_context& io, io_pool& pool, const server_options& options, server_context& context,
                 std::size_t connection_budget)
      : io_(io),
        pool_(pool),
        options_(options),
        context_(context),
        hub_(open_hub(options, context, node_id_)),
        core_(hub_, core_config(options), token_hooks(context.tokens, context.writer, context.rooms, context.tokens_required, context.log)),
        acceptor_(io),
        tick_(io),
        connection_closed_(io),
        signals_(io, SIGINT, SIGTERM),
        tls_(asio::ssl::context::tls_server),
        connection_budget_(connection_budget) {
    connection_closed_.expires_at(asio::steady_timer::time_point::max());
  }

  ~server_runtime() {
    bus_.reset();  // its threads stop before anything its completions would touch goes
    // Connections' sockets belong to the pool's io_contexts: stop their threads first,
    // then let go of the connections while those contexts still exist.
    pool_.stop();
    connections_.clear();
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
    signals_.async_wait([this](std::error_code error, int signal) {
      if (!error) shut_down(signal);
    });
    pool_.start();
    // A cluster node serves once the bus is there to order its messages.
    if (options_.cluster.empty()) start_serving();
    else join_cluster();
    io_.run();
    pool_.stop();
    return exit_code_;
  }

  void start_serving() {
    serving_ = true;
    const auto bound = acceptor_.local_endpoint();
    const std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
    // The one line on stdout, for scripts and tests that start the server on --port 0.
    std::printf("listening %s://%s:%u\n", options_.tls() ? "wss" : "ws", host.c_str(), bound.port());
    std::fflush(stdout);
    context_.log.info(std::string("listening on ") + (options_.tls() ? "wss://" : "ws://") + host + ":" +
                      std::to_string(bound.port()) + (context_.tokens_required ? " (tokens required)" : " (loopback, no tokens)") +
                      "; " + std::to_string(options_.threads) + (options_.threads == 1 ? " thread" : " I/O threads and the hub's") +
                      (bus_ ? "; cluster node " + node_id_ : std::string()));
    tick_.expires_at(asio::steady_timer::time_point::max());
    asio::co_spawn(io_, accept_loop(), asio::detached);
    asio::co_spawn(io_, timer_loop(), asio::detached);
  }

  // ---- called by connections, on their own threads ----------------------------

  void received(io_thread* home, std::shared_ptr<connection_base> c, parley::connection_id id, std::string_view bytes) {
    if (!home) {
      receive_here(id, bytes);
      // Posted even on the one thread: the other connections get their turn between reads.
      asio::post(io_, [c = std::move(c)] { c->resume_reading_here(); });
      return;
    }
    tell_hub(home, hub_event{hub_event::kind::received, id, std::string(bytes), 0, {}, std::move(c)});
  }

  // `emptied` is the written frames' vector, cleared: the connection's next batch reuses it.
  void written(io_thread* home, parley::connection_id id, std::size_t bytes, std::vector<parley::shared_frame> emptied) {
    tell_hub(home, hub_event{hub_event::kind::written, id, {}, bytes, std::move(emptied), {}});
  }

  void closed(io_thread* home, parley::connection_id id) {
    tell_hub(home, hub_event{hub_event::kind::closed, id});
  }

  void log_debug(io_thread* home, std::string line) {
    tell_hub(home, hub_event{hub_event::kind::log, 0, std::move(line)});
  }

 private:
  using hub_type = parley::basic_hub<tools_policy>;

  // At once on the hub's own thread (--threads 1), else through the I/O thread's mail.
  void tell_hub(io_thread* home, hub_event e) {
    if (!home) return take(e);
    mail(*home, std::move(e));
  }

  // On an I/O thread: gather what it tells the hub during this pass over its ready
  // handlers, then send it across in one post.
  void mail(io_thread& home, hub_event e) {
    home.to_hub.push_back(std::move(e));
    if (std::exchange(home.to_hub_posted, true)) return;
    asio::post(home.io, [this, &home] {
      home.to_hub_posted = false;
      asio::post(io_, [this, batch = std::exchange(home.to_hub, {})]() mutable {
        for (hub_event& e : batch) take(e);
      });
    });
  }

  // On the hub's thread.
  void take(hub_event& e) {
    switch (e.what) {
      case hub_event::kind::received:
        receive_here(e.id, e.bytes);
        job_for(std::move(e.connection)).resume_reading = true;
        break;
      case hub_event::kind::written:
        core_.written(e.id, e.written_bytes);
        if (auto it = connections_.find(e.id); it != connections_.end() && it->second.spare.frames.capacity() == 0)
          it->second.spare.frames = std::move(e.emptied);
        break;
      case hub_event::kind::closed:
        core_.transport_closed(e.id, moment_now());
        connections_.erase(e.id);
        connection_closed_.cancel();
        after_core();
        break;
      case hub_event::kind::log:
        context_.log.debug(e.bytes);
        break;
    }
  }

  // The hub's orders for one connection, gathered per I/O thread until flush() posts them
  // (a read taken in has always scheduled a flush).
  connection_job& job_for(std::shared_ptr<connection_base> c) {
    auto& jobs = jobs_[c->home()->index];
    jobs.push_back(connection_job{std::move(c)});
    return jobs.back();
  }

  void send_jobs() {
    for (std::size_t i = 0; i < jobs_.size(); ++i) {
      if (jobs_[i].empty()) continue;
      asio::post(pool_.at(i).io, [batch = std::exchange(jobs_[i], {})]() mutable {
        for (connection_job& job : batch) {
          if (job.output) job.connection->deliver_here(std::move(*job.output));
          if (job.resume_reading) job.connection->resume_reading_here();
          if (job.abort) job.connection->abort_here();
        }
      });
    }
  }

  void receive_here(parley::connection_id id, std::string_view bytes) {
    core_.receive(id, bytes, moment_now());
    after_core();
  }

  static hub_type open_hub(const server_options& options, server_context& context, std::string& node_id) {
    parley::hub_config config = options.hub;
    if (!options.cluster.empty()) {
      std::array<unsigned char, 6> bytes{};
      context.random(bytes.data(), bytes.size());
      for (unsigned char b : bytes) node_id += "0123456789abcdef"[b >> 4], node_id += "0123456789abcdef"[b & 15];
      config.node_id = node_id;
    }
    auto opened = hub_type::open(context.rooms, context.random, std::move(config));
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

  // After calls into the core: hand new output to its connections, cut the sockets the
  // core gave up on, stop when it is finished, and wake the timer sooner if the core's
  // next deadline moved earlier. Deferred to the end of the hub's queue, so the reads
  // already waiting there are all taken in first and each connection gets one batch
  // (and one write) for all of them, not one per read.
  void after_core() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    asio::post(io_, [this] {
      flush_scheduled_ = false;
      flush();
    });
  }

  void flush() {
    core_.take_writable(writable_);
    for (parley::connection_id id : writable_) {
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      core_.take_output(id, it->second.spare);
      if (!it->second.connection->home()) it->second.connection->deliver_here(std::move(it->second.spare));
      else job_for(it->second.connection).output = std::move(it->second.spare);
    }
    for (parley::connection_id id : core_.take_aborted()) {
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      auto c = it->second.connection;  // aborting ends in closed(), which erases the entry, at once with --threads 1
      if (!c->home()) c->abort_here();
      else job_for(std::move(c)).abort = true;
    }
    if (bus_) publish_to_bus();
    send_jobs();
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
      // The socket is born on the I/O thread that will serve it.
      io_thread* home = pool_.next();
      asio::io_context& home_io = home ? home->io : io_;
      tcp::socket socket = co_await acceptor_.async_accept(asio::any_io_executor(home_io.get_executor()),
                                                           asio::redirect_error(asio::use_awaitable, ec));
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
        auto c = std::make_shared<connection<tls_stream>>(*this, *id, tls_stream(std::move(socket), tls_), home_io.get_executor(), home);
        connections_.emplace(*id, connection_entry{c, {}});
        c->start();
      } else {
        auto c = std::make_shared<connection<tcp::socket>>(*this, *id, std::move(socket), home_io.get_executor(), home);
        connections_.emplace(*id, connection_entry{c, {}});
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

  // Sleeps until the core's next deadline; flush() cancels the sleep when an event
  // brings that deadline closer. Both calls are cheap: the core keeps its deadlines
  // ordered, so neither walks the connections.
  asio::awaitable<void> timer_loop() {
    for (;;) {
      core_.on_timer(moment_now());
      flush();
      if (io_.stopped()) co_return;
      const auto next = core_.next_deadline();
      tick_.expires_at(next ? asio::steady_timer::time_point(*next) : asio::steady_timer::time_point::max());
      std::error_code ec;
      co_await tick_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // ---- cluster (--cluster): NATS JetStream orders the rooms' messages --------------

  static constexpr const char* rooms_stream = "PARLEY_ROOMS";

  void join_cluster() {
    bus_ = std::make_unique<nats_link>(io_);
    bus_->on_connection_event([this](nats_connection_event e) {
      if (e == nats_connection_event::disconnected) {
        context_.log.warn("cluster: lost NATS; this node's sends wait for it (and fail after 5 s), /healthz answers 503");
        core_.hooks().cluster_reachable(false);
      } else if (e == nats_connection_event::reconnected) {
        context_.log.info("cluster: NATS is back");
        core_.hooks().cluster_reachable(true);
        // A lone NATS node that restarted lost the stream (memory storage).
        open_stream({});
      }
    });
    bus_->on_async_error([this](std::string what) { context_.log.warn("cluster: " + what); });
    nats_options o;
    o.servers = options_.cluster;
    o.credentials_file = options_.cluster_creds.string();
    if (!options_.cluster_token_file.empty()) {
      auto token = read_token_file(options_.cluster_token_file);
      if (!token) return fail_cluster(token.error().message);
      o.token = std::move(*token);
    }
    o.name = "parley node " + node_id_;
    bus_->connect(std::move(o), [this](nats_result<void> connected) {
      if (!connected) return fail_cluster("cannot reach NATS: " + connected.error());
      open_stream([this] { start_serving(); });
    });
  }

  // Makes the rooms' stream, or finds it, and reads it on from the last record taken;
  // then `then`. At start and on every reconnect.
  void open_stream(std::function<void()> then) {
    bus_->ensure_stream(stream_config(), [this, then = std::move(then)](nats_result<void> made) mutable {
      if (!made) return fail_cluster("cannot make the rooms' stream: " + made.error());
      subscribe_bus(std::move(then));
    });
  }

  // Memory storage: bodies never reach a disk. The limits bound what a failed-over
  // session can have replayed (see docs/cluster.md).
  [[nodiscard]] nats_stream_config stream_config() const {
    return nats_stream_config{rooms_stream, {"parley.room.>"}, std::chrono::minutes(10), 1024, options_.cluster_replicas};
  }

  // A new subscription reads on from the last record taken. What the one it replaces
  // still hands over (already queued on this thread) is left to the new one, which
  // starts from there: taken twice, it would read as a record behind its room's seq.
  void subscribe_bus(std::function<void()> then) {
    if (bus_subscription_) bus_->unsubscribe(*std::exchange(bus_subscription_, std::nullopt));
    const std::optional<std::uint64_t> from = bus_seen_ ? std::optional(bus_seen_ + 1) : std::nullopt;
    const std::uint64_t generation = ++bus_generation_;
    bus_->subscribe_ordered(
        rooms_stream, "parley.room.>", from,
        [this, generation](nats_stream_message m) {
          if (generation == bus_generation_) take_from_bus(m);
        },
        [this, then = std::move(then)](nats_result<nats_link::id> subscribed) {
          if (!subscribed) return fail_cluster("cannot read the rooms' stream: " + subscribed.error());
          bus_subscription_ = *subscribed;
          if (then) then();
        });
  }

  void take_from_bus(const nats_stream_message& m) {
    bus_seen_ = m.seq;
    auto record = parley::decode_bus_message(m.payload, options_.hub.max_body_bytes);
    if (!record) {
      bad_records_.write(context_.log, log_level::warn,
                         "cluster: skipped record " + std::to_string(m.seq) + " of the rooms' stream: " + record.error().message,
                         std::chrono::steady_clock::now());
      return;
    }
    if (!core_.bus_delivered(*record, m.seq, moment_now()))
      behind_.write(context_.log, log_level::error,
                    "cluster: record " + std::to_string(m.seq) + " of room " + record->room +
                        " is behind the room's latest seq and reached nobody: the rooms' stream was lost and "
                        "restarted (a NATS restart without replicas; see docs/cluster.md)",
                    std::chrono::steady_clock::now());
    after_core();
  }

  // The stream drops a second copy with the same Nats-Msg-Id, so a send retried after an
  // unconfirmed publish is stored once.
  void publish_to_bus() {
    core_.take_published(published_);
    for (const parley::bus_message& m : published_) {
      std::string subject = "parley.room.";
      subject += m.room;
      bus_->publish(std::move(subject), parley::encode_bus_message(m), {{"Nats-Msg-Id", m.message_id}},
                    [this, id = m.message_id](nats_result<std::uint64_t> stored) {
                      if (stored) return;
                      unconfirmed_.write(context_.log, log_level::warn, "cluster: a send was not confirmed: " + stored.error(),
                                         std::chrono::steady_clock::now());
                      core_.bus_refused(id, moment_now());
                      after_core();
                    });
    }
  }

  // Before serving: the node cannot order messages without the bus, so it does not start.
  void fail_cluster(const std::string& why) {
    context_.log.error("cluster: " + why);
    if (serving_) return;
    exit_code_ = 1;
    io_.stop();
  }

  void shut_down(int signal) {
    context_.log.info(std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ": shutting down");
    stopping_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    connection_closed_.cancel();
    core_.hooks().record_uses();
    core_.shutdown(moment_now());  // close frames go out; finished() within the shutdown grace
    flush();
  }

  asio::io_context& io_;  // the hub's thread: the core, the acceptor, timers and signals
  io_pool& pool_;
  const server_options& options_;
  server_context& context_;
  std::string node_id_;  // --cluster: this node's name on the bus (random, per process)
  hub_type hub_;
  parley::basic_server<tools_policy> core_;
  tcp::acceptor acceptor_;
  asio::steady_timer tick_;
  asio::steady_timer connection_closed_;  // never expires; cancelled when a connection closes
  asio::signal_set signals_;
  asio::ssl::context tls_;
  // Each connection with a spare output buffer: writes hand their emptied frame vectors
  // back, so the hub and the I/O threads pass the same few buffers to and fro and a
  // steady stream allocates none.
  struct connection_entry {
    std::shared_ptr<connection_base> connection;
    parley::connection_output spare;
  };
  std::unordered_map<parley::connection_id, connection_entry> connections_;
  std::vector<parley::connection_id> writable_;  // flush()'s scratch
  std::vector<std::vector<connection_job>> jobs_ = std::vector<std::vector<connection_job>>(pool_.size());
  throttled_log accept_failures_;
  throttled_log refusals_;
  throttled_log budget_waits_;
  std::size_t connection_budget_;
  std::unique_ptr<nats_link> bus_;             // --cluster only
  std::optional<nats_link::id> bus_subscription_;
  std::uint64_t bus_seen_ = 0;                 // the last stream seq taken from the bus
  std::uint64_t bus_generation_ = 0;           // which subscription's records are taken
  std::vector<parley::bus_message> published_;  // publish_to_bus()'s scratch
  throttled_log bad_records_;
  throttled_log unconfirmed_;
  throttled_log behind_;
  int exit_code_ = 0;
  bool serving_ = false;
  bool flush_scheduled_ = false;
  bool stopping_ = false;
};

template <class Stream>
void connection<Stream>::begin() {
  if constexpr (tls) {
    stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](std::error_code ec) {
      if (ec) {
        self->runtime_.log_debug(self->home_, "TLS handshake failed: " + ec.message());
        return self->stop();
      }
      self->ready_to_write_ = true;
      self->write_more();
      self->read_more();
    });
  } else {
    std::error_code ec;
    socket().non_blocking(true, ec);
    // Bytes may have arrived before this thread ever waited on the socket: read first.
    read_now();
  }
}

template <class Stream>
void connection<Stream>::read_more() {
  if (stopped_) return;
  if constexpr (tls) {
    if (!tls_buffer_) tls_buffer_ = std::make_unique<std::array<char, 16384>>();
    stream_.async_read_some(asio::buffer(*tls_buffer_), [self = this->shared_from_this()](std::error_code ec, std::size_t n) {
      if (ec || self->stopped_) return self->stop();
      self->hand_to_hub(std::string_view(self->tls_buffer_->data(), n));
    });
  } else {
    socket().async_wait(tcp::socket::wait_read, [self = this->shared_from_this()](std::error_code ec) {
      if (ec || self->stopped_) return self->stop();
      self->read_now();
    });
  }
}

// Plain sockets: read what is there into this thread's buffer, so an idle connection
// holds none. asio's epoll is edge-triggered and a wait ends only on new bytes, so a
// wait is begun only after a read said it would block, in the same handler.
template <class Stream>
void connection<Stream>::read_now() {
  if constexpr (!tls) {
    if (stopped_) return;
    thread_local std::array<char, 16384> buffer;
    std::error_code ec;
    const std::size_t n = socket().read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return read_more();
    if (ec) return stop();  // the peer hung up (eof) or the socket failed
    hand_to_hub(std::string_view(buffer.data(), n));
  }
}

// The next read waits until the hub has taken in this one: the hub's queue then holds at
// most one read per connection, so a fast sender cannot bury other connections' writes
// and acks behind its backlog, and its own bytes wait in its socket (TCP pushes back).
template <class Stream>
void connection<Stream>::hand_to_hub(std::string_view bytes) {
  runtime_.received(home_, this->shared_from_this(), id_, bytes);
}

template <class Stream>
void connection<Stream>::queue(parley::connection_output out) {
  if (stopped_) return;
  if (queued_.empty()) queued_.swap(out.frames);
  else queued_.insert(queued_.end(), std::make_move_iterator(out.frames.begin()), std::make_move_iterator(out.frames.end()));
  close_after_ = close_after_ || out.close_after;
  write_more();
}

// Everything queued goes out in one gathered write; what the hub hands over meanwhile
// waits for the next one.
template <class Stream>
void connection<Stream>::write_more() {
  if (stopped_ || write_in_flight_ || !ready_to_write_) return;
  if (queued_.empty()) {
    if (!close_after_) return;
    std::error_code ec;
    if constexpr (tls) {
      write_in_flight_ = true;
      stream_.async_shutdown([self = this->shared_from_this()](std::error_code) {
        std::error_code ignored;
        self->socket().shutdown(tcp::socket::shutdown_send, ignored);
      });
      return;
    }
    // The reader sees the peer's FIN and reports the transport closed; a peer that never
    // hangs up is cut off when the core's close linger runs out.
    socket().shutdown(tcp::socket::shutdown_send, ec);
    write_in_flight_ = true;  // nothing more is ever written
    return;
  }
  writing_.swap(queued_);
  queued_.clear();
  buffers_.clear();
  std::size_t bytes = 0;
  for (const auto& f : writing_) {
    buffers_.emplace_back(asio::buffer(*f));
    bytes += f->size();
  }
  write_in_flight_ = true;
  // A peer that stops reading holds this write open; the core's close linger then
  // aborts the connection, which cancels it.
  asio::async_write(stream_, buffers_, [self = this->shared_from_this(), bytes](std::error_code ec, std::size_t) {
    self->write_in_flight_ = false;
    self->writing_.clear();
    self->runtime_.written(self->home_, self->id_, bytes, std::exchange(self->writing_, {}));
    if (ec) return self->stop();
    self->write_more();
  });
}

template <class Stream>
void connection<Stream>::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  socket().close(ignored);
  queued_.clear();
  runtime_.closed(home_, id_);
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
    // The I/O threads' io_contexts outlive the hub's: a socket of theirs can sit in one of
    // the hub's handlers (an accept in progress), destroyed with the hub's io_context.
    io_pool pool(options.threads);
    asio::io_context io(1);  // the hub's thread: this one
    server_runtime runtime(io, pool, options, context, connection_budget);
    return runtime.run();
  } catch (const std::exception& e) {
    context.log.error(std::string("server stopped: ") + e.what());
    return 1;
  }
}

}  // namespace parley_tools
