// SPDX-License-Identifier: MIT
// A Parley client session without I/O: dial, upgrade, hello or resume, tool calls, room messages, acks, reconnects.
//
// The caller tells it what the transport did (connected, bytes, ended) and what the layer
// above wants (call, ack, close), each with `now`; after each, poll(now) answers
// everything the loop must do: dial, bytes to write, close the transport, when to poll
// again, and the events for the layer above (room messages, call outcomes, session
// changes). It owns the reconnect policy (backoff with equal jitter, connect and silence
// timeouts), resume, and a fresh session when a resume is refused, rejoining every room
// under the same nickname or name-2, name-3, ...; the de-duplication of room messages by
// seq; calls in flight across a resume; and the request ids on the wire. It never acks
// by itself: a message is acked when the layer above says it is safely passed on.
#pragma once

#include "clock.hpp"
#include "error.hpp"
#include "http.hpp"
#include "name_rules.hpp"
#include "policy.hpp"
#include "random_source.hpp"
#include "uuid.hpp"
#include "version.hpp"
#include "websocket.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace parley {

// What it takes to resume a session from elsewhere (another process, a reloaded page):
// basic_client::snapshot() gives it, client_config::resume_from takes it.
struct session_snapshot {
  struct room {
    std::string nickname;       // to rejoin under if the resume is refused; empty: any
    std::uint64_t last_seq = 0;  // the highest seq passed on; the server replays what follows
    std::uint64_t last_direct_seq = 0;  // the same for the room's direct messages to us, a stream of its own
  };
  std::string session_id;
  std::string reconnect_token;
  std::map<std::string, room, std::less<>> rooms;
};

struct client_config {
  std::string host = "127.0.0.1:7539";  // the Host header: host[:port], as server_url::host_header gives it
  std::string path = "/";
  std::optional<std::string> token;     // sent as hello.authToken
  http_headers headers;                 // more upgrade request fields, e.g. Authorization: Bearer
  std::optional<session_snapshot> resume_from;  // the first hello resumes this session
  std::string client_version = std::string(version_string);
  // The nth retry in a row waits a uniformly drawn time in the upper half of the step
  // backoff_min·2^(n-1), capped at backoff_max (equal jitter): 50–100 ms, 100–200 ms, ...
  // 5–10 s. The count starts again only once a session has proved healthy: it stayed open
  // for healthy_after, or the server answered one of our calls. A session that opens and
  // fails again at once (the same over-limit answer each time, say) keeps backing off.
  milliseconds backoff_min = std::chrono::milliseconds(100);
  milliseconds backoff_max = std::chrono::seconds(10);
  milliseconds healthy_after = std::chrono::seconds(10);
  // A call is sent at most this many times: when the connection dies while it is
  // outstanding that often, it fails (call_failure::gave_up) instead of going out again.
  int max_call_attempts = 3;
  // Incoming messages from the server; the same constant bounds what the server accepts.
  websocket_limits websocket{};
  milliseconds connect_timeout = std::chrono::seconds(10);      // from dialing to hello.ok
  milliseconds silence_timeout = std::chrono::seconds(90);      // the server pings every 30 s
  milliseconds close_timeout = std::chrono::milliseconds(500);  // close(): how long the 1000 close may take to go out
};

// Names one call() for its outcome; never reused within a client.
using call_id = std::uint64_t;

// ---- events for the layer above ----------------------------------------------

// hello.ok: the old session resumed (calls in flight were sent again), or a new one
// started, in which case `rejoining` lists the rooms the old one was in: their joins are
// under way, and messages sent there meanwhile may have been missed.
struct session_opened {
  bool resumed = false;
  std::vector<std::string> rejoining;
};

// The connection is gone. `reason` says why when the client ended it (empty when the
// transport ended by itself); `reconnecting` is false once close() was called.
struct connection_closed {
  std::string reason;
  bool was_open = false;
  bool reconnecting = true;
  std::optional<std::uint16_t> close_code;  // the code of the server's close frame, if one came
};

// The server would not resume the session (it restarted, say); a fresh one follows as soon
// as the server has closed this connection.
struct resume_refused {
  std::string code;
};

// The server refused the hello for a reason a retry may not cure (a bad token, say).
struct hello_refused {
  std::string code;
  std::string message;
};

struct call_succeeded {
  call_id call = 0;
  json result;  // tool.ok's result
};

enum class call_failure {
  refused,          // the server answered tool.err: code, message and details are its own
  unreachable,      // no connection and none under way; code and message are the last hello.err's, if any
  connection_lost,  // the connection dropped before the answer, and the call is not safe to send twice
  session_reset,    // a new session replaced the one the call went out on: it may or may not have taken effect
  closed,           // close() was called
  gave_up,          // the connection died every one of max_call_attempts times the call was out; details has
                    // {tool, attempts, reason}
};

struct call_failed {
  call_id call = 0;
  call_failure why = call_failure::refused;
  std::string code;
  std::string message;
  json details;  // null when there are none
};

// A join made for a new session, and the nickname it got.
struct room_rejoined {
  std::string room;
  std::string nickname;
};

// A room the new session could not rejoin; it is forgotten.
struct rejoin_failed {
  std::string room;
  std::string code;
  std::string message;
};

// A system.error frame: the server could not serve something we sent.
struct server_error {
  std::string code;
  std::string message;
};

// A text frame that is not a server frame we know; skipped.
struct frame_ignored {
  std::string reason;
};

// Room messages arrive as room_message_frame, each seq once and in order per room;
// direct messages to us likewise, marked by `to`, each direct seq once and in order per room;
// room events (knock, approved, denied, expired, kicked, banned, role) as room_event_frame.
using client_event = std::variant<session_opened, connection_closed, resume_refused, hello_refused, call_succeeded,
                                  call_failed, room_message_frame, room_rejoined, rejoin_failed, server_error,
                                  frame_ignored, room_event_frame>;

// Everything the loop must do after an input, in this order: write `send` to the
// transport, then close it if `close` (and call disconnected() once it is closed), then
// dial if `dial` (and call connected() or disconnected()). Stop when `finished`. Poll
// again at `deadline` at the latest, and after every input.
template <class Time>
struct client_actions {
  std::string send;
  bool close = false;
  bool dial = false;
  bool finished = false;
  std::optional<Time> deadline;
  std::vector<client_event> events;
};

// Policy names `monotonic_clock` (every deadline is a clock_time on it) and `random`, a
// callable `void(unsigned char*, std::size_t)` drawn for WebSocket keys and masks,
// clientMsgIds and the backoff's jitter.
template <class Policy>
class basic_client {
 public:
  using policy_type = Policy;
  using time = clock_time<typename Policy::monotonic_clock>;
  using random_type = typename Policy::random;
  using actions = client_actions<time>;

  basic_client(client_config config, random_type random) : config_(std::move(config)), random_(std::move(random)) {
    if (config_.resume_from) {
      session_ = hello_ok_frame{config_.resume_from->session_id, config_.resume_from->reconnect_token, {}};
      for (const auto& [room, at] : config_.resume_from->rooms) {
        rooms_[room] = at.nickname;
        last_seq_[room] = at.last_seq;
        last_direct_seq_[room] = at.last_direct_seq;
      }
    }
  }
  // Its WebSocket draws masks from random_ by reference, so the client stays where it was built.
  basic_client(const basic_client&) = delete;
  basic_client& operator=(const basic_client&) = delete;

  // ---- the transport --------------------------------------------------------

  // The TCP (and TLS) connection that poll() asked for is up.
  void connected(time now) {
    if (stage_ != stage::dialing || closing_) return;
    ws_key_ = make_websocket_key(random_);
    refusal_.clear();
    retry_now_ = false;
    auto request = build_upgrade_request(config_.host, config_.path, ws_key_, config_.headers);
    if (!request) return drop(now, "cannot build an upgrade request for host " + config_.host);
    http_ = http_response_parser{};
    ws_.emplace(role::client, random_source(std::ref(random_)), config_.websocket);
    out_ += *request;
    stage_ = stage::upgrading;
    last_heard_ = now;
  }

  void receive(std::string_view bytes, time now) {
    last_heard_ = now;
    if (stage_ == stage::upgrading) {
      auto parsed = http_.feed(bytes);
      if (parsed.status == http_parse_status::need_more) return;
      if (parsed.status == http_parse_status::failed) return drop(now, "the server's upgrade answer is not HTTP");
      if (auto ok = check_upgrade_response(http_.take_response(), ws_key_); !ok) return drop(now, ok.error());
      bytes.remove_prefix(parsed.consumed);
      stage_ = stage::hello_sent;
      send_hello();
    }
    if (!ws_) return;
    ws_->receive(bytes);
    while (ws_ && stage_ != stage::idle) {
      auto event = ws_->next_event();
      if (!event) break;
      std::visit([&](auto& e) { on_event(e, now); }, *event);
    }
  }

  // The transport ended, could not be made, or was closed as asked. `why` is the
  // transport's own account (a refused port, an expired certificate), if it has one:
  // calls that fail as unreachable until the next session opens say it.
  void disconnected(time now, std::string why = {}) {
    if (!why.empty()) last_transport_failure_ = std::move(why);
    transport_ = false;
    close_transport_ = false;  // nothing left to close
    if (closing_) finished_ = true;
    if (stage_ == stage::idle) return;
    out_.clear();  // nowhere to write it
    const bool retry_now = std::exchange(retry_now_, false);
    go_idle(now, std::exchange(refusal_, {}));
    if (retry_now) retry_at_ = now;
    else fail_waiting_calls();
  }

  // ---- the layer above --------------------------------------------------------

  // Sends a tool request; its outcome comes back as call_succeeded or call_failed with
  // the returned id. A send_message without a clientMsgId gets a fresh one, so a retry
  // after a resume is never delivered twice. With no connection open, the call waits for
  // one under way, and fails at once when there is none.
  call_id call(tool_args args) {
    const call_id id = ++last_call_;
    if (auto* send = std::get_if<send_message_args>(&args); send && !send->client_msg_id)
      send->client_msg_id = random_token(random_, 16);
    if (closing_) fail(id, call_failure::closed);
    else if (stage_ == stage::open) send_request(std::move(args), id);
    else if (stage_ == stage::idle) fail_unreachable(id);
    else waiting_.push_back({id, std::move(args)});
    return id;
  }

  // Tells the server that everything in `room` up to `seq` is passed on, so it leaves the
  // replay ring; `direct` for the room's direct messages to us (a room_message_frame with
  // `to`), whose seqs are a stream of their own. Without an open connection there is
  // nothing to do: a resume says the same with the last seqs delivered.
  void ack(const std::string& room, std::uint64_t seq, bool direct = false) {
    if (stage_ == stage::open && !closing_) out_ += ws_->encode_text(encode_ack({room, seq, direct}));
  }

  // Ends the session with a 1000 close, on which the server forgets it at once and
  // answers with its own close. Answers to calls that arrive before that still complete
  // them; calls left without one fail with call_failure::closed. Finished when the
  // server's close came or the transport ended, or after close_timeout (and then poll()
  // asks for the transport to be closed).
  void close(time now) {
    if (closing_) return;
    closing_ = true;
    close_deadline_ = now + config_.close_timeout;
    if (stage_ == stage::open) out_ += ws_->encode_close(ws_status::normal, "agent left");
    else if (!transport_) finished_ = true;
    else if (stage_ != stage::idle) close_transport_ = true;  // an attempt under way is given up; when idle, its
                                                              // transport's close was asked for already
    for (auto& call : std::exchange(waiting_, {})) fail(call.id, call_failure::closed);
    if (stage_ == stage::idle) fail_in_flight(call_failure::closed);
  }

  // ---- what to do ---------------------------------------------------------------

  [[nodiscard]] actions poll(time now) {
    if (closing_ && !finished_ && now >= close_deadline_) {
      if (stage_ != stage::idle) drop(now, "the server did not answer the close in time");
      finished_ = true;
    }
    if (handshaking() && now >= stage_deadline_)
      drop(now, refusal_.empty() ? "the server did not complete the handshake in time" : std::exchange(refusal_, {}),
           std::exchange(retry_now_, false));
    if (stage_ == stage::open && now - last_heard_ >= config_.silence_timeout) drop(now, "the server went silent");
    if (stage_ == stage::open && attempts_ > 0 && now >= healthy_at_) attempts_ = 0;
    actions a;
    if (!finished_ && !closing_ && stage_ == stage::idle && !transport_ && (!retry_at_ || now >= *retry_at_)) {
      stage_ = stage::dialing;
      stage_deadline_ = now + config_.connect_timeout;
      transport_ = true;
      a.dial = true;
    }
    a.send = std::exchange(out_, {});
    a.close = std::exchange(close_transport_, false);
    a.finished = finished_;
    a.events = std::exchange(events_, {});
    a.deadline = next_deadline();
    return a;
  }

  // ---- state, for display and tests -------------------------------------------

  [[nodiscard]] bool session_open() const noexcept { return stage_ == stage::open; }
  [[nodiscard]] bool finished() const noexcept { return finished_; }
  // Rooms joined, with our nickname in each (kept across a new session's rejoin).
  [[nodiscard]] const std::map<std::string, std::string, std::less<>>& rooms() const noexcept { return rooms_; }
  // The highest seq passed on per room: what a resume asks the server to start after.
  [[nodiscard]] std::uint64_t last_seq(std::string_view room) const {
    auto it = last_seq_.find(room);
    return it == last_seq_.end() ? 0 : it->second;
  }
  // The same for the room's direct messages to us.
  [[nodiscard]] std::uint64_t last_direct_seq(std::string_view room) const {
    auto it = last_direct_seq_.find(room);
    return it == last_direct_seq_.end() ? 0 : it->second;
  }
  // hello.ok of the current (or last) session.
  [[nodiscard]] const std::optional<hello_ok_frame>& session() const noexcept { return session_; }
  // What resume_from needs to pick this session up elsewhere; none before the first hello.ok.
  [[nodiscard]] std::optional<session_snapshot> snapshot() const {
    if (!session_) return std::nullopt;
    session_snapshot s{session_->session_id, session_->reconnect_token, {}};
    for (const auto& [room, nickname] : rooms_) s.rooms[room] = {nickname, last_seq(room), last_direct_seq(room)};
    return s;
  }

 private:
  enum class stage { idle, dialing, upgrading, hello_sent, open };

  struct in_flight_request {
    std::optional<call_id> call;  // none for the client's own rejoins
    tool_request frame;
    bool retry_on_resume;
    std::string rejoin_room;  // for a rejoin
    int sends = 1;            // how many connections it went out on
  };

  struct waiting_call {
    call_id id;
    tool_args args;
  };

  [[nodiscard]] bool handshaking() const noexcept {
    return stage_ == stage::dialing || stage_ == stage::upgrading || stage_ == stage::hello_sent;
  }

  [[nodiscard]] std::optional<time> next_deadline() const {
    std::optional<time> next;
    auto consider = [&](time t) {
      if (!next || t < *next) next = t;
    };
    if (finished_) return next;
    if (closing_) consider(close_deadline_);
    if (stage_ == stage::idle && !closing_ && !transport_ && retry_at_) consider(*retry_at_);
    if (handshaking()) consider(stage_deadline_);
    if (stage_ == stage::open) consider(last_heard_ + config_.silence_timeout);
    if (stage_ == stage::open && attempts_ > 0) consider(healthy_at_);
    return next;
  }

  // The connection is over for us; schedule the next dial.
  void go_idle(time now, std::string reason, std::optional<std::uint16_t> close_code = std::nullopt) {
    const bool was_open = stage_ == stage::open;
    stage_ = stage::idle;
    ws_.reset();
    const std::string why = !reason.empty() ? reason
                            : close_code    ? "the server closed the connection (" + std::to_string(*close_code) + ")"
                                            : std::string("the connection ended");
    events_.push_back(connection_closed{std::move(reason), was_open, !closing_, close_code});
    if (closing_) {
      finished_ = true;
      fail_in_flight(call_failure::closed);
      return;
    }
    // Equal jitter: half of the exponential step is fixed and half drawn, so clients that
    // lost the same server spread out, yet none retries sooner than half the step.
    const auto step = std::min<std::int64_t>(config_.backoff_max.count(),
                                             config_.backoff_min.count() << std::min(attempts_, 16));
    ++attempts_;
    const auto delay =
        step / 2 + static_cast<std::int64_t>(random_below(random_, static_cast<std::uint64_t>(step / 2 + 1)));
    retry_at_ = now + milliseconds(delay);
    // Requests that may be sent twice wait for the next connection, unless each connection
    // they went out on died under them (an answer too large for us, say); the others fail now.
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      in_flight_request& request = it->second;
      if (request.retry_on_resume && request.sends < config_.max_call_attempts) {
        ++it;
        continue;
      }
      if (!request.retry_on_resume) {
        if (request.call) fail(*request.call, call_failure::connection_lost);
      } else {
        give_up(request, why);
      }
      it = in_flight_.erase(it);
    }
  }

  void give_up(const in_flight_request& request, const std::string& reason) {
    const std::string tool(wire_tool_name(request.frame.args));
    if (!request.call) {
      events_.push_back(rejoin_failed{request.rejoin_room, {},
                                      "the connection dropped each of the " + std::to_string(request.sends) +
                                          " times the join was sent (last: " + reason + ")"});
      forget_room(request.rejoin_room);
      return;
    }
    events_.push_back(call_failed{
        *request.call, call_failure::gave_up, {},
        tool + " failed: the connection to the parley server dropped each of the " + std::to_string(request.sends) +
            " times this call was sent (last: " + reason + "), so it is not sent again.",
        json{{"tool", tool}, {"attempts", request.sends}, {"reason", reason}}});
  }

  static std::string_view wire_tool_name(const tool_args& args) {
    constexpr std::string_view names[] = {"join_room",   "leave_room", "list_rooms", "send_message", "who_is_here",
                                          "create_room", "invite",     "",           "set_role",     "knock", ""};
    static_assert(std::variant_size_v<tool_args> == 11, "a tool without a name here");
    if (const auto* act = std::get_if<member_action_args>(&args))
      return act->action == member_action::kick ? "kick" : act->action == member_action::ban ? "ban" : "unban";
    if (const auto* answer = std::get_if<knock_answer_args>(&args)) return answer->approve ? "approve" : "deny";
    return names[args.index()];
  }

  // We end the connection: what is queued (a close frame, say) is still written, then the
  // caller closes the transport.
  void drop(time now, std::string why, bool retry_now = false, std::optional<std::uint16_t> close_code = std::nullopt) {
    if (transport_) close_transport_ = true;
    go_idle(now, std::move(why), close_code);
    if (retry_now) retry_at_ = now;  // calls waiting for a connection wait for this next one
    else fail_waiting_calls();
  }

  void send_hello() {
    hello_frame hello{config_.client_version, config_.token, std::nullopt};
    hello.direct_messages = true;  // room_message_frame with `to` reaches the layer above like any message
    if (session_) {
      resume_block resume{session_->session_id, session_->reconnect_token, {}};
      for (const auto& [room, nickname] : rooms_) {
        resume.last_acked_seq_by_room[room] = last_seq(room);
        resume.last_acked_direct_seq_by_room[room] = last_direct_seq(room);
      }
      hello.resume = std::move(resume);
    }
    out_ += ws_->encode_text(encode_hello(hello));
  }

  // ---- WebSocket events ------------------------------------------------------

  void on_event(ws_text& e, time now) { on_frame(e.data, now); }
  void on_event(ws_binary& e, time now) { on_frame(e.data, now); }
  void on_event(ws_ping& e, time) { out_ += ws_->encode_pong(e.payload); }
  void on_event(ws_pong&, time) {}
  void on_event(ws_close& e, time now) {
    if (!ws_->close_sent()) out_ += ws_->encode_close(e.code);
    std::string why;  // nothing to say when it answers our own close
    if (!refusal_.empty()) why = std::exchange(refusal_, {});
    else if (!closing_)
      why = "the server closed the connection (" + std::to_string(e.code) + (e.reason.empty() ? "" : " " + e.reason) + ")";
    drop(now, std::move(why), std::exchange(retry_now_, false), e.code);
  }
  void on_event(ws_failure& e, time now) {
    out_ += ws_->encode_close(e.close_code, e.reason);
    drop(now, "protocol error from the server: " + e.reason);
  }

  void on_frame(std::string_view text, time now) {
    auto frame = decode_server_frame(text);
    if (!frame) {
      events_.push_back(frame_ignored{frame.error().message});
      return;
    }
    std::visit([&](auto& f) { on_server_frame(f, now); }, *frame);
  }

  void on_server_frame(hello_ok_frame& ok, time now) {
    const bool resumed = session_ && session_->session_id == ok.session_id;
    session_ = ok;
    stage_ = stage::open;
    healthy_at_ = now + config_.healthy_after;  // the backoff starts again then, or at an answer
    last_heard_ = now;
    last_hello_error_.reset();
    last_transport_failure_.clear();
    if (resumed) {
      events_.push_back(session_opened{true, {}});
      for (auto& [number, request] : in_flight_) {
        out_ += ws_->encode_text(encode_tool_request(request.frame));
        ++request.sends;
      }
    } else {
      session_opened opened{false, {}};
      for (const auto& [room, nickname] : rooms_) opened.rejoining.push_back(room);
      events_.push_back(std::move(opened));
      // A send retried in a new session could be delivered twice, so it fails instead.
      fail_in_flight(call_failure::session_reset);
      // Room seqs outlive a session; direct seqs count per membership and start again at 1.
      last_direct_seq_.clear();
      rejoin_tries_.clear();
      rejoin_base_.clear();
      for (const auto& [room, nickname] : rooms_) send_rejoin(room, nickname);
    }
    for (auto& call : std::exchange(waiting_, {})) send_request(std::move(call.args), call.id);
  }

  void on_server_frame(hello_err_frame& err, time) {
    const bool refused_resume = session_ && (err.code == to_string(error_code::unknown_session) ||
                                             err.code == to_string(error_code::bad_reconnect_token) ||
                                             err.code == to_string(error_code::replay_buffer_overflow));
    // The server closes the connection next, with the code that goes with the error; the
    // connection ends with its close frame (or the handshake deadline, if none comes).
    if (refused_resume) {
      events_.push_back(resume_refused{err.code});
      session_.reset();
      refusal_ = "resume refused";
      retry_now_ = true;  // a fresh hello right away, not after a backoff
      return;
    }
    last_hello_error_ = err;
    events_.push_back(hello_refused{err.code, err.message});
    refusal_ = "hello refused";
  }

  void on_server_frame(tool_ok_frame& ok, time) {
    auto it = in_flight_.find(request_number(ok.request_id));
    if (it == in_flight_.end()) return;
    in_flight_request request = std::move(it->second);
    in_flight_.erase(it);
    if (request.call) attempts_ = 0;  // the server answers us: the connection is good
    std::optional<std::string> nickname;
    if (auto n = ok.result.find("nickname"); n != ok.result.end() && n->is_string()) nickname = n->get<std::string>();
    if (!request.call) {
      if (nickname) rooms_[request.rejoin_room] = *nickname;
      events_.push_back(room_rejoined{request.rejoin_room, rooms_[request.rejoin_room]});
      return;
    }
    if (const auto* join = std::get_if<join_room_args>(&request.frame.args)) {
      if (nickname) rooms_[join->room] = *nickname;
      last_seq_.try_emplace(join->room, 0);
      last_direct_seq_.try_emplace(join->room, 0);
    } else if (const auto* create = std::get_if<create_room_args>(&request.frame.args)) {
      if (nickname) rooms_[create->room] = *nickname;
      last_seq_.try_emplace(create->room, 0);
      last_direct_seq_[create->room] = 0;
    } else if (const auto* leave = std::get_if<leave_room_args>(&request.frame.args)) {
      forget_room(leave->room);
    }
    events_.push_back(call_succeeded{*request.call, std::move(ok.result)});
  }

  void on_server_frame(tool_err_frame& err, time) {
    auto it = in_flight_.find(request_number(err.request_id));
    if (it == in_flight_.end()) return;
    in_flight_request request = std::move(it->second);
    in_flight_.erase(it);
    if (!request.call) return rejoin_with_next_nickname(request.rejoin_room, err);
    attempts_ = 0;  // the server answers us: the connection is good
    if (err.code == to_string(error_code::not_in_room))
      if (const auto* leave = std::get_if<leave_room_args>(&request.frame.args)) forget_room(leave->room);
    events_.push_back(call_failed{*request.call, call_failure::refused, err.code, err.message, err.details});
  }

  // The old nickname was taken while we were away: name-2, name-3, ... then any.
  void rejoin_with_next_nickname(const std::string& room, const tool_err_frame& err) {
    if (err.code != to_string(error_code::nickname_taken)) {
      events_.push_back(rejoin_failed{room, err.code, err.message});
      forget_room(room);
      return;
    }
    const std::string& base = rejoin_base_.try_emplace(room, rooms_[room]).first->second;
    int& tries = rejoin_tries_[room];
    std::optional<std::string> next;
    if (++tries < 10) {
      std::string candidate = base + "-" + std::to_string(tries + 1);
      if (validate_nickname(candidate)) next = candidate;
    }
    if (next) rooms_[room] = *next;
    send_rejoin(room, next);
  }

  void on_server_frame(room_message_frame& m, time) {
    // Replays after a resume may repeat what we already passed on: seqs only grow per room,
    // and per room's direct stream (a message with `to`) apart from them.
    auto& last = m.to ? last_direct_seq_[m.room] : last_seq_[m.room];
    if (m.seq <= last) return;
    last = m.seq;
    events_.push_back(std::move(m));
  }

  void on_server_frame(system_error_frame& e, time) { events_.push_back(server_error{e.code, e.message}); }

  // Kicked or banned: the room is no longer ours, so a new session must not rejoin it.
  // Approved (a knock let in): it is ours like a join's, under the nickname the event names.
  void on_server_frame(room_event_frame& e, time) {
    if (e.kind == "kicked" || e.kind == "banned") {
      forget_room(e.room);
      last_seq_.erase(e.room);
    } else if (e.kind == "approved") {
      auto nickname = e.fields.find("nickname");
      rooms_[e.room] = nickname != e.fields.end() && nickname->is_string() ? nickname->get<std::string>() : std::string();
      last_seq_.try_emplace(e.room, 0);
      last_direct_seq_[e.room] = 0;  // a new membership: its direct stream starts at 1
    }
    events_.push_back(std::move(e));
  }

  // Out of the room: its direct stream ends with the membership (a rejoin starts one anew).
  void forget_room(const std::string& room) {
    rooms_.erase(room);
    last_direct_seq_.erase(room);
  }

  // ---- requests ------------------------------------------------------------------

  // Request ids on the wire are "c" and a number that only grows, so in_flight_, keyed by
  // the number, resends in the order the requests were first sent.
  static std::uint64_t request_number(std::string_view request_id) {
    if (request_id.size() < 2 || request_id.size() > 21 || request_id.front() != 'c') return 0;
    std::uint64_t n = 0;
    for (char c : request_id.substr(1)) {
      if (c < '0' || c > '9') return 0;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
  }

  void send_frame(tool_args args, std::optional<call_id> call, bool retry_on_resume, std::string rejoin_room = {}) {
    const std::uint64_t number = ++last_request_;
    // Appended, not "c" + std::string&&: that form trips GCC 12's -Wstringop-overflow false positive at -O3.
    std::string request_id = "c";
    request_id += std::to_string(number);
    tool_request frame{std::move(request_id), std::move(args)};
    out_ += ws_->encode_text(encode_tool_request(frame));
    in_flight_.emplace(number, in_flight_request{call, std::move(frame), retry_on_resume, std::move(rejoin_room)});
  }

  // A leave sent twice would fail the second time; everything else is safe to repeat.
  void send_request(tool_args args, call_id id) {
    const bool retry = !std::holds_alternative<leave_room_args>(args);
    send_frame(std::move(args), id, retry);
  }

  // A join for a new session. Joining twice is harmless, so it is sent again after a resume.
  void send_rejoin(const std::string& room, std::optional<std::string> nickname) {
    if (nickname && nickname->empty()) nickname.reset();  // a snapshot that did not know it
    send_frame(join_room_args{room, std::move(nickname)}, std::nullopt, true, room);
  }

  void fail(call_id id, call_failure why, std::string code = {}, std::string message = {}) {
    events_.push_back(call_failed{id, why, std::move(code), std::move(message), nullptr});
  }

  void fail_unreachable(call_id id) {
    if (last_hello_error_) fail(id, call_failure::unreachable, last_hello_error_->code, last_hello_error_->message);
    else fail(id, call_failure::unreachable, {}, last_transport_failure_);
  }

  void fail_in_flight(call_failure why) {
    for (auto& [number, request] : std::exchange(in_flight_, {}))
      if (request.call) fail(*request.call, why);
  }

  void fail_waiting_calls() {
    for (const auto& call : std::exchange(waiting_, {})) fail_unreachable(call.id);
  }

  client_config config_;
  random_type random_;
  stage stage_ = stage::idle;
  bool transport_ = false;        // dialing, connected, or asked to close and not yet closed
  bool close_transport_ = false;  // the next poll tells the caller to close it
  bool closing_ = false;          // close() was called
  bool finished_ = false;
  std::optional<time> retry_at_;  // none: dial at the first poll
  time stage_deadline_{};
  time last_heard_{};
  time close_deadline_{};
  time healthy_at_{};  // while open: when the backoff count starts again
  int attempts_ = 0;
  http_response_parser http_;
  std::optional<websocket> ws_;
  std::string ws_key_;
  std::string out_;
  std::vector<client_event> events_;
  std::optional<hello_ok_frame> session_;
  std::optional<hello_err_frame> last_hello_error_;
  std::string last_transport_failure_;  // the transport's last account of a failure, until a session opens
  std::string refusal_;     // hello.err came: why the connection ends, once the server closes it
  bool retry_now_ = false;  // ... and that the next dial need not wait (a refused resume)
  std::map<std::string, std::string, std::less<>> rooms_;        // room → our nickname there
  std::map<std::string, std::uint64_t, std::less<>> last_seq_;   // room → highest seq passed on
  std::map<std::string, std::uint64_t, std::less<>> last_direct_seq_;  // room → highest direct seq passed on
  std::map<std::string, int> rejoin_tries_;                      // room → nicknames tried since the new session
  std::map<std::string, std::string> rejoin_base_;               // room → the nickname it had before
  std::map<std::uint64_t, in_flight_request> in_flight_;        // by request number
  std::vector<waiting_call> waiting_;                            // calls made while a connection is under way
  call_id last_call_ = 0;
  std::uint64_t last_request_ = 0;
};

using client = basic_client<default_policy>;

}  // namespace parley
