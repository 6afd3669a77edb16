// SPDX-License-Identifier: MIT
// The whole Parley server without sockets: every connection's HTTP upgrade → WebSocket → hello → tool frames →
// hub, plus fan-out, keepalive, limits and shutdown, driven by bytes and `now`.
//
// The caller (tools/, a test, a fuzzer) accepts connections, passes in the bytes it
// reads and the times its timers fire, writes the frames take_output() returns, and
// closes a socket when told to. Every protocol decision and every deadline is here:
// keepalive, handshake, session grace, revocation polling, the linger before a socket
// whose close we decided is cut, and the shutdown grace. basic_server<Policy> serves a
// basic_hub<Policy> whose frames must be WebSocket frames; `parley::server` is the default.
#pragma once

#include "browser_sign_in.hpp"
#include "clock.hpp"
#include "error.hpp"
#include "http.hpp"
#include "hub.hpp"
#include "log_level.hpp"
#include "origin.hpp"
#include "policy.hpp"
#include "server_hooks.hpp"
#include "session_protocol.hpp"
#include "shared_frame.hpp"
#include "web_page.hpp"
#include "websocket.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley {

struct server_config {
  http_limits http{};
  websocket_limits websocket{};                           // 64 KiB messages: room for an 8 KiB body
  std::size_t max_connections = 10000;
  std::size_t monitoring_reserve = 8;  // loopback connections past the cap, for /healthz and /metrics only
  milliseconds handshake_timeout = std::chrono::seconds(10);  // from accept to hello.ok: slow-loris bound
  milliseconds ping_interval = std::chrono::seconds(30);
  milliseconds pong_timeout = std::chrono::seconds(60);   // silence this long closes the connection
  std::size_t max_queue_bytes = 1024 * 1024;              // unwritten output past this is a slow consumer
  milliseconds close_linger = std::chrono::seconds(2);    // a socket we are closing is cut after this
  milliseconds shutdown_grace = std::chrono::milliseconds(1500);  // SIGTERM: close frames get this long to go out
  milliseconds revocation_poll_interval = std::chrono::seconds(1);  // how soon another process's revoke bites
  bool tls = false;                       // we serve https: our own origin's scheme
  bool loopback_hosts_only = false;       // a loopback bind: refuse a Host that is not loopback (DNS rebinding)
  std::vector<web_origin> allowed_origins;  // browser origins besides our own that may open a WebSocket
  std::vector<web_asset> web_assets;        // the page for people; none: "/" answers 426 to a plain GET
  milliseconds sign_in_lifetime = std::chrono::hours(12);  // a person's sign-in at the page (its cookie)
  std::size_t max_sign_ins = 10000;                         // past this the oldest sign-in is given up
};

// Parley's own close codes beside the hello failures of error.hpp.
namespace close_codes {
inline constexpr std::uint16_t token_revoked = 4000;
inline constexpr std::uint16_t slow_consumer = 4008;
inline constexpr std::uint16_t session_taken_over = 4009;  // a resume on another connection won
}  // namespace close_codes

using connection_id = std::uint64_t;

struct connection_output {
  std::vector<shared_frame> frames;  // write in order, gathered into one write
  bool close_after = false;          // then close the socket
};

template <class Policy>
class basic_server {
  // Each message's frame is encoded once for all its recipients, so the hub must
  // already hold WebSocket frames: bare JSON on the socket would be a protocol error.
  static_assert(std::is_same_v<typename Policy::frame_encoding, websocket_frames>,
                "a server's policy must name websocket_frames as its frame_encoding");

 public:
  using hub_type = basic_hub<Policy>;
  using hooks_type = typename Policy::server_hooks;
  using moment_type = moment_of<Policy>;
  using monotonic_time = typename moment_type::monotonic_time;

  explicit basic_server(hub_type& h, server_config config = {}, hooks_type hooks = {})
      : hub_(h), config_(std::move(config)), hooks_(std::move(hooks)),
        sign_ins_(config_.max_sign_ins, config_.sign_in_lifetime) {}

  // ---- connections ----------------------------------------------------------

  // A new TCP connection; nullopt when at the cap: write capacity_response() and close.
  // At the cap a loopback peer may still take one of a few reserved connections, which
  // serve /healthz and /metrics only, so monitoring does not go blind when the server
  // is full.
  [[nodiscard]] std::optional<connection_id> accept(const moment_type& now, bool from_loopback = false) {
    now_ = now.monotonic;
    const bool over_cap = connections_.size() - reserved_in_use_ >= config_.max_connections;
    if (over_cap && (!from_loopback || reserved_in_use_ >= config_.monitoring_reserve)) {
      ++refused_connections_;
      return std::nullopt;
    }
    const connection_id id = ++last_connection_;
    auto& c = connections_.emplace(id, connection{id, now.monotonic, config_}).first->second;
    c.monitoring_only = over_cap;
    reserved_in_use_ += over_cap ? 1 : 0;
    wake_at(c, c.accepted_at + config_.handshake_timeout);
    return id;
  }

  [[nodiscard]] static std::string capacity_response() {
    return build_http_response(http_error{503, "Service Unavailable: connection limit reached", {}});
  }

  void receive(connection_id id, std::string_view bytes, const moment_type& now) {
    now_ = now.monotonic;
    connection* c = find(id);
    if (!c || c->closing) return;
    bytes_in_ += bytes.size();
    if (c->stage == connection_stage::http) {
      const auto parsed = c->http.feed(bytes);
      if (parsed.status == http_parse_status::need_more) return;
      if (parsed.status == http_parse_status::failed) return refuse_http(*c, parsed.error);
      if (!route_http(*c, now)) return;
      c->http = http_request_parser(config_.http);  // done with: its buffer goes, not kept for the connection's life
      bytes.remove_prefix(parsed.consumed);  // a client may send its hello right behind the upgrade
    }
    c->ws.receive(bytes);
    while (!c->closing) {
      auto event = c->ws.next_view_event();
      if (!event) break;
      c->last_heard = now.monotonic;
      std::visit([&](auto& e) { on_event(*c, e, now); }, *event);
    }
    flush_deliveries();
  }

  // The socket is gone (EOF, error, or we closed it). A session that did not end
  // cleanly is detached and may resume within the grace period.
  void transport_closed(connection_id id, const moment_type& now) {
    now_ = now.monotonic;
    connection* c = find(id);
    if (!c) return;
    if (c->session) {
      hub_.detach(*c->session, now);
      by_session_.erase(*c->session);  // a taken-over connection has no session left to detach
      log(log_level::info, "session " + session_id_of(*c) + " detached");
    }
    reserved_in_use_ -= c->monitoring_only ? 1 : 0;
    wakeups_.erase({c->wake, id});
    connections_.erase(id);
  }

  // Fires keepalive pings, handshake and pong timeouts, the linger of closing
  // connections, revocation polling, the shutdown grace and the hub's session expiry.
  void on_timer(const moment_type& now) {
    const monotonic_time t = now_ = now.monotonic;
    if (shutting_down_ && t >= shutdown_deadline_) shutdown_grace_over_ = true;
    if (!labels_.empty() && t >= next_revocation_poll_) {
      next_revocation_poll_ = t + config_.revocation_poll_interval;
      // Sessions end in several ways (expiry, a 1000 close, a refused resume); forget
      // the labels of those that are gone, once per poll rather than once per tick.
      for (auto it = labels_.begin(); it != labels_.end();) it = hub_.session(it->first) ? std::next(it) : labels_.erase(it);
      for (const std::string& label : hooks_.revoked_labels()) close_sessions_of_label(label, now);
    }
    // Only the connections whose wake-up is due: a wake-up may be early (bytes arrived
    // since it was set, moving the pong deadline on), never late, so each due one is
    // checked and given its next wake-up. Events cost O(log n), not a walk of them all.
    while (!wakeups_.empty() && wakeups_.begin()->first <= t) {
      const connection_id id = wakeups_.begin()->second;
      wakeups_.erase(wakeups_.begin());
      connection& c = connections_.at(id);
      c.wake = no_wake;
      check_deadlines(c, t);
      if (auto next = deadline_of(c)) wake_at(c, *next);
    }
    const std::uint64_t rooms_expired = hub_.rooms_expired_total();
    for (const auto& ended : hub_.expire(now)) log(log_level::info, "session " + ended.session_id + " expired");
    if (const std::uint64_t n = hub_.rooms_expired_total() - rooms_expired; n > 0)
      log(log_level::info, std::to_string(n) + (n == 1 ? " room" : " rooms") + " expired: empty and never written to");
  }

  // When on_timer wants to run next, on the monotonic clock.
  [[nodiscard]] std::optional<monotonic_time> next_deadline() const {
    std::optional<monotonic_time> next = hub_.next_deadline();
    auto consider = [&](monotonic_time t) {
      if (!next || t < *next) next = t;
    };
    if (shutting_down_ && !shutdown_grace_over_) consider(shutdown_deadline_);
    if (!labels_.empty()) consider(next_revocation_poll_);
    if (!wakeups_.empty()) consider(wakeups_.begin()->first);
    return next;
  }

  // ---- cluster: the bus that orders room messages (room_bus.hpp) ---------------

  // What this node's sessions sent since the last call, for the host to publish in order.
  void take_published(std::vector<bus_message>& into) { hub_.take_published(into); }

  // Every message the bus delivers, in its order, this node's own included. False: the
  // record was behind its room's latest seq and reached nobody (see basic_hub).
  bool bus_delivered(const bus_message& m, std::uint64_t seq, const moment_type& now) {
    now_ = now.monotonic;
    const bool in_order = hub_.bus_delivered(m, seq, now);
    flush_deliveries();
    return in_order;
  }

  // The bus would not take a message this node published.
  void bus_refused(std::string_view message_id, const moment_type& now) {
    now_ = now.monotonic;
    hub_.bus_refused(message_id);
    flush_deliveries();
  }

  // ---- output -------------------------------------------------------------

  // Connections with something to write or a close to carry out, each listed once.
  [[nodiscard]] std::vector<connection_id> take_writable() {
    std::vector<connection_id> out;
    out.swap(writable_);
    for (connection_id id : out)
      if (connection* c = find(id)) c->writable_listed = false;
    return out;
  }

  // The same into a caller's vector, cleared first: the two swap buffers, so a loop that
  // keeps its vector allocates nothing once both have grown.
  void take_writable(std::vector<connection_id>& into) {
    into.clear();
    into.swap(writable_);
    for (connection_id id : into)
      if (connection* c = find(id)) c->writable_listed = false;
  }

  // The frames to write now. They count against the queue bound until written() says so.
  [[nodiscard]] connection_output take_output(connection_id id) {
    connection_output out;
    take_output(id, out);
    return out;
  }

  // The same into a caller's connection_output, whose previous frames are released
  // first; the buffers swap, so a writer that keeps one per connection allocates nothing
  // per delivery.
  void take_output(connection_id id, connection_output& into) {
    into.frames.clear();
    into.close_after = false;
    connection* c = find(id);
    if (!c) return;
    into.frames.swap(c->pending);
    c->must_deliver = 0;
    for (const auto& f : into.frames) bytes_out_ += f->size();
    into.close_after = c->closing;
  }

  void written(connection_id id, std::size_t bytes) {
    if (connection* c = find(id)) c->unwritten_bytes -= std::min(bytes, c->unwritten_bytes);
  }

  // Connections to cut now, without writing more: we decided to close them
  // close_linger ago and the peer has neither read our last bytes nor hung up.
  [[nodiscard]] std::vector<connection_id> take_aborted() { return std::exchange(aborted_, {}); }

  // ---- operations from outside ----------------------------------------------

  // SIGTERM: refuse new hellos and close every connection with 1001. finished() says
  // when the caller may stop: every connection gone, or the shutdown grace over.
  void shutdown(const moment_type& now) {
    now_ = now.monotonic;
    if (!shutting_down_) shutdown_deadline_ = now_ + config_.shutdown_grace;
    shutting_down_ = true;
    for (auto& [id, c] : connections_) {
      if (c.closing) continue;
      if (c.stage == connection_stage::http) refuse_http(c, http_error{503, "Service Unavailable: shutting down", {}});
      else close(c, ws_status::going_away, "server shutting down");
    }
  }

  [[nodiscard]] bool finished() const noexcept {
    return shutting_down_ && (connections_.empty() || shutdown_grace_over_);
  }

  // A revoked token: its sessions end, and live ones are closed with 4000 first.
  // on_timer polls the hooks for revocations; a host that hears of one sooner may call this.
  void close_sessions_of_label(const std::string& label, const moment_type& now) {
    now_ = now.monotonic;
    bool announced = false;
    for (auto it = labels_.begin(); it != labels_.end();) {
      if (it->second != label) {
        ++it;
        continue;
      }
      if (!std::exchange(announced, true)) log(log_level::info, "token " + label + " was revoked: closing its sessions");
      sign_ins_.erase_label(label);
      const session_handle s = it->first;
      if (auto conn = by_session_.find(s); conn != by_session_.end()) {
        if (connection* c = find(conn->second)) {
          log(log_level::info, "session " + session_id_of(*c) + " closed: token revoked");
          close(*c, close_codes::token_revoked, "token revoked");
          c->session.reset();
        }
        by_session_.erase(conn);
      }
      hub_.end_session(s, now);
      it = labels_.erase(it);
    }
  }

  [[nodiscard]] std::string metrics_text() const {
    const hub_stats st = hub_.stats();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t value) {
      out += std::string("# HELP parley_") + name + " " + help + "\n# TYPE parley_" + name + " " + type + "\nparley_" +
             name + " " + std::to_string(value) + "\n";
    };
    metric("connections", "gauge", "Open TCP connections.", connections_.size());
    metric("sessions", "gauge", "Sessions, attached or within their grace period.", st.sessions);
    metric("sessions_attached", "gauge", "Sessions with a live connection.", st.attached_sessions);
    metric("rooms", "gauge", "Rooms known to the server.", st.rooms);
    metric("storage_failing", "gauge", "1 while the storage's latest write failed (then /healthz answers 503).",
           hooks_.storage_failing() ? 1 : 0);
    metric("memberships", "gauge", "Session memberships across all rooms.", st.memberships);
    metric("messages_total", "counter", "Messages accepted by send_message.", st.messages_total);
    metric("deliveries_total", "counter", "room.message frames queued for recipients, replays included.",
           st.deliveries_total);
    metric("rate_limited_total", "counter", "send_message calls refused by the rate limit.", st.rate_limited_total);
    metric("replay_overflows_total", "counter", "Resumes refused because the replay ring had overflowed.",
           st.replay_overflows_total);
    metric("room_creations_refused_total", "counter",
           "Joins refused because they would create a room over the creation budget or the room cap.",
           st.room_creations_refused_total);
    metric("rooms_expired_total", "counter", "Empty rooms never written to, deleted after the room TTL.",
           st.rooms_expired_total);
    metric("bus_records_behind_total", "counter",
           "Cluster: bus records at or below their room's latest seq, delivered to nobody (a lost, restarted stream).",
           st.bus_records_behind_total);
    metric("slow_consumer_closes_total", "counter", "Connections closed with 4008 for an outgoing queue over its bound.",
           slow_consumer_closes_);
    metric("connections_refused_total", "counter", "Connections refused at the connection cap.", refused_connections_);
    metric("bytes_in_total", "counter", "Bytes received from clients.", bytes_in_);
    metric("bytes_out_total", "counter", "Bytes handed to the transport for clients.", bytes_out_);
    return out;
  }

  [[nodiscard]] std::size_t connection_count() const noexcept { return connections_.size(); }
  [[nodiscard]] std::size_t sign_in_count() const noexcept { return sign_ins_.size(); }
  [[nodiscard]] hooks_type& hooks() noexcept { return hooks_; }
  [[nodiscard]] std::optional<session_handle> session_of(connection_id id) const {
    auto it = connections_.find(id);
    if (it == connections_.end()) return std::nullopt;
    return it->second.session;
  }

 private:
  enum class connection_stage { http, awaiting_hello, open };

  struct connection {
    connection(connection_id id_, monotonic_time now, const server_config& config)
        : id(id_), accepted_at(now), last_heard(now), last_ping(now), http(config.http),
          ws(role::server, {}, config.websocket) {}

    connection_id id;
    connection_stage stage = connection_stage::http;
    monotonic_time accepted_at;
    monotonic_time last_heard;
    monotonic_time last_ping;
    monotonic_time close_deadline{};  // set when closing: cut the socket if still open then
    http_request_parser http;
    websocket ws;
    std::optional<std::string> bearer_token;
    std::optional<session_handle> session;
    std::string label;
    std::vector<shared_frame> pending;  // not yet taken by the transport
    std::size_t must_deliver = 0;       // pending[0, must_deliver) holds a 101, hello.ok or replay
    std::size_t unwritten_bytes = 0;    // pushed and not yet reported written: what the bound limits
    bool closing = false;
    bool aborted = false;
    bool monitoring_only = false;  // accepted past the cap: /healthz and /metrics only
    bool writable_listed = false;
    monotonic_time wake = no_wake;  // its entry in wakeups_, or no_wake
  };

  connection* find(connection_id id) {
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : &it->second;
  }

  void log(log_level level, const std::string& line) { hooks_.log(level, line); }

  std::string session_id_of(const connection& c) const {
    if (!c.session) return "(none)";
    const auto* s = hub_.session(*c.session);
    return s ? s->id : "(ended)";
  }

  // What on_timer does for one connection whose wake-up is due.
  void check_deadlines(connection& c, monotonic_time t) {
    if (c.closing) {
      if (!c.aborted && t >= c.close_deadline) {
        c.aborted = true;  // the peer never took our last bytes or never hung up
        aborted_.push_back(c.id);
      }
      return;
    }
    if (c.stage != connection_stage::open) {
      if (t - c.accepted_at >= config_.handshake_timeout) {
        log(log_level::info, "connection " + std::to_string(c.id) + " closed: handshake timeout");
        if (c.stage == connection_stage::http) refuse_http(c, http_error{408, "Request Timeout", {}});
        else close(c, ws_status::policy_violation, "hello not received in time");
      }
      return;
    }
    if (t - c.last_heard >= config_.pong_timeout) {
      log(log_level::info, "session " + session_id_of(c) + " closed: no pong in time");
      close(c, ws_status::going_away, "keepalive timeout");
      return;
    }
    if (t - c.last_ping >= config_.ping_interval) {
      c.last_ping = t;
      push(c, make_shared_frame(c.ws.encode_ping()));
    }
  }

  // The connection's earliest deadline in its present state; none once it is aborted.
  [[nodiscard]] std::optional<monotonic_time> deadline_of(const connection& c) const {
    if (c.closing) return c.aborted ? std::nullopt : std::optional<monotonic_time>(c.close_deadline);
    if (c.stage != connection_stage::open) return c.accepted_at + config_.handshake_timeout;
    return std::min(c.last_heard + config_.pong_timeout, c.last_ping + config_.ping_interval);
  }

  // Moves the connection's wake-up earlier; a later one waits for the present one to fire.
  void wake_at(connection& c, monotonic_time t) {
    if (c.wake != no_wake && c.wake <= t) return;
    if (c.wake != no_wake) wakeups_.erase({c.wake, c.id});
    c.wake = t;
    wakeups_.emplace(t, c.id);
  }

  void mark_writable(connection& c) {
    if (!c.writable_listed) {
      c.writable_listed = true;
      writable_.push_back(c.id);
    }
  }

  // Queues output for the connection. Everything a client can make us send — replies,
  // pongs, deliveries — is bounded: a client that asks and never reads is a slow
  // consumer like any other. Only a handshake's answer, a resume's replay (bounded by
  // the ring) and the final close frame skip the bound.
  void push(connection& c, shared_frame frame) {
    if (c.closing) return;
    if (c.unwritten_bytes + frame->size() > config_.max_queue_bytes) return slow_consumer(c);
    push_unbounded(c, std::move(frame));
  }

  // For what must reach the peer even if a slow-consumer close follows: a client that
  // got a close without its 101 or its hello.ok could not tell what happened.
  void push_unbounded(connection& c, shared_frame frame) {
    c.unwritten_bytes += frame->size();
    c.pending.push_back(std::move(frame));
    c.must_deliver = c.pending.size();
    mark_writable(c);
  }

  void send_text(connection& c, std::string_view json_text) { push(c, make_shared_frame(encode_server_text_frame(json_text))); }

  // Sends a close frame and stops reading; the transport closes after writing it.
  void close(connection& c, std::uint16_t code, std::string_view reason) {
    if (c.closing) return;
    push_unbounded(c, make_shared_frame(c.ws.encode_close(code, reason)));
    start_closing(c);
  }

  void finish_http(connection& c, std::string response) {
    push_unbounded(c, make_shared_frame(std::move(response)));
    start_closing(c);
  }

  void start_closing(connection& c) {
    c.closing = true;
    c.close_deadline = now_ + config_.close_linger;
    wake_at(c, c.close_deadline);
  }

  // Every HTTP answer but the 101 carries the page's security headers: an error page
  // is a page too, and a browser may be looking at it.
  void refuse_http(connection& c, http_error e, const std::optional<web_origin>& own = std::nullopt) {
    add_security_headers(e.headers, own);
    finish_http(c, build_http_response(e));
  }

  void answer_http(connection& c, int status, std::string_view reason, http_headers headers, std::string_view body,
                   const std::optional<web_origin>& own) {
    add_security_headers(headers, own);
    finish_http(c, build_http_response(status, reason, headers, body));
  }

  // Returns true when the connection was upgraded and bytes should flow to the WebSocket.
  bool route_http(connection& c, const moment_type& now) {
    const http_request request = c.http.take_request();
    const auto host = request.headers.get("Host");
    if (!host) {
      refuse_http(c, http_error{400, "Bad Request: a Host header is required", {}});
      return false;
    }
    if (config_.loopback_hosts_only && !is_loopback_host(*host)) {
      log(log_level::info, "connection " + std::to_string(c.id) + " refused: Host is not a loopback name");
      refuse_http(c, http_error{403, "Forbidden: this server answers only to localhost, 127.0.0.1 or [::1]", {}});
      return false;
    }
    const std::optional<web_origin> own = own_origin(*host, config_.tls);
    std::string_view path = request.target;
    path = path.substr(0, path.find('?'));
    const bool get_or_head = request.method == "GET" || request.method == "HEAD";
    auto not_allowed = [&](std::string_view allowed) {
      http_headers allow;
      allow.add("Allow", std::string(allowed));
      refuse_http(c, http_error{405, "Method Not Allowed", allow}, own);
      return false;
    };
    if (path == "/healthz" || path == "/metrics") {
      if (!get_or_head) return not_allowed("GET, HEAD");
      http_headers headers;
      headers.add("Content-Type", path == "/healthz" ? "text/plain; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8");
      // Unhealthy is a fact, not a cause: the storage's own error stays in the host's log.
      const bool unhealthy = path == "/healthz" && hooks_.storage_failing();
      std::string body = path == "/metrics" ? metrics_text() : unhealthy ? std::string("storage failing\n") : std::string("ok\n");
      answer_http(c, unhealthy ? 503 : 200, unhealthy ? "Service Unavailable" : "OK", headers,
                  request.method == "HEAD" ? std::string() : body, own);
      return false;
    }
    if (c.monitoring_only) {
      ++refused_connections_;
      finish_http(c, capacity_response());
      return false;
    }
    if (path == "/session") {
      serve_sign_in(c, request, own, now.monotonic);
      return false;
    }
    if (!is_upgrade_request(request)) {
      if (const web_asset* asset = find_web_asset(config_.web_assets, path)) {
        if (!get_or_head) return not_allowed("GET, HEAD");
        http_headers headers;
        headers.add("Content-Type", std::string(web_content_type(asset->name)));
        headers.add("Cache-Control", "no-cache");
        answer_http(c, 200, "OK", headers, request.method == "HEAD" ? std::string_view() : asset->bytes, own);
        return false;
      }
      if (path != "/") {
        refuse_http(c, http_error{404, "Not Found", {}}, own);
        return false;
      }
      http_headers upgrade;
      upgrade.add("Upgrade", "websocket");
      refuse_http(c, http_error{426, "Upgrade Required", upgrade}, own);
      return false;
    }
    if (path != "/") {
      refuse_http(c, http_error{404, "Not Found", {}}, own);
      return false;
    }
    auto accept = validate_websocket_upgrade(request);
    if (!accept) {
      refuse_http(c, accept.error(), own);
      return false;
    }
    // A browser says which page is asking; native clients send no Origin and are
    // subject to auth alone.
    const auto origin = request.headers.get("Origin");
    if (origin && !origin_allowed(*origin, *host)) {
      log(log_level::info, "connection " + std::to_string(c.id) + " refused: origin not allowed");
      refuse_http(c, http_error{403, "Forbidden: this origin may not open a WebSocket here", {}}, own);
      return false;
    }
    c.bearer_token = bearer_token(request);
    if (!c.bearer_token && origin && is_own_origin(*origin, own)) c.bearer_token = signed_in_token(request, now.monotonic);
    push_unbounded(c, make_shared_frame(build_switching_protocols(*accept)));
    c.stage = connection_stage::awaiting_hello;
    return true;
  }

  [[nodiscard]] static bool is_own_origin(std::string_view origin_header, const std::optional<web_origin>& own) {
    const auto origin = parse_web_origin(origin_header);
    return origin && own && *origin == *own;
  }

  // The token of the page's sign-in cookie, if it names a live one.
  [[nodiscard]] std::optional<std::string> signed_in_token(const http_request& request, monotonic_time now) const {
    const auto cookie = request.headers.get("Cookie");
    if (!cookie) return std::nullopt;
    for (std::string_view id : cookie_values(*cookie, sign_in_cookie_name(config_.tls)))
      if (const auto* s = sign_ins_.find(id, now)) return s->token;
    return std::nullopt;
  }

  // /session: GET says whether the page must ask for a token and whether it holds a
  // sign-in; POST (the token as a bearer) signs in; DELETE signs out. POST and DELETE
  // must come from our own page: a browser always sends Origin on them, so another
  // page can neither sign the user in as someone else nor out.
  void serve_sign_in(connection& c, const http_request& request, const std::optional<web_origin>& own,
                     monotonic_time now) {
    http_headers headers;
    headers.add("Content-Type", "application/json");
    headers.add("Cache-Control", "no-store");
    auto answer = [&](int status, std::string_view reason, const json& body) {
      answer_http(c, status, reason, headers, body.is_null() ? std::string() : body.dump(), own);
    };
    auto failure = [&](int status, std::string_view reason, error_code code, std::string message) {
      answer(status, reason, json{{"code", to_string(code)}, {"message", std::move(message)}});
    };
    if (request.method == "GET" || request.method == "HEAD") {
      const bool signed_in = signed_in_token(request, now).has_value();
      const json body{{"tokenRequired", hooks_.tokens_required()}, {"signedIn", signed_in}};
      return answer(200, "OK", request.method == "HEAD" ? json() : body);
    }
    if (request.method != "POST" && request.method != "DELETE") {
      http_headers allow;
      allow.add("Allow", "GET, HEAD, POST, DELETE");
      return refuse_http(c, http_error{405, "Method Not Allowed", allow}, own);
    }
    const auto origin = request.headers.get("Origin");
    if (!origin || !is_own_origin(*origin, own)) {
      log(log_level::info, "connection " + std::to_string(c.id) + " refused: sign-in from another origin");
      return failure(403, "Forbidden", error_code::invalid_argument,
                     "sign-in and sign-out are accepted only from this server's own page");
    }
    if (request.method == "DELETE") {
      if (const auto cookie = request.headers.get("Cookie"))
        for (std::string_view id : cookie_values(*cookie, sign_in_cookie_name(config_.tls))) sign_ins_.erase(std::string(id));
      headers.add("Set-Cookie", sign_in_cookie({}, config_.tls, config_.sign_in_lifetime));
      return answer(204, "No Content", json());
    }
    if (!hooks_.tokens_required())
      return failure(400, "Bad Request", error_code::invalid_argument,
                     "this server needs no token: it is bound to loopback");
    const auto token = bearer_token(request);
    if (!token || token->size() > max_auth_token_length)
      return failure(400, "Bad Request", error_code::auth_required,
                     "send the token as Authorization: Bearer TOKEN (at most 256 characters)");
    token_verdict verdict = hooks_.check_token(*token);
    switch (verdict.status) {
      case token_status::valid: break;
      case token_status::unknown: return failure(401, "Unauthorized", error_code::bad_token, "unknown token");
      case token_status::revoked:
        return failure(401, "Unauthorized", error_code::token_revoked, "token " + verdict.label + " is revoked");
      case token_status::unavailable:
        log(log_level::error, "sign-in refused: the token store is unavailable");
        return failure(503, "Service Unavailable", error_code::internal,
                       "the server cannot check tokens right now; try again later");
    }
    std::string id = hub_.random_secret();
    headers.add("Set-Cookie", sign_in_cookie(id, config_.tls, config_.sign_in_lifetime));
    log(log_level::info, "token " + verdict.label + " signed in at the web page");
    sign_ins_.add(std::move(id), *token, std::move(verdict.label), now);
    answer(204, "No Content", json());
  }

  // Our own page's origin, and those named with --allow-origin. "null" and anything
  // unparsable are refused.
  bool origin_allowed(std::string_view origin_header, std::string_view host) const {
    auto origin = parse_web_origin(origin_header);
    if (!origin) return false;
    if (auto own = own_origin(host, config_.tls); own && *own == *origin) return true;
    return std::find(config_.allowed_origins.begin(), config_.allowed_origins.end(), *origin) !=
           config_.allowed_origins.end();
  }

  // The reference server reads binary frames as UTF-8 JSON too; so do we.
  void on_event(connection& c, ws_message_view& e, const moment_type& now) {
    if (!e.text && !is_valid_utf8(e.data)) return close(c, ws_status::invalid_payload, "binary frame is not UTF-8 JSON");
    on_message(c, e.data, now);
  }
  void on_event(connection& c, ws_ping& e, const moment_type&) { push(c, make_shared_frame(c.ws.encode_pong(e.payload))); }
  void on_event(connection&, ws_pong&, const moment_type&) {}
  void on_event(connection& c, ws_close& e, const moment_type& now) {
    // 1000 is a deliberate goodbye: the session ends now and its nicknames vanish for
    // everyone; any other close is a drop that the grace period covers.
    if (c.session && e.code == ws_status::normal) {
      log(log_level::info, "session " + session_id_of(c) + " ended by the client");
      by_session_.erase(*c.session);
      hub_.end_session(*c.session, now);
      c.session.reset();
    }
    close(c, e.code, {});
  }
  void on_event(connection& c, ws_failure& e, const moment_type&) {
    log(log_level::info, "connection " + std::to_string(c.id) + " failed: " + e.reason);
    close(c, e.close_code, e.reason);
  }

  void on_message(connection& c, std::string_view text, const moment_type& now) {
    if (c.stage == connection_stage::open) {
      if (auto answer = serve_client_text(hub_, *c.session, text, now)) send_text(c, *answer);
      return;
    }
    auto hello = decode_hello(text);
    if (!hello) return refuse_hello(c, hello.error());
    if (shutting_down_)
      return refuse_hello(c, error{error_code::server_shutting_down, "the server is shutting down", nullptr});
    std::optional<error> auth_failure;
    // Resume needs the reconnect token, not a bearer token: the session was
    // authenticated when it began, and its label came with it. A server that needs no
    // token (loopback) still checks one that is presented: its label is a durable
    // principal, which roles and bans attach to.
    const auto& token = hello->auth_token ? hello->auth_token : c.bearer_token;
    if (!hello->resume && (hooks_.tokens_required() || token)) {
      if (!token) {
        auth_failure = error{error_code::auth_required,
                             "this server requires a token: pass it in hello.authToken or an Authorization: Bearer header",
                             nullptr};
      } else {
        token_verdict verdict = hooks_.check_token(*token);
        switch (verdict.status) {
          case token_status::valid: c.label = std::move(verdict.label); break;
          case token_status::unknown: auth_failure = error{error_code::bad_token, "unknown token", nullptr}; break;
          case token_status::revoked:
            auth_failure = error{error_code::token_revoked, "token " + verdict.label + " is revoked", nullptr};
            break;
          case token_status::unavailable:
            // The host's store failed; its details stay in the host's log, never on the wire.
            log(log_level::error, "hello refused: the token store is unavailable");
            send_text(c, encode_hello_err(error{error_code::internal,
                                                "the server cannot check tokens right now; try again later", nullptr}));
            return close(c, ws_status::internal_error, "token store unavailable");
        }
      }
    }
    hello_outcome outcome = serve_hello(hub_, *hello, now, auth_failure, c.label);
    if (!outcome.session) {
      log(log_level::info, "hello refused with close code " + std::to_string(*outcome.close_code));
      send_text(c, outcome.frame);
      close(c, static_cast<std::uint16_t>(*outcome.close_code), "hello refused");
      // An overflowing resume ends the session; a connection still holding it (the
      // resume raced a live one) must learn so now, not by InternalError on its next call.
      if (*outcome.close_code == close_code_for(error_code::replay_buffer_overflow)) close_ended_sessions();
      return;
    }
    const session_handle s = outcome.session->handle;
    if (auto previous = by_session_.find(s); previous != by_session_.end() && previous->second != c.id) {
      if (connection* old = find(previous->second)) {  // the newer connection wins the session
        old->session.reset();
        close(*old, close_codes::session_taken_over, "session resumed on another connection");
      }
    }
    if (hello->resume) {
      if (auto it = labels_.find(s); it != labels_.end()) c.label = it->second;
    } else if (!c.label.empty()) {
      if (labels_.empty()) next_revocation_poll_ = now.monotonic + config_.revocation_poll_interval;
      labels_[s] = c.label;
    }
    by_session_[s] = c.id;
    c.session = s;
    c.stage = connection_stage::open;
    c.last_ping = now.monotonic;
    if (auto next = deadline_of(c)) wake_at(c, *next);
    push_unbounded(c, make_shared_frame(encode_server_text_frame(outcome.frame)));
    // The replay goes out at once and outside the queue bound: the ring already bounds
    // it (capacity x largest frame), and a resume must not trip the slow-consumer close.
    for (auto& frame : hub_.drain(s)) push_unbounded(c, std::move(frame));
    log(log_level::info, std::string("session ") + outcome.session->session_id + (hello->resume ? " resumed" : " started"));
  }

  void close_ended_sessions() {
    for (auto it = by_session_.begin(); it != by_session_.end();) {
      if (hub_.session(it->first)) {
        ++it;
        continue;
      }
      if (connection* holder = find(it->second)) {
        holder->session.reset();
        close(*holder, static_cast<std::uint16_t>(close_code_for(error_code::replay_buffer_overflow)),
              "the session ended: a resume found messages dropped");
      }
      it = by_session_.erase(it);
    }
  }

  void refuse_hello(connection& c, const error& e) {
    log(log_level::info, std::string("hello refused: ") + std::string(to_string(e.code)));
    send_text(c, encode_hello_err(e));
    close(c, static_cast<std::uint16_t>(close_code_for(e.code)), "hello refused");
  }

  // Moves the hub's deliveries (already WebSocket frames, shared) onto connections,
  // closing any connection whose unwritten output would pass the bound.
  // The scratch vectors keep their capacity: a steady stream allocates nothing here.
  void flush_deliveries() {
    hub_.take_ready(ready_scratch_);
    for (session_handle s : ready_scratch_) {
      hub_.drain(s, frames_scratch_);
      if (frames_scratch_.empty()) continue;  // already sent, e.g. as a resume's replay
      auto it = by_session_.find(s);
      if (it == by_session_.end()) continue;
      connection* c = find(it->second);
      if (!c || c->closing) continue;
      for (auto& f : frames_scratch_) push(*c, std::move(f));
    }
    frames_scratch_.clear();
  }

  // Unwritten frames are dropped, not lost: they sit in the session's replay rings,
  // so a resume replays them or reports the overflow.
  void slow_consumer(connection& c) {
    if (c.closing) return;
    ++slow_consumer_closes_;
    log(log_level::warn, "session " + session_id_of(c) + " closed: slow consumer");
    for (std::size_t i = c.must_deliver; i < c.pending.size(); ++i)
      c.unwritten_bytes -= std::min(c.pending[i]->size(), c.unwritten_bytes);
    c.pending.resize(c.must_deliver);
    close(c, close_codes::slow_consumer, "slow consumer");
  }

  hub_type& hub_;
  server_config config_;
  hooks_type hooks_;
  static constexpr monotonic_time no_wake = monotonic_time::max();
  std::unordered_map<connection_id, connection> connections_;
  std::set<std::pair<monotonic_time, connection_id>> wakeups_;  // each connection's next check, soonest first
  std::unordered_map<session_handle, connection_id> by_session_;
  std::unordered_map<session_handle, std::string> labels_;
  browser_sign_ins<monotonic_time> sign_ins_;
  std::vector<connection_id> writable_;
  std::vector<connection_id> aborted_;
  std::vector<session_handle> ready_scratch_;  // flush_deliveries' buffers
  std::vector<shared_frame> frames_scratch_;
  connection_id last_connection_ = 0;
  monotonic_time now_{};  // the latest time an entry point was given: when closes are decided
  monotonic_time next_revocation_poll_{};
  monotonic_time shutdown_deadline_{};
  bool shutting_down_ = false;
  bool shutdown_grace_over_ = false;
  std::uint64_t slow_consumer_closes_ = 0;
  std::uint64_t refused_connections_ = 0;
  std::size_t reserved_in_use_ = 0;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
};

using server = basic_server<server_policy>;

}  // namespace parley
