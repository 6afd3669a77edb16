// SPDX-License-Identifier: MIT
// The agent's bridge without I/O: MCP lines from the host on one side, a parley::client session on the other.
//
// tools/bridge_loop.cpp feeds it stdin bytes, socket bytes, connection events and `now`, and
// after each asks poll(now) what to do: stdout lines, socket bytes, dial, close, when to
// poll again, stop. The session itself (reconnects, resume, rejoin, de-duplication,
// calls in flight) is basic_client's; the bridge maps tool calls onto it, pushes room
// messages, direct messages and room events (knocks, approvals, kicks...) as channel
// notifications, keeps them for read_messages, tells the agent when
// messages may have been missed, and acks a message only after the stdout line carrying
// its notification is written: poll() hands the lines out as a numbered batch, and only
// stdout_written(that batch) releases their acks.
#pragma once

#include "client.hpp"
#include "clock.hpp"
#include "mcp_server.hpp"
#include "mcp_tools.hpp"
#include "policy.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley {

struct bridge_config {
  client_config client{};
  std::size_t read_buffer_messages = 1000;  // kept for read_messages; older ones are dropped and flagged
  mcp::server_options mcp{};
  // Backpressure: while this much stdout is produced and not confirmed written, no more
  // stdin is served and wants_input() is false, so a host that writes requests and never
  // reads the answers cannot grow the bridge without limit.
  std::size_t max_unwritten_stdout_bytes = 1024 * 1024;
};

// Names a batch of stdout lines handed out by poll(); batches are numbered in the order
// they must be written. `none` is the id of an empty batch.
enum class stdout_batch : std::uint64_t { none = 0 };

// Everything the loop must do after an input, in this order: write stdout_lines (each
// followed by '\n') and then call stdout_written(batch); write `send` to the transport,
// close it if `close` (and call disconnected() once it is closed), dial if `dial` (and
// call connected() or disconnected()). Stop when `finished`. Poll again at `deadline` at
// the latest, after every input, and after stdout_written().
template <class Time>
struct bridge_actions {
  std::vector<std::string> stdout_lines;
  stdout_batch batch = stdout_batch::none;
  std::string send;
  bool close = false;
  bool dial = false;
  bool finished = false;
  std::optional<Time> deadline;
};

template <class Policy>
class basic_bridge {
 public:
  using policy_type = Policy;
  using client_type = basic_client<Policy>;
  using time = typename client_type::time;
  using random_type = typename Policy::random;
  using actions = bridge_actions<time>;

  basic_bridge(bridge_config config, random_type random)
      : config_(std::move(config)), client_(config_.client, std::move(random)), mcp_(config_.mcp) {}

  // ---- the MCP side (stdin/stdout) ----------------------------------------

  // Bytes are kept and served a line at a time while stdout is under its bound; the loop
  // should read no more while wants_input() is false.
  void receive_stdin(std::string_view bytes, time now) {
    stdin_.append(bytes.data(), bytes.size());
    serve_stdin(now, false);
  }

  // Whether the loop should read stdin: everything it gave is served and stdout is not
  // backed up. Reading only while this holds bounds the memory a host that does not read
  // stdout can cost us to one read of stdin plus max_unwritten_stdout_bytes (plus the
  // answers to the last line served).
  [[nodiscard]] bool wants_input() const noexcept {
    return !client_.finished() && stdin_pos_ == stdin_.size() && !stdout_backed_up();
  }

  // Produced for stdout and not yet confirmed written.
  [[nodiscard]] std::size_t unwritten_stdout_bytes() const noexcept { return unwritten_bytes_ + output_bytes_; }

  // stdin EOF, SIGTERM or SIGINT: serve what is left of stdin (at most one read, so the
  // bound does not apply), then end the session with a 1000 close, which the server acts
  // on at once.
  void shutdown(time now) {
    serve_stdin(now, true);
    mcp_.receive_eof();
    serve_calls(now);
    client_.close(now);
  }

  // The lines of `batch`, and every batch before it, are written: their messages are acked.
  void stdout_written(stdout_batch batch) {
    while (!unwritten_.empty() && unwritten_.front().batch <= batch) {
      for (const auto& a : unwritten_.front().acks) client_.ack(a.room, a.seq, a.direct);
      unwritten_bytes_ -= unwritten_.front().bytes;
      unwritten_.pop_front();
    }
  }

  // ---- the transport side (TCP or TLS to the server) -------------------------

  void connected(time now) { client_.connected(now); }
  void receive_socket(std::string_view bytes, time now) { client_.receive(bytes, now); }
  void disconnected(time now, std::string why = {}) { client_.disconnected(now, std::move(why)); }

  // ---- what to do ------------------------------------------------------------------

  [[nodiscard]] actions poll(time now) {
    serve_stdin(now, false);  // stdout may have drained since
    auto c = client_.poll(now);
    for (auto& event : c.events) std::visit([&](auto& e) { on_client_event(e, now); }, event);
    for (auto it = waiting_reads_.begin(); it != waiting_reads_.end();) {
      if (now >= it->deadline) {
        complete_read(it->id, it->room, it->limit);
        it = waiting_reads_.erase(it);
      } else {
        ++it;
      }
    }
    actions a;
    take_output();
    a.stdout_lines = std::exchange(output_, {});
    if (!a.stdout_lines.empty()) {
      a.batch = stdout_batch{++last_batch_};
      unwritten_batch written{a.batch, std::exchange(output_bytes_, 0), {}};
      // Held pushes are flushed into the output when the host sends notifications/initialized,
      // so once the MCP session is ready every pending ack's line is in this batch; before,
      // none is.
      if (mcp_.ready()) written.acks = std::exchange(acks_pending_, {});
      unwritten_bytes_ += written.bytes;
      unwritten_.push_back(std::move(written));
    }
    a.send = std::move(c.send);
    a.close = c.close;
    a.dial = c.dial;
    a.finished = c.finished;
    a.deadline = c.deadline;
    for (const auto& w : waiting_reads_)
      if (!a.deadline || w.deadline < *a.deadline) a.deadline = w.deadline;
    return a;
  }

  [[nodiscard]] bool finished() const noexcept { return client_.finished(); }
  [[nodiscard]] bool session_open() const noexcept { return client_.session_open(); }
  [[nodiscard]] const client_type& client() const noexcept { return client_; }
  [[nodiscard]] const mcp::mcp_server& mcp() const noexcept { return mcp_; }

 private:
  struct waiting_read {
    nlohmann::json id;
    std::optional<std::string> room;
    int limit;
    time deadline;
  };

  struct ack {
    std::string room;
    std::uint64_t seq;
    bool direct;  // in the room's direct stream
  };

  // What read_messages hands out: a message, a direct message or an event, as its item.
  struct buffered {
    std::string room;
    nlohmann::json item;
  };

  struct unwritten_batch {
    stdout_batch batch;
    std::size_t bytes;  // its lines and their newlines
    std::vector<ack> acks;
  };

  [[nodiscard]] bool stdout_backed_up() const noexcept {
    return unwritten_stdout_bytes() >= config_.max_unwritten_stdout_bytes;
  }

  // Moves the MCP server's output into ours, counting it.
  void take_output() {
    for (auto& line : mcp_.take_output()) {
      output_bytes_ += line.size() + 1;
      output_.push_back(std::move(line));
    }
  }

  // Serves stdin a line at a time until it is used up or stdout is backed up (`all`:
  // regardless of stdout). A line longer than what is buffered goes to the MCP server in
  // pieces, which bounds it by itself.
  void serve_stdin(time now, bool all) {
    while (stdin_pos_ < stdin_.size()) {
      take_output();
      if (!all && stdout_backed_up()) break;
      const std::size_t newline = stdin_.find('\n', stdin_pos_);
      const std::size_t end = newline == std::string::npos ? stdin_.size() : newline + 1;
      mcp_.receive_bytes(std::string_view(stdin_).substr(stdin_pos_, end - stdin_pos_));
      stdin_pos_ = end;
      serve_calls(now);
    }
    take_output();
    if (stdin_pos_ == stdin_.size()) {
      stdin_.clear();
      stdin_pos_ = 0;
    }
  }

  void log(mcp::log_level level, std::string message) { mcp_.log(level, std::move(message)); }

  // ---- the session's events -----------------------------------------------------

  void on_client_event(session_opened& e, time) {
    if (e.resumed) return log(mcp::log_level::info, "resumed the parley session");
    log(mcp::log_level::info, "connected to parley");
    for (const auto& room : e.rejoining)
      mcp_.push_channel("Reconnected to parley with a new session; messages sent to " + room +
                            " while this agent was disconnected may have been missed.",
                        {{"room", room}, {"event", "reconnected"}});
  }

  void on_client_event(connection_closed& e, time) {
    if (!e.reason.empty()) log(mcp::log_level::warning, "parley connection: " + e.reason);
    if (e.was_open && e.reconnecting)
      log(mcp::log_level::warning, "lost the connection to the parley server; reconnecting");
  }

  void on_client_event(resume_refused& e, time) {
    log(mcp::log_level::warning, "the server could not resume the session (" + e.code + "); starting a new one");
  }

  void on_client_event(hello_refused& e, time) {
    log(mcp::log_level::error, "the parley server refused the connection: " + e.code + ": " + e.message);
  }

  void on_client_event(call_succeeded& e, time) {
    auto it = calls_.find(e.call);
    if (it == calls_.end()) return;
    mcp_.complete_tool_call(it->second, std::move(e.result));
    calls_.erase(it);
  }

  void on_client_event(call_failed& e, time) {
    auto it = calls_.find(e.call);
    if (it == calls_.end()) return;
    const nlohmann::json id = std::move(it->second);
    calls_.erase(it);
    switch (e.why) {
      case call_failure::refused: {
        nlohmann::json details = {{"code", e.code}};
        if (e.details.is_object())
          for (auto d = e.details.begin(); d != e.details.end(); ++d) details[d.key()] = *d;
        mcp_.fail_tool_call(id, sentence_for(e), std::move(details));
        return;
      }
      case call_failure::unreachable:
        if (!e.code.empty())
          mcp_.fail_tool_call(id, "The parley server refused this agent (" + e.code + ": " + e.message + "); retrying.",
                              {{"code", "ServerUnreachableError"}});
        else if (!e.message.empty())
          mcp_.fail_tool_call(id,
                              "The parley server is unreachable (" + e.message +
                                  "); retrying in the background. Try again shortly.",
                              {{"code", "ServerUnreachableError"}, {"reason", e.message}});
        else
          mcp_.fail_tool_call(id, "The parley server is unreachable; retrying in the background. Try again shortly.",
                              {{"code", "ServerUnreachableError"}});
        return;
      case call_failure::connection_lost:
        mcp_.fail_tool_call(id, "The connection to the parley server dropped before it answered; try again.");
        return;
      case call_failure::session_reset:
        mcp_.fail_tool_call(id, "The connection to the parley server was reset before it answered; the message may or "
                                "may not have been delivered. Check with the room before resending.");
        return;
      case call_failure::closed:
        mcp_.fail_tool_call(id, "parley-tools mcp is shutting down; the parley server did not answer this call.");
        return;
      case call_failure::gave_up: {
        nlohmann::json details = {{"code", "RetriesExhaustedError"}};
        if (e.details.is_object())
          for (auto d = e.details.begin(); d != e.details.end(); ++d) details[d.key()] = *d;
        mcp_.fail_tool_call(id, e.message, std::move(details));
        return;
      }
    }
  }

  static std::string sentence_for(const call_failed& err) {
    if (err.code == to_string(error_code::rate_limited)) {
      const auto wait = err.details.is_object() ? err.details.value("retryAfterMs", 0) : 0;
      return "Rate limited: wait " + std::to_string(wait) + " ms before sending again.";
    }
    if (err.code == to_string(error_code::nickname_taken))
      return err.message + " (omit nickname to get a free adjective-animal one).";
    if (err.code == to_string(error_code::not_in_room)) return err.message + ".";
    return err.message;
  }

  void on_client_event(room_message_frame& m, time) {
    nlohmann::json meta{{"room", m.room},
                        {"from_nickname", m.from_nickname},
                        {"from_kind", std::string(to_string(m.from_kind))},
                        {"seq", std::to_string(m.seq)},
                        {"message_id", m.message_id},
                        {"sent_at", m.sent_at}};
    nlohmann::json item{{"room", m.room},           {"fromNickname", m.from_nickname}, {"fromKind", to_string(m.from_kind)},
                        {"body", m.body},           {"seq", m.seq},                    {"messageId", m.message_id},
                        {"sentAt", m.sent_at}};
    if (m.to) {
      meta["direct"] = "true";
      meta["to"] = *m.to;
      item["direct"] = true;
      item["to"] = *m.to;
    }
    mcp_.push_channel(m.body, meta);
    acks_pending_.push_back({m.room, m.seq, m.to.has_value()});
    buffer(m.room, std::move(item));
  }

  // What happened to us in a room reaches the model like a message, marked by `event`:
  // the event's fields become meta in snake_case (knock_id, members_count), the only
  // shape a channel attribute may take. Events have no seq and are never acked.
  void on_client_event(room_event_frame& e, time) {
    const auto field = [&](const char* key) {
      auto it = e.fields.find(key);
      return it != e.fields.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string text;
    if (e.kind == "knock") {
      text = field("nickname") + " knocks on " + e.room + " and asks to be let in (knock_id " + field("knockId") +
             "). Ask your user whether to approve or deny, unless told otherwise.";
      if (e.fields.contains("note")) text += " Their note, written by them: " + field("note");
    } else if (e.kind == "approved") {
      text = "Your knock on " + e.room + " was approved: you are in the room as " + field("nickname") + ".";
    } else if (e.kind == "denied") {
      text = "Your knock on " + e.room + " was denied.";
    } else if (e.kind == "expired") {
      text = "Your knock on " + e.room + " expired without an answer.";
    } else if (e.kind == "kicked") {
      text = "You were removed from " + e.room + " by an owner.";
    } else if (e.kind == "banned") {
      text = "You were banned from " + e.room + " by an owner.";
    } else if (e.kind == "role") {
      text = "Your role in " + e.room + " is now " + field("role") + ".";
    } else if (e.kind == "missed") {
      auto count = e.fields.find("count");
      text = "While this agent was disconnected, " +
             (count != e.fields.end() && count->is_number_unsigned() ? std::to_string(count->get<std::uint64_t>()) + " "
                                                                       : std::string("some ")) +
             "events in " + e.room + " were lost; check who_is_here and list_rooms for where you stand.";
    } else {
      text = "Room event " + e.kind + " in " + e.room + ".";
    }
    nlohmann::json meta{{"room", e.room}, {"event", e.kind}};
    nlohmann::json item{{"room", e.room}, {"event", e.kind}, {"body", text}};
    for (const auto& [key, value] : e.fields.items()) {
      if (key == "room" || key == "event" || key == "body" || !(value.is_string() || value.is_number())) continue;
      if (key != "note") meta.emplace(snake_case(key), value);  // the note is in the text, not an attribute
      item.emplace(key, value);
    }
    mcp_.push_channel(text, meta);
    buffer(e.room, std::move(item));
  }

  // knockId → knock_id, membersCount → members_count.
  static std::string snake_case(std::string_view key) {
    std::string out;
    for (char c : key) {
      if (c >= 'A' && c <= 'Z') {
        if (!out.empty()) out += '_';
        out += static_cast<char>(c - 'A' + 'a');
      } else {
        out += c;
      }
    }
    return out;
  }

  void buffer(std::string room, nlohmann::json item) {
    buffer_.push_back({std::move(room), std::move(item)});
    if (buffer_.size() > config_.read_buffer_messages) {
      buffer_.pop_front();
      dropped_since_read_ = true;
    }
    wake_reads();
  }

  void on_client_event(room_rejoined&, time) {}

  void on_client_event(rejoin_failed& e, time) {
    log(mcp::log_level::error, "could not rejoin " + e.room + ": " + e.message);
  }

  void on_client_event(server_error& e, time) {
    log(mcp::log_level::warning, "parley server: " + e.code + ": " + e.message);
    mcp_.push_channel(e.message, {{"code", e.code}});
  }

  void on_client_event(frame_ignored& e, time) {
    log(mcp::log_level::warning, "ignored a frame from the server: " + e.reason);
  }

  // ---- tool calls --------------------------------------------------------------

  void serve_calls(time now) {
    while (auto call = mcp_.next_tool_call()) serve(std::move(*call), now);
  }

  void serve(mcp::tool_call call, time now) {
    std::visit(
        [&](auto& r) {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, mcp::read_messages_request>) {
            if (r.wait_ms > 0 && !has_messages(r.room))
              waiting_reads_.push_back({std::move(call.id), r.room, r.limit, now + milliseconds(r.wait_ms)});
            else
              complete_read(call.id, r.room, r.limit);
          } else {
            calls_.emplace(client_.call(wire_args(std::move(r))), std::move(call.id));
          }
        },
        call.request);
  }

  static tool_args wire_args(mcp::join_room_request&& r) {
    return join_room_args{std::move(r.room), std::move(r.nickname), std::move(r.invite)};
  }
  static tool_args wire_args(mcp::leave_room_request&& r) { return leave_room_args{std::move(r.room)}; }
  static tool_args wire_args(mcp::list_rooms_request&& r) { return list_rooms_args{r.limit, std::move(r.cursor)}; }
  static tool_args wire_args(mcp::send_message_request&& r) {
    return send_message_args{std::move(r.room), std::move(r.body), std::nullopt, std::move(r.to)};
  }
  static tool_args wire_args(mcp::who_is_here_request&& r) {
    return who_is_here_args{std::move(r.room), r.limit, std::move(r.cursor)};
  }
  // The tools of rooms people control take the wire's arguments as they are.
  template <class WireArgs>
  static tool_args wire_args(WireArgs&& r) {
    return tool_args(std::forward<WireArgs>(r));
  }

  bool has_messages(const std::optional<std::string>& room) const {
    if (!room) return !buffer_.empty();
    return std::any_of(buffer_.begin(), buffer_.end(), [&](const buffered& b) { return b.room == *room; });
  }

  void wake_reads() {
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
      messages.push_back(std::move(it->item));
      it = buffer_.erase(it);
    }
    const bool dropped = dropped_since_read_;
    dropped_since_read_ = false;
    mcp_.complete_tool_call(id, {{"messages", std::move(messages)}, {"dropped", dropped}});
  }

  bridge_config config_;
  client_type client_;
  mcp::mcp_server mcp_;
  std::map<call_id, nlohmann::json> calls_;  // the client's call → the MCP request id
  std::vector<ack> acks_pending_;           // pushed, and not in any batch handed out yet
  std::deque<unwritten_batch> unwritten_;   // handed out, and not confirmed written yet
  std::size_t unwritten_bytes_ = 0;         // ... their size
  std::vector<std::string> output_;         // stdout lines not handed out yet
  std::size_t output_bytes_ = 0;            // ... their size
  std::string stdin_;                       // stdin bytes received
  std::size_t stdin_pos_ = 0;               // ... and how far they are served
  std::uint64_t last_batch_ = 0;
  std::deque<buffered> buffer_;  // for read_messages, oldest first
  bool dropped_since_read_ = false;
  std::vector<waiting_read> waiting_reads_;
};

using bridge = basic_bridge<default_policy>;

}  // namespace parley
