// SPDX-License-Identifier: MIT
// The agent's bridge without I/O: MCP lines from the host on one side, a Parley WebSocket session on the other.
//
// tools/mcp.cpp feeds it stdin bytes, socket bytes, connection events and `now`;
// it answers with stdout lines, socket bytes, when to dial, and when to stop. It owns
// the reconnect policy (backoff with jitter, resume, fresh session with rejoin and a
// notice per room), message de-duplication, the read_messages buffer, and the rule
// that a message is acked only after its notification reached stdout.
#pragma once

#include "clock.hpp"
#include "error.hpp"
#include "http.hpp"
#include "mcp_server.hpp"
#include "mcp_tools.hpp"
#include "random_source.hpp"
#include "uuid.hpp"
#include "version.hpp"
#include "websocket.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley {

struct bridge_config {
  std::string host = "127.0.0.1:7539";  // the Host header: host[:port]
  std::string path = "/";
  std::optional<std::string> token;     // sent as hello.authToken
  std::string client_version = std::string(version_string);
  milliseconds backoff_min = std::chrono::milliseconds(100);
  milliseconds backoff_max = std::chrono::seconds(10);
  milliseconds connect_timeout = std::chrono::seconds(10);  // dial to hello.ok
  milliseconds silence_timeout = std::chrono::seconds(90);  // the server pings every 30 s
  milliseconds close_timeout = std::chrono::milliseconds(500);  // stdin EOF: wait this long for the close to go out
  std::size_t read_buffer_messages = 1000;  // kept for read_messages; older ones are dropped and flagged
  mcp::server_options mcp{};
};

class bridge {
 public:
  bridge(bridge_config config, random_source random, time_point now)
      : config_(std::move(config)), random_(std::move(random)), mcp_(config_.mcp), retry_at_(now) {}

  // ---- the MCP side (stdin/stdout) ----------------------------------------

  void receive_stdin(std::string_view bytes, time_point now) {
    mcp_.receive_bytes(bytes);
    serve_calls(now);
  }

  // stdin EOF (or SIGTERM): end the session cleanly with a 1000 close, then finish.
  void shutdown(time_point now) {
    mcp_.receive_eof();
    serve_calls(now);
    if (shutting_down_) return;
    shutting_down_ = true;
    shutdown_deadline_ = now + config_.close_timeout;
    // The server reads the close frame before our FIN, and ends the session at once.
    if (stage_ == stage::open) socket_out_ += ws_->encode_close(1000, "agent left");
    if (stage_ == stage::idle) finished_ = true;
    else close_socket_ = true;
  }

  // Lines for stdout, each without its newline. Acks for the messages among them are
  // sent once stdout_written() says they are out.
  [[nodiscard]] std::vector<std::string> take_stdout() {
    auto lines = mcp_.take_output();
    if (mcp_.ready()) {
      acks_after_write_.insert(acks_after_write_.end(), acks_unwritten_.begin(), acks_unwritten_.end());
      acks_unwritten_.clear();
    }
    return lines;
  }

  void stdout_written() {
    for (const auto& [room, seq] : acks_after_write_)
      if (stage_ == stage::open) socket_out_ += ws_->encode_text(encode_ack({room, seq}));
    acks_after_write_.clear();
  }

  // ---- the transport side (TCP or TLS to the server) -------------------------

  // True when the caller should dial now (no connection, and the backoff has passed).
  [[nodiscard]] bool wants_connection(time_point now) const {
    return stage_ == stage::idle && !shutting_down_ && now >= retry_at_;
  }

  void dialing(time_point now) {
    close_socket_ = false;  // a close asked for the previous connection is not this one's
    stage_ = stage::dialing;
    stage_deadline_ = now + config_.connect_timeout;
  }

  // The TCP (and TLS) connection is up: send the upgrade request.
  void connected(time_point now) {
    ws_key_ = make_websocket_key(random_);
    auto request = build_upgrade_request(config_.host, config_.path, ws_key_);
    if (!request) {
      log(mcp::log_level::error, "cannot build an upgrade request for host " + config_.host);
      return disconnected(now);
    }
    http_ = http_response_parser{};
    ws_.emplace(role::client, random_);
    socket_out_ += *request;
    stage_ = stage::upgrading;
    last_heard_ = now;
  }

  void receive_socket(std::string_view bytes, time_point now) {
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
    serve_calls(now);
  }

  // The connection ended or could not be made; retry after a backoff.
  void disconnected(time_point now) {
    if (shutting_down_) finished_ = true;
    if (stage_ == stage::idle) return;
    socket_out_.clear();  // nowhere to write it
    go_idle(now);
    fail_waiting_calls();
  }

  [[nodiscard]] std::string take_socket_output() { return std::exchange(socket_out_, {}); }
  // True once per connection the bridge wants closed, after its last output is written.
  [[nodiscard]] bool take_close_request() noexcept { return std::exchange(close_socket_, false); }

  void on_timer(time_point now) {
    if (shutting_down_ && now >= shutdown_deadline_) finished_ = true;
    if ((stage_ == stage::dialing || stage_ == stage::upgrading || stage_ == stage::hello_sent) && now >= stage_deadline_)
      drop(now, "the server did not complete the handshake in time");
    if (stage_ == stage::open && now - last_heard_ >= config_.silence_timeout) drop(now, "the server went silent");
    for (auto it = waiting_reads_.begin(); it != waiting_reads_.end();) {
      if (now >= it->deadline) {
        complete_read(it->id, it->room, it->limit);
        it = waiting_reads_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  // Schedules the next dial with exponential backoff and full jitter (100 ms .. 10 s).
  void go_idle(time_point now) {
    const bool was_open = stage_ == stage::open;
    stage_ = stage::idle;
    ws_.reset();
    if (shutting_down_) {
      finished_ = true;
      return;
    }
    if (was_open) log(mcp::log_level::warning, "lost the connection to the parley server; reconnecting");
    const auto base = std::min<std::int64_t>(config_.backoff_max.count(),
                                             config_.backoff_min.count() << std::min(attempts_, 16));
    ++attempts_;
    // Full jitter over the upper half, so many bridges restarting together spread out.
    const auto delay = base / 2 + static_cast<std::int64_t>(random_below(random_, static_cast<std::uint64_t>(base / 2 + 1)));
    retry_at_ = now + milliseconds(delay);
    // Calls waiting on this connection: replayable ones wait for the next; others fail now.
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (it->second.retry_on_reconnect) {
        ++it;
      } else {
        fail(it->second.mcp_id, "The connection to the parley server dropped before it answered; try again.");
        it = in_flight_.erase(it);
      }
    }
  }

 public:
  [[nodiscard]] std::optional<time_point> next_deadline() const {
    std::optional<time_point> next;
    auto consider = [&](time_point t) {
      if (!next || t < *next) next = t;
    };
    if (shutting_down_ && !finished_) consider(shutdown_deadline_);
    if (stage_ == stage::idle && !shutting_down_) consider(retry_at_);
    if (stage_ == stage::dialing || stage_ == stage::upgrading || stage_ == stage::hello_sent) consider(stage_deadline_);
    if (stage_ == stage::open) consider(last_heard_ + config_.silence_timeout);
    for (const auto& w : waiting_reads_) consider(w.deadline);
    return next;
  }

  [[nodiscard]] bool finished() const noexcept { return finished_; }
  [[nodiscard]] bool session_open() const noexcept { return stage_ == stage::open; }
  [[nodiscard]] const mcp::mcp_server& mcp() const noexcept { return mcp_; }

 private:
  enum class stage { idle, dialing, upgrading, hello_sent, open };

  struct in_flight_call {
    nlohmann::json mcp_id;
    tool_request frame;
    bool retry_on_reconnect;  // sends carry a clientMsgId, so a retry after a resume is never delivered twice
  };

  struct waiting_read {
    nlohmann::json id;
    std::optional<std::string> room;
    int limit;
    time_point deadline;
  };

  void log(mcp::log_level level, std::string message) { mcp_.log(level, std::move(message)); }

  void fail(const nlohmann::json& id, std::string sentence, nlohmann::json details = nullptr) {
    mcp_.fail_tool_call(id, std::move(sentence), std::move(details));
  }

  // We end the connection: what is queued (a close frame, say) is still written, then
  // the caller closes the socket.
  void drop(time_point now, const std::string& why, bool retry_now = false) {
    log(mcp::log_level::warning, "parley connection: " + why);
    close_socket_ = true;
    go_idle(now);
    if (retry_now) retry_at_ = now;  // calls waiting for a connection wait for this next one
    else fail_waiting_calls();
  }

  void send_hello() {
    hello_frame hello{config_.client_version, config_.token, std::nullopt};
    if (session_) {
      resume_block resume{session_->session_id, session_->reconnect_token, {}};
      for (const auto& [room, nickname] : joined_) resume.last_acked_seq_by_room[room] = last_seq_[room];
      hello.resume = std::move(resume);
    }
    socket_out_ += ws_->encode_text(encode_hello(hello));
  }

  // ---- WebSocket events ------------------------------------------------------

  void on_event(ws_text& e, time_point now) { on_frame(e.data, now); }
  void on_event(ws_binary& e, time_point now) { on_frame(e.data, now); }
  void on_event(ws_ping& e, time_point) { socket_out_ += ws_->encode_pong(e.payload); }
  void on_event(ws_pong&, time_point) {}
  void on_event(ws_close& e, time_point now) {
    if (!ws_->close_sent()) socket_out_ += ws_->encode_close(e.code);
    if (shutting_down_) finished_ = true;
    drop(now, "the server closed the connection (" + std::to_string(e.code) + (e.reason.empty() ? "" : " " + e.reason) + ")");
  }
  void on_event(ws_failure& e, time_point now) {
    socket_out_ += ws_->encode_close(e.close_code, e.reason);
    drop(now, "protocol error from the server: " + e.reason);
  }

  void on_frame(std::string_view text, time_point now) {
    auto frame = decode_server_frame(text);
    if (!frame) {
      log(mcp::log_level::warning, "ignored a frame from the server: " + frame.error().message);
      return;
    }
    std::visit([&](auto& f) { on_server_frame(f, now); }, *frame);
  }

  void on_server_frame(hello_ok_frame& ok, time_point now) {
    const bool resumed = session_ && session_->session_id == ok.session_id;
    session_ = ok;
    stage_ = stage::open;
    attempts_ = 0;
    last_heard_ = now;
    if (resumed) {
      for (auto& [rid, call] : in_flight_) socket_out_ += ws_->encode_text(encode_tool_request(call.frame));
      log(mcp::log_level::info, "resumed the parley session");
      serve_waiting_calls(now);
      return;
    }
    log(mcp::log_level::info, "connected to parley");
    // A new session: the old one's rooms are rejoined under the same nicknames where
    // free, and the agent hears that messages may have been missed in each.
    for (auto& [rid, call] : in_flight_)  // a send retried in a new session could be delivered twice
      fail(call.mcp_id, "The connection to the parley server was reset before it answered; the message may or may not "
                        "have been delivered. Check with the room before resending.");
    in_flight_.clear();
    rejoin_tries_.clear();
    rejoin_base_.clear();
    for (const auto& [room, nickname] : joined_) {
      rejoining_[request_for(join_room_args{room, nickname})] = room;
      mcp_.push_channel("Reconnected to parley with a new session; messages sent to " + room +
                            " while this agent was disconnected may have been missed.",
                        {{"room", room}, {"event", "reconnected"}});
    }
    serve_waiting_calls(now);
  }

  void serve_waiting_calls(time_point now) {
    for (auto& call : std::exchange(waiting_for_connection_, {})) serve(std::move(call), now);
  }

  void on_server_frame(hello_err_frame& err, time_point now) {
    const bool resume_refused = session_ && (err.code == to_string(error_code::unknown_session) ||
                                             err.code == to_string(error_code::bad_reconnect_token) ||
                                             err.code == to_string(error_code::replay_buffer_overflow));
    if (resume_refused) {
      log(mcp::log_level::warning, "the server could not resume the session (" + err.code + "); starting a new one");
      session_.reset();
      drop(now, "resume refused", /*retry_now=*/true);  // a fresh hello right away, not after a backoff
      return;
    }
    last_hello_error_ = err.code + ": " + err.message;
    log(mcp::log_level::error, "the parley server refused the connection: " + last_hello_error_);
    drop(now, "hello refused");
  }

  void on_server_frame(tool_ok_frame& ok, time_point now) {
    if (auto r = rejoining_.find(ok.request_id); r != rejoining_.end()) {
      if (ok.result.contains("nickname") && ok.result["nickname"].is_string()) joined_[r->second] = ok.result["nickname"];
      rejoining_.erase(r);
      return;
    }
    auto it = in_flight_.find(ok.request_id);
    if (it == in_flight_.end()) return;
    in_flight_call call = std::move(it->second);
    in_flight_.erase(it);
    if (const auto* join = std::get_if<join_room_args>(&call.frame.args)) {
      if (ok.result.contains("nickname") && ok.result["nickname"].is_string()) joined_[join->room] = ok.result["nickname"];
      last_seq_.try_emplace(join->room, 0);
    } else if (const auto* leave = std::get_if<leave_room_args>(&call.frame.args)) {
      joined_.erase(leave->room);
    }
    (void)now;
    mcp_.complete_tool_call(call.mcp_id, std::move(ok.result));
  }

  void on_server_frame(tool_err_frame& err, time_point) {
    if (auto r = rejoining_.find(err.request_id); r != rejoining_.end()) {
      rejoin_with_next_nickname(r->second, err);
      rejoining_.erase(r);
      return;
    }
    auto it = in_flight_.find(err.request_id);
    if (it == in_flight_.end()) return;
    in_flight_call call = std::move(it->second);
    in_flight_.erase(it);
    if (err.code == to_string(error_code::not_in_room))
      if (const auto* leave = std::get_if<leave_room_args>(&call.frame.args)) joined_.erase(leave->room);
    nlohmann::json details = {{"code", err.code}};
    if (err.details.is_object())
      for (auto d = err.details.begin(); d != err.details.end(); ++d) details[d.key()] = *d;
    fail(call.mcp_id, sentence_for(err), std::move(details));
  }

  // The old nickname was taken while we were away: `name-2`, `name-3`, ... then any.
  void rejoin_with_next_nickname(const std::string& room, const tool_err_frame& err) {
    if (err.code != to_string(error_code::nickname_taken)) {
      log(mcp::log_level::error, "could not rejoin " + room + ": " + err.message);
      joined_.erase(room);
      return;
    }
    const std::string& base = rejoin_base_.try_emplace(room, joined_[room]).first->second;
    int& tries = rejoin_tries_[room];
    std::optional<std::string> next;
    if (++tries < 10) {
      std::string candidate = base + "-" + std::to_string(tries + 1);
      if (validate_nickname(candidate)) next = candidate;
    }
    if (next) joined_[room] = *next;
    rejoining_[request_for(join_room_args{room, next})] = room;
  }

  static std::string sentence_for(const tool_err_frame& err) {
    if (err.code == to_string(error_code::rate_limited)) {
      const auto wait = err.details.is_object() ? err.details.value("retryAfterMs", 0) : 0;
      return "Rate limited: wait " + std::to_string(wait) + " ms before sending again.";
    }
    if (err.code == to_string(error_code::nickname_taken))
      return err.message + " (omit nickname to get a free adjective-animal one).";
    if (err.code == to_string(error_code::not_in_room)) return err.message + ".";
    return err.message;
  }

  void on_server_frame(room_message_frame& m, time_point now) {
    // Replays after a resume may repeat what we already passed on: seqs only grow per room.
    auto& last = last_seq_[m.room];
    if (m.seq <= last) return;
    last = m.seq;
    mcp_.push_channel(m.body, {{"room", m.room},
                               {"from_nickname", m.from_nickname},
                               {"seq", std::to_string(m.seq)},
                               {"message_id", m.message_id},
                               {"sent_at", m.sent_at}});
    acks_unwritten_.emplace_back(m.room, m.seq);
    buffer_.push_back(std::move(m));
    if (buffer_.size() > config_.read_buffer_messages) {
      buffer_.pop_front();
      dropped_since_read_ = true;
    }
    wake_reads(now);
  }

  void on_server_frame(system_error_frame& e, time_point) {
    log(mcp::log_level::warning, "parley server: " + e.code + ": " + e.message);
    mcp_.push_channel(e.message, {{"code", e.code}});
  }

  // ---- tool calls --------------------------------------------------------------

  std::string request_for(tool_args args) {
    const std::string id = "b" + std::to_string(++last_request_);
    tool_request frame{id, std::move(args)};
    if (stage_ == stage::open) socket_out_ += ws_->encode_text(encode_tool_request(frame));
    return id;
  }

  void serve_calls(time_point now) {
    while (auto call = mcp_.next_tool_call()) serve(std::move(*call), now);
  }

  void serve(mcp::tool_call call, time_point now) {
    if (auto* read = std::get_if<mcp::read_messages_request>(&call.request)) {
      if (read->wait_ms > 0 && !has_messages(read->room))
        waiting_reads_.push_back({call.id, read->room, read->limit, now + milliseconds(read->wait_ms)});
      else
        complete_read(call.id, read->room, read->limit);
      return;
    }
    if (stage_ != stage::open) {
      // A connection attempt under way decides the call; with none, it fails at once.
      if (stage_ == stage::idle) fail_unreachable(call.id);
      else waiting_for_connection_.push_back(std::move(call));
      return;
    }
    tool_args args = std::visit(
        [&](auto& r) -> tool_args {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, mcp::join_room_request>) return join_room_args{r.room, r.nickname};
          else if constexpr (std::is_same_v<T, mcp::leave_room_request>) return leave_room_args{r.room};
          else if constexpr (std::is_same_v<T, mcp::list_rooms_request>) return list_rooms_args{};
          else if constexpr (std::is_same_v<T, mcp::send_message_request>)
            return send_message_args{r.room, r.body, uuid_key()};
          else return who_is_here_args{std::get<mcp::who_is_here_request>(call.request).room};
        },
        call.request);
    const bool retry = std::holds_alternative<send_message_args>(args) || std::holds_alternative<list_rooms_args>(args) ||
                       std::holds_alternative<who_is_here_args>(args) || std::holds_alternative<join_room_args>(args);
    const std::string id = "b" + std::to_string(++last_request_);
    tool_request frame{id, std::move(args)};
    socket_out_ += ws_->encode_text(encode_tool_request(frame));
    in_flight_.emplace(id, in_flight_call{std::move(call.id), std::move(frame), retry});
  }

  void fail_unreachable(const nlohmann::json& id) {
    std::string why = "The parley server is unreachable; retrying in the background. Try again shortly.";
    if (!last_hello_error_.empty()) why = "The parley server refused this agent (" + last_hello_error_ + "); retrying.";
    fail(id, why, {{"code", "ServerUnreachableError"}});
  }

  void fail_waiting_calls() {
    for (const auto& call : waiting_for_connection_) fail_unreachable(call.id);
    waiting_for_connection_.clear();
  }

  // Each send_message call gets its own key: a retry after a resume is deduplicated by the server.
  std::string uuid_key() { return random_token(random_, 16); }

  bool has_messages(const std::optional<std::string>& room) const {
    if (!room) return !buffer_.empty();
    return std::any_of(buffer_.begin(), buffer_.end(), [&](const room_message_frame& m) { return m.room == *room; });
  }

  void wake_reads(time_point) {
    for (auto it = waiting_reads_.begin(); it != waiting_reads_.end();) {
      if (has_messages(it->room)) {
        complete_read(it->id, it->room, it->limit);
        it = waiting_reads_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void complete_read(const nlohmann::json& id, const std::optional<std::string>& room, int limit) {
    nlohmann::json messages = nlohmann::json::array();
    for (auto it = buffer_.begin(); it != buffer_.end() && static_cast<int>(messages.size()) < limit;) {
      if (room && it->room != *room) {
        ++it;
        continue;
      }
      messages.push_back({{"room", it->room},
                          {"fromNickname", it->from_nickname},
                          {"body", it->body},
                          {"seq", it->seq},
                          {"messageId", it->message_id},
                          {"sentAt", it->sent_at}});
      it = buffer_.erase(it);
    }
    const bool dropped = dropped_since_read_;
    dropped_since_read_ = false;
    mcp_.complete_tool_call(id, {{"messages", std::move(messages)}, {"dropped", dropped}});
  }

  bridge_config config_;
  random_source random_;
  mcp::mcp_server mcp_;
  stage stage_ = stage::idle;
  time_point retry_at_;
  time_point stage_deadline_{};
  time_point last_heard_{};
  time_point shutdown_deadline_{};
  int attempts_ = 0;
  http_response_parser http_;
  std::optional<websocket> ws_;
  std::string ws_key_;
  std::string socket_out_;
  bool close_socket_ = false;
  bool shutting_down_ = false;
  bool finished_ = false;
  std::optional<hello_ok_frame> session_;
  std::string last_hello_error_;
  std::map<std::string, std::string> joined_;           // room → our nickname, for rejoining
  std::map<std::string, std::uint64_t> last_seq_;       // room → highest seq passed on
  std::map<std::string, int> rejoin_tries_;       // room → nicknames tried since the last fresh session
  std::map<std::string, std::string> rejoin_base_;  // room → the nickname we had before it
  std::unordered_map<std::string, in_flight_call> in_flight_;
  std::unordered_map<std::string, std::string> rejoining_;  // request id → room
  std::vector<std::pair<std::string, std::uint64_t>> acks_unwritten_;
  std::vector<std::pair<std::string, std::uint64_t>> acks_after_write_;
  std::deque<room_message_frame> buffer_;
  bool dropped_since_read_ = false;
  std::vector<waiting_read> waiting_reads_;
  std::vector<mcp::tool_call> waiting_for_connection_;  // calls made while a connection attempt is under way
  std::uint64_t last_request_ = 0;
};

}  // namespace parley
