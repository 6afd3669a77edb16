// SPDX-License-Identifier: MIT
// Invariant: driving the whole sans-I/O server (four connection slots, well-formed and arbitrary client bytes,
// partial writes, time passing, timers, aborts) never crashes; a connection's unwritten output never exceeds
// max_queue_bytes plus its exempt items (the handshake answer, hello.ok, a resume's replay, the close); every output
// item is one valid HTTP answer or one valid server WebSocket frame, every text frame a decodable server frame,
// announced by take_writable, with nothing after the close; requests are answered at once and in order; a session
// never receives its own message; per session and room, seqs strictly increase (from the point a resume names) and
// nothing acked is delivered again; only closing connections are aborted, and only after the close linger; a timer
// leaves no deadline already due.
#include <parley/server.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace {

using namespace parley;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "server invariant violated: %s\n", why.c_str());
  std::abort();
}

class byte_reader {
 public:
  byte_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool done() const { return pos_ >= size_; }
  std::uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string_view take(std::size_t n) {
    n = std::min(n, size_ - pos_);
    std::string_view out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

random_source splitmix(std::uint64_t seed) {
  auto state = std::make_shared<std::uint64_t>(seed);
  return [state](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      out[i] = static_cast<unsigned char>(z ^ (z >> 31));
    }
  };
}

// A token store with one of each verdict, and revocations the input decides.
struct fuzz_hooks {
  bool required = false;
  std::vector<std::string> revoked;

  [[nodiscard]] bool tokens_required() const { return required; }
  [[nodiscard]] token_verdict check_token(std::string_view token) {
    if (token == "tok-alpha") return {token_status::valid, "alpha"};
    if (token == "tok-beta") return {token_status::valid, "beta"};
    if (token == "tok-gone") return {token_status::revoked, "gamma"};
    if (token == "tok-down") return {token_status::unavailable, {}};
    return {token_status::unknown, {}};
  }
  [[nodiscard]] std::vector<std::string> revoked_labels() { return revoked; }
  [[nodiscard]] bool storage_failing() const { return false; }
  void log(log_level, std::string_view) {}
};

struct fuzz_policy : simulated_server_policy {
  using server_hooks = fuzz_hooks;
};
using fuzz_hub = basic_hub<fuzz_policy>;
using fuzz_server = basic_server<fuzz_policy>;

constexpr std::size_t slot_count = 4;
constexpr std::size_t max_queue_bytes = 3000;  // a few messages: slow consumers are common
constexpr milliseconds close_linger{1000};
constexpr std::array<const char*, 3> rooms{"lobby", "dev", "ops"};
// Bits 2-3 of an operation's argument pick the room; bits 0-1 pick the slot.
std::string room_of(std::uint8_t arg) { return rooms[((arg >> 2) & 3) % rooms.size()]; }
constexpr std::array<const char*, 6> tokens{"", "tok-alpha", "tok-beta", "tok-gone", "tok-down", "tok-nope"};

// Operation weights out of 40, so that random bytes mostly talk and sometimes drop, wait and misbehave.
enum class operation {
  accept, upgrade, hello, resume, join, leave, send, ack, ask, ping, close, raw, written, transport_closed, advance,
  timer, take_aborted, wall_step, shutdown, revoke, bad_frame
};
constexpr std::array<std::pair<operation, int>, 21> operation_weights{{
    {operation::accept, 2}, {operation::upgrade, 2}, {operation::hello, 2}, {operation::resume, 1},
    {operation::join, 3}, {operation::leave, 1}, {operation::send, 6}, {operation::ack, 2}, {operation::ask, 1},
    {operation::ping, 1}, {operation::close, 1}, {operation::raw, 2}, {operation::written, 3},
    {operation::transport_closed, 1}, {operation::advance, 3}, {operation::timer, 3}, {operation::take_aborted, 1},
    {operation::wall_step, 1}, {operation::shutdown, 1}, {operation::revoke, 1}, {operation::bad_frame, 2}}};

operation operation_of(std::uint8_t byte) {
  int pick = byte % 40;
  for (const auto& [op, weight] : operation_weights) {
    if (pick < weight) return op;
    pick -= weight;
  }
  return operation::bad_frame;
}

// What the clients know of one session, across the connections it lives on.
struct session_model {
  std::string reconnect_token;
  std::set<std::string> own;  // messageIds it sent
  struct room_view {
    std::uint64_t floor = 0;  // every next seq must be above: the last received, or what a resume named
    std::uint64_t acked = 0;  // highest ack the hub took: never delivered again
    bool seen = false;
  };
  std::map<std::string, room_view> rooms;
  std::set<std::string> member_of;
  bool membership_known = true;  // false once a tool answer may have been lost or raw bytes went in
};

struct pending_resume {
  std::string session_id;
  std::map<std::string, std::uint64_t> floors;
};

struct connection_model {
  connection_model(connection_id id_, std::uint64_t seed) : id(id_), ws(role::client, splitmix(seed)) {}

  connection_id id;
  websocket ws;  // client role: masks what we send, reads what the server sends
  http_response_parser http;
  std::string key;          // our Sec-WebSocket-Key, when the request was ours
  bool request_sent = false;
  bool tainted = false;     // raw bytes went in: requests, acks and membership are no longer known
  bool head_read = false;
  bool upgraded = false;
  bool hello_pending = false;     // our hello went in and awaits its answer
  bool hello_answered = false;
  std::optional<pending_resume> resume;
  std::optional<std::string> session;
  std::deque<std::string> requests;  // requestIds awaiting an answer, in order
  int system_errors_owed = 0;        // refused acks not yet answered
  bool final_read = false;   // a close frame or a non-101 answer was read: nothing may follow
  bool close_after = false;  // the server said to close after writing
  simulated_moment::monotonic_time closing_since{};  // when close_after was first seen
  bool we_closed = false;
  std::deque<std::pair<std::size_t, bool>> unwritten;  // taken, not yet reported written: (bytes, exempt)
  std::size_t unwritten_bytes = 0;
  std::size_t unwritten_exempt = 0;
};

class server_run {
 public:
  server_run(std::uint8_t flags, std::uint64_t seed)
      : hub_(open_hub(store_, seed)), server_(hub_, make_config(flags), fuzz_hooks{(flags & 1) != 0, {}}),
        seed_(seed) {}

  void run(byte_reader& in) {
    while (!in.done()) {
      step(in);
      collect_output();
    }
  }

 private:
  static fuzz_hub open_hub(fuzz_policy::room_store& store, std::uint64_t seed) {
    hub_config config;
    config.replay_capacity = 6;
    config.seq_block_size = 4;
    config.session_grace = std::chrono::seconds(5);
    return std::move(*fuzz_hub::open(store, splitmix(seed), std::move(config)));
  }

  static server_config make_config(std::uint8_t flags) {
    server_config config;
    config.max_connections = 3;  // four slots: the cap and the monitoring reserve are reachable
    config.monitoring_reserve = 1;
    config.handshake_timeout = std::chrono::seconds(2);
    config.ping_interval = std::chrono::seconds(3);
    config.pong_timeout = std::chrono::seconds(7);
    config.close_linger = close_linger;
    config.revocation_poll_interval = std::chrono::seconds(1);
    config.max_queue_bytes = max_queue_bytes;
    config.websocket.max_message_bytes = 2048;
    config.loopback_hosts_only = (flags & 2) != 0;
    config.tls = (flags & 4) != 0;
    if (flags & 8) config.allowed_origins.push_back(web_origin{"https", "app.example", "443"});
    return config;
  }

  // ---- operations -------------------------------------------------------------------------

  void step(byte_reader& in) {
    const operation op = operation_of(in.next());
    const std::uint8_t arg = in.next();
    auto& slot = slots_[arg % slot_count];
    switch (op) {
      case operation::accept: accept(slot, arg); break;
      case operation::upgrade: {
        const std::uint8_t how = in.next();
        upgrade(slot, how, in.next());
        break;
      }
      case operation::hello: hello(slot, arg); break;
      case operation::resume: resume(slot, in.next()); break;
      case operation::join: join(slot, arg); break;
      case operation::leave: leave(slot, arg); break;
      case operation::send: send(slot, arg, in.next()); break;
      case operation::ack: ack(slot, arg); break;
      case operation::ask: list_or_who(slot, arg); break;
      case operation::ping: ping(slot, arg); break;
      case operation::close: client_close(slot, arg); break;
      case operation::raw: raw(slot, in); break;
      case operation::written: written(slot, in.next()); break;
      case operation::transport_closed:
        if (slot) close_transport(slot);
        break;
      case operation::advance: now_ += milliseconds(1 + arg * 40); break;
      case operation::timer: on_timer(); break;
      case operation::take_aborted: take_aborted(); break;
      case operation::wall_step:  // the wall clock alone jumps, hours either way: no deadline may notice
        now_.wall += milliseconds((arg % 2 ? 1 : -1) * static_cast<std::int64_t>(arg) * 3'600'000);
        break;
      case operation::shutdown:
        if (arg == 0x5A) shutdown();  // rare: after it every hello is refused
        break;
      case operation::revoke: server_.hooks().revoked.push_back(arg % 2 ? "alpha" : "beta"); break;
      case operation::bad_frame:
        if (slot) bad_frame(*slot, arg);
        break;
    }
  }

  void accept(std::optional<connection_model>& slot, std::uint8_t arg) {
    if (slot) close_transport(slot);
    const std::size_t live = server_.connection_count();
    auto id = server_.accept(now_, (arg & 0x10) != 0);
    if (!id) {
      if (live < 3) fail("a connection was refused below the cap");
      return;
    }
    slot.emplace(*id, seed_ + *id);
  }

  // The core's own client request: a WebSocket upgrade, or a plain GET of another path.
  void upgrade(std::optional<connection_model>& slot, std::uint8_t how, std::uint8_t cut) {
    if (!slot || slot->request_sent) return;
    connection_model& c = *slot;
    static constexpr std::array<const char*, 4> paths{"/", "/healthz", "/metrics", "/nope"};
    static constexpr std::array<const char*, 3> hosts{"localhost:8080", "127.0.0.1", "chat.example"};
    static constexpr std::array<const char*, 3> origins{"http://localhost:8080", "https://app.example",
                                                         "http://evil.example"};
    const char* path = paths[how & 3];
    http_headers extra;
    if (how & 0x10) extra.add("Origin", origins[(how >> 5) % origins.size()]);
    if (how & 0x80) extra.add("Authorization", "Bearer tok-alpha");
    c.key = make_websocket_key(splitmix(seed_ ^ c.id));
    auto request = build_upgrade_request(hosts[(how >> 2) % hosts.size()], path, c.key, extra);
    if (!request) fail("the client codec refused its own upgrade request");
    c.request_sent = true;
    std::string bytes = std::move(*request);
    if (how & 0x40) bytes += c.ws.encode_text(encode_hello(hello_frame{"0.1.0", std::nullopt, std::nullopt}));
    const std::size_t at = cut % (bytes.size() + 1);
    server_.receive(c.id, std::string_view(bytes).substr(0, at), now_);
    server_.receive(c.id, std::string_view(bytes).substr(at), now_);
    if (how & 0x40) c.hello_pending = true;  // answered only if the upgrade is accepted
  }

  [[nodiscard]] bool can_send(const std::optional<connection_model>& slot) const {
    return slot && slot->upgraded && !slot->we_closed && !slot->close_after;
  }

  void send_frame(connection_model& c, const std::string& text) { server_.receive(c.id, c.ws.encode_text(text), now_); }

  void hello(std::optional<connection_model>& slot, std::uint8_t arg) {
    if (!can_send(slot)) return;
    connection_model& c = *slot;
    hello_frame h{arg & 0x40 ? "9.0.0" : "0.1.0", std::nullopt, std::nullopt};
    if (arg & 0x80) h.client_version = "v0.7";
    if (const char* t = tokens[((arg >> 2) & 7) % tokens.size()]; *t) h.auth_token = t;
    if (!c.hello_answered) c.hello_pending = true;
    send_frame(c, encode_hello(h));
  }

  void resume(std::optional<connection_model>& slot, std::uint8_t how) {
    if (!can_send(slot) || granted_.empty()) return;
    connection_model& c = *slot;
    // Sessions in the order they began; one that ended is resumed all the same, and refused.
    const std::string& id = granted_[(how >> 3) % granted_.size()];
    const auto it = sessions_.find(id);
    resume_block block{id, it != sessions_.end() ? it->second.reconnect_token : std::string(43, 'x'), {}};
    if (how & 1) block.reconnect_token[0] = block.reconnect_token[0] == 'A' ? 'B' : 'A';
    pending_resume pending{id, {}};
    if (it != sessions_.end()) {
      for (const auto& [room, view] : it->second.rooms) {
        if (!view.seen || (how & 2)) continue;  // unnamed rooms resume from the hub's ack point
        const std::uint64_t named = how & 4 ? view.acked : view.floor;
        block.last_acked_seq_by_room[room] = named;
        pending.floors[room] = named;
      }
    }
    if (!c.hello_answered) {
      c.hello_pending = true;
      c.resume = std::move(pending);
    }
    send_frame(c, encode_hello(hello_frame{"0.1.0", std::nullopt, std::move(block)}));
  }

  void request(std::optional<connection_model>& slot, tool_args args) {
    if (!can_send(slot)) return;
    connection_model& c = *slot;
    const std::string id = "r" + std::to_string(next_request_++);
    if (c.session && !c.tainted) c.requests.push_back(id);
    send_frame(c, encode_tool_request(tool_request{id, std::move(args)}));
  }

  void join(std::optional<connection_model>& slot, std::uint8_t arg) {
    static constexpr std::array<const char*, 5> nicknames{"alice", "Alice", "bob", "carol", "no way"};
    std::optional<std::string> nickname;
    if (arg & 0x80) nickname = nicknames[((arg >> 4) & 7) % nicknames.size()];
    request(slot, join_room_args{room_of(arg), std::move(nickname)});
  }

  void leave(std::optional<connection_model>& slot, std::uint8_t arg) {
    request(slot, leave_room_args{room_of(arg)});
  }

  void list_or_who(std::optional<connection_model>& slot, std::uint8_t arg) {
    // Half of them paged, with small limits, so nextCursor comes up.
    const std::optional<std::uint32_t> limit = (arg & 0x20) ? std::optional<std::uint32_t>(1u + arg % 3u) : std::nullopt;
    if (arg & 0x40) request(slot, list_rooms_args{limit, std::nullopt});
    else request(slot, who_is_here_args{room_of(arg), limit, std::nullopt});
  }

  void send(std::optional<connection_model>& slot, std::uint8_t arg, std::uint8_t how) {
    std::string body = "b" + std::to_string(next_body_++);
    if (how & 1) body.append(static_cast<std::size_t>(how) * 3, 'x');  // up to ~760 bytes: queues fill
    std::optional<std::string> key;
    if ((how & 6) == 2) key = "k" + std::to_string(next_body_);
    if ((how & 6) == 4) key = "k" + std::to_string(next_body_ - 1 - (how >> 6));  // a retry, sometimes
    request(slot, send_message_args{room_of(arg), std::move(body), std::move(key)});
  }

  // Acks what the session last received, half of it, or a seq the room never reached.
  void ack(std::optional<connection_model>& slot, std::uint8_t arg) {
    if (!can_send(slot) || !slot->session) return;
    connection_model& c = *slot;
    auto s = sessions_.find(*c.session);
    if (s == sessions_.end()) return;
    const std::string room = room_of(arg);
    auto& view = s->second.rooms[room];
    const std::uint64_t seq = arg & 0x40 ? view.floor + 1'000'000 : arg & 0x80 ? view.floor / 2 : view.floor;
    send_frame(c, encode_ack(ack_frame{room, seq}));
    if (c.tainted || c.close_after) return;
    if (arg & 0x40) {
      if (s->second.membership_known && s->second.member_of.count(room)) ++c.system_errors_owed;
    } else if (s->second.member_of.count(room)) {
      view.acked = std::max(view.acked, seq);
    }
  }

  void ping(std::optional<connection_model>& slot, std::uint8_t arg) {
    if (!can_send(slot)) return;
    server_.receive(slot->id, slot->ws.encode_ping(std::string(arg % 130, 'p')), now_);
  }

  void client_close(std::optional<connection_model>& slot, std::uint8_t arg) {
    if (!can_send(slot)) return;
    static constexpr std::array<std::uint16_t, 4> codes{ws_status::normal, ws_status::going_away, 4000,
                                                       ws_status::no_status};
    const std::uint16_t code = codes[(arg >> 2) % codes.size()];
    slot->we_closed = true;
    server_.receive(slot->id, slot->ws.encode_close(code), now_);
    if (code == ws_status::normal && slot->session) sessions_.erase(*slot->session);  // the session ends
  }

  void bad_frame(connection_model& c, std::uint8_t arg) {
    if (!c.upgraded || c.we_closed || c.close_after) return;
    static constexpr std::array<const char*, 4> texts{"not json", "[1,2]",
                                                      "{\"_tag\":\"tool.nope\",\"requestId\":\"x\"}",
                                                      "{\"_tag\":\"ack\",\"room\":\"lobby\",\"seq\":-1}"};
    if (arg & 4) server_.receive(c.id, c.ws.encode_binary(texts[(arg >> 3) % texts.size()]), now_);
    else send_frame(c, texts[(arg >> 3) % texts.size()]);
  }

  void raw(std::optional<connection_model>& slot, byte_reader& in) {
    const std::string_view bytes = in.take(in.next() % 64);
    if (!slot) return;
    slot->tainted = true;
    slot->request_sent = true;
    slot->key.clear();
    if (auto s = slot->session ? sessions_.find(*slot->session) : sessions_.end(); s != sessions_.end())
      s->second.membership_known = false;
    server_.receive(slot->id, bytes, now_);
  }

  void written(std::optional<connection_model>& slot, std::uint8_t share) {
    if (!slot) return;
    connection_model& c = *slot;
    std::size_t n = c.unwritten_bytes * share / 255;
    server_.written(c.id, n);
    c.unwritten_bytes -= n;
    while (n > 0 && !c.unwritten.empty()) {  // the transport writes in order
      auto& [bytes, exempt] = c.unwritten.front();
      const std::size_t part = std::min(n, bytes);
      bytes -= part;
      n -= part;
      if (exempt) c.unwritten_exempt -= part;
      if (bytes == 0) c.unwritten.pop_front();
    }
  }

  void close_transport(std::optional<connection_model>& slot) {
    const connection_id id = slot->id;
    server_.transport_closed(id, now_);
    slot.reset();
    if (server_.session_of(id)) fail("a closed connection still has a session");
  }

  void on_timer() {
    server_.on_timer(now_);
    if (auto next = server_.next_deadline(); next && *next <= now_.monotonic)
      fail("on_timer left a deadline already due: the event loop would spin");
  }

  void take_aborted() {
    for (connection_id id : server_.take_aborted()) {
      auto slot = std::find_if(slots_.begin(), slots_.end(), [&](const auto& s) { return s && s->id == id; });
      if (slot == slots_.end()) continue;  // the transport already closed it
      if (!(*slot)->close_after) fail("a connection was aborted that the server never said to close");
      if (now_.monotonic - (*slot)->closing_since < close_linger)
        fail("a connection was aborted before its linger ran out");
      close_transport(*slot);
    }
  }

  void shutdown() {
    server_.shutdown(now_);
    shutting_down_ = true;
  }

  // ---- output ---------------------------------------------------------------------------

  void collect_output() {
    const std::vector<connection_id> writable = server_.take_writable();
    std::size_t live = 0;
    for (auto& slot : slots_) {
      if (!slot) continue;
      ++live;
      connection_model& c = *slot;
      connection_output out = server_.take_output(c.id);
      const bool listed = std::find(writable.begin(), writable.end(), c.id) != writable.end();
      if (!out.frames.empty() && !listed) fail("output was not announced by take_writable");
      read_output(c, out);
    }
    if (server_.connection_count() != live) fail("the server counts other connections than the transport holds");
    if (shutting_down_ && live == 0 && !server_.finished())
      fail("shut down with no connections left, yet not finished");
  }

  void read_output(connection_model& c, const connection_output& out) {
    if (c.close_after && !out.frames.empty()) fail("bytes were queued after the server decided to close");
    bool replaying = false;  // room.message frames right behind a hello.ok are a resume's replay
    for (const shared_frame& item : out.frames) {
      if (!item || item->empty()) fail("an empty output item");
      bool exempt = false;
      if (!c.head_read) {
        read_http(c, *item);
        exempt = true;
      } else if (!c.upgraded || c.final_read) {
        fail("bytes after a final HTTP answer or a close frame");
      } else {
        exempt = read_frame(c, item, replaying);
      }
      c.unwritten.emplace_back(item->size(), exempt);
      c.unwritten_bytes += item->size();
      if (exempt) c.unwritten_exempt += item->size();
    }
    if (out.close_after && !c.close_after) {
      c.close_after = true;
      c.closing_since = now_.monotonic;
    }
    if (c.final_read && !c.close_after) fail("a final answer or close frame without close_after");
    if (c.close_after && !c.final_read) fail("close_after without a final answer or close frame");
    if (c.unwritten_bytes > max_queue_bytes + c.unwritten_exempt)
      fail("unwritten output " + std::to_string(c.unwritten_bytes) + " passed the bound (" +
           std::to_string(c.unwritten_exempt) + " exempt)");
    if (c.close_after || c.tainted) return;
    if (c.hello_pending && c.upgraded) fail("a hello was not answered at once");
    if (!c.requests.empty()) fail("a request was not answered at once");
    if (c.system_errors_owed > 0) fail("an ack of a seq never sent was not refused");
  }

  void read_http(connection_model& c, std::string_view item) {
    const http_parse_result parsed = c.http.feed(item);
    if (parsed.status != http_parse_status::complete) fail("an HTTP answer that is not one whole head");
    c.head_read = true;
    const http_response& response = c.http.response();
    const std::string_view rest = item.substr(parsed.consumed);
    if (response.status == 101) {
      if (!rest.empty()) fail("bytes behind the 101 in the same item");
      if (!c.key.empty())
        if (auto ok = check_upgrade_response(response, c.key); !ok) fail("a 101 the client must refuse: " + ok.error());
      c.upgraded = true;
      return;
    }
    c.final_read = true;
    c.hello_pending = false;
    const auto length = response.headers.get("Content-Length");
    if (!length || *length != std::to_string(rest.size())) fail("an HTTP answer whose body is not its Content-Length");
  }

  // Returns whether the frame is exempt from the queue bound.
  bool read_frame(connection_model& c, const shared_frame& item, bool& replaying) {
    c.ws.receive(*item);
    auto event = c.ws.next_event();
    if (!event) fail("an output item that is not one whole frame");
    if (!c.ws.failed() && !c.ws.close_received() && c.ws.buffered_bytes() != 0)
      fail("an output item holding more than one frame");
    if (auto* t = std::get_if<ws_text>(&*event)) return read_text(c, item, t->data, replaying);
    replaying = false;
    if (std::holds_alternative<ws_ping>(*event) || std::holds_alternative<ws_pong>(*event)) return false;
    if (const auto* close = std::get_if<ws_close>(&*event)) {
      c.final_read = true;
      if (close->code == close_codes::slow_consumer && c.session)  // answers queued behind it were dropped
        if (auto s = sessions_.find(*c.session); s != sessions_.end()) s->second.membership_known = false;
      return true;
    }
    if (const auto* f = std::get_if<ws_failure>(&*event)) fail("an invalid server frame: " + f->reason);
    fail("the server sent a binary frame");
  }

  const server_frame& decode(const shared_frame& item, std::string_view text, server_frame& scratch) {
    // A room.message frame is shared by all its recipients: decode it once.
    if (auto it = decoded_.find(item.get()); it != decoded_.end()) return it->second.second;
    auto frame = decode_server_frame(text);
    if (!frame) fail("an undecodable server frame: " + std::string(text.substr(0, 120)));
    if (std::holds_alternative<room_message_frame>(*frame))
      return decoded_.emplace(item.get(), std::make_pair(item, std::move(*frame))).first->second.second;
    scratch = std::move(*frame);
    return scratch;
  }

  bool read_text(connection_model& c, const shared_frame& item, std::string_view text, bool& replaying) {
    server_frame scratch;
    const server_frame& frame = decode(item, text, scratch);
    if (const auto* m = std::get_if<room_message_frame>(&frame)) {
      const bool exempt = replaying;
      read_message(c, *m);
      return exempt;
    }
    replaying = false;
    if (const auto* ok = std::get_if<hello_ok_frame>(&frame)) {
      read_hello_ok(c, *ok);
      replaying = true;
      return true;
    }
    if (std::holds_alternative<hello_err_frame>(frame)) {
      if (c.session) fail("hello.err on an open connection");
      c.hello_pending = false;
      c.hello_answered = true;
      const auto& err = std::get<hello_err_frame>(frame);
      if (c.resume && (err.code == "ReplayBufferOverflowError" || err.code == "UnknownSessionError"))
        sessions_.erase(c.resume->session_id);
      c.resume.reset();
      return false;
    }
    if (!c.session) fail("a frame other than hello.ok or hello.err before the session began");
    if (const auto* ok = std::get_if<tool_ok_frame>(&frame)) {
      answer(c, ok->request_id);
      read_result(c, ok->result);
    } else if (const auto* err = std::get_if<tool_err_frame>(&frame)) {
      answer(c, err->request_id);
    } else if (std::holds_alternative<system_error_frame>(frame)) {
      if (c.system_errors_owed > 0) --c.system_errors_owed;
    }
    return false;
  }

  void read_hello_ok(connection_model& c, const hello_ok_frame& ok) {
    if (c.session) fail("a second hello.ok on one connection");
    c.hello_pending = false;
    c.hello_answered = true;
    c.session = ok.session_id;
    if (c.resume) {
      if (c.resume->session_id != ok.session_id) fail("a resume was answered with another session");
      auto s = sessions_.find(ok.session_id);
      if (s != sessions_.end()) {
        if (s->second.reconnect_token != ok.reconnect_token) fail("a resume changed the reconnect token");
        // Named rooms replay after the named seq, the others after the hub's own ack point.
        for (auto& [room, view] : s->second.rooms) {
          const auto named = c.resume->floors.find(room);
          view.floor = named != c.resume->floors.end() ? named->second : view.acked;
        }
      }
      c.resume.reset();
      return;
    }
    if (!sessions_.emplace(ok.session_id, session_model{ok.reconnect_token, {}, {}, {}, true}).second ||
        std::find(granted_.begin(), granted_.end(), ok.session_id) != granted_.end())
      fail("a fresh hello was granted a session that already exists");
    granted_.push_back(ok.session_id);
  }

  void answer(connection_model& c, const std::string& request_id) {
    if (c.tainted) return;
    if (c.requests.empty()) fail("an answer to no request: " + request_id);
    if (c.requests.front() != request_id) fail("answers out of order: " + request_id + " before " + c.requests.front());
    c.requests.pop_front();
  }

  // Learns from tool results what the session sent and where it is a member, whoever asked.
  void read_result(const connection_model& c, const json& result) {
    auto s = sessions_.find(*c.session);
    if (s == sessions_.end() || !result.is_object()) return;
    const auto room = result.find("room");
    if (room == result.end() || !room->is_string()) return;
    if (const auto id = result.find("messageId"); id != result.end() && id->is_string())
      s->second.own.insert(id->get<std::string>());
    else if (result.contains("nickname"))
      s->second.member_of.insert(room->get<std::string>());
    else if (result.size() == 1)
      s->second.member_of.erase(room->get<std::string>());
  }

  void read_message(const connection_model& c, const room_message_frame& m) {
    if (!c.session) fail("room.message before hello.ok");
    auto s = sessions_.find(*c.session);
    if (s == sessions_.end()) return;  // the session ended (a 1000 close) while this was queued
    if (s->second.own.count(m.message_id)) fail("a session received its own message " + m.message_id);
    auto& view = s->second.rooms[m.room];
    if (m.seq <= view.acked)
      fail("an acked message was delivered again: seq " + std::to_string(m.seq) + " in " + m.room);
    if (m.seq <= view.floor)
      fail("seqs did not strictly increase in " + m.room + ": " + std::to_string(m.seq) + " after " +
           std::to_string(view.floor));
    view.floor = m.seq;
    view.seen = true;
  }

  fuzz_policy::room_store store_;
  fuzz_hub hub_;
  fuzz_server server_;
  std::uint64_t seed_;
  simulated_moment now_ = simulated_epoch;
  std::array<std::optional<connection_model>, slot_count> slots_{};
  std::map<std::string, session_model> sessions_;  // live as far as the clients know
  std::vector<std::string> granted_;               // every session id granted, in order
  std::unordered_map<const std::string*, std::pair<shared_frame, server_frame>> decoded_;
  std::uint64_t next_request_ = 0;
  std::uint64_t next_body_ = 0;
  bool shutting_down_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  byte_reader in(data + 1, size - 1);
  server_run run(data[0], 0x5eed0000u + data[0]);
  run.run(in);
  return 0;
}
