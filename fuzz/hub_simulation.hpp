// SPDX-License-Identifier: MIT
// A byte-driven simulation of clients using one hub, checking the hub's invariants after every step.
//
// Shared by the property tests (random byte strings) and the libFuzzer target (fuzzed
// byte strings). Each byte string decodes into operations: open a session, join
// (named or automatic nickname, with case variants), leave, send (with or without a
// clientMsgId, sometimes repeating one), ack, drain, detach, resume (with the client's
// true last-seen seqs), end, and let time pass. A model of what each client should
// have received is kept beside the hub; `run` returns the first violated invariant.
//
// Deliveries are recognised by their shared frame, not by parsing it: each send
// records the frame the hub put in its recipients' rings (which must be one frame,
// shared, whose text names the room, seq, id, sender and body sent), and a drained
// frame missing from that table is itself a violation. Parsing every delivery with
// nlohmann made the fuzz target crawl.
#pragma once

#include <parley/parley.hpp>

#include "splitmix_random.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley::simulation {

class byte_reader {
 public:
  byte_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool done() const { return pos_ >= size_; }
  std::uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

inline constexpr std::array<const char*, 2> room_names{"lobby", "dev"};
inline constexpr std::size_t room_count = room_names.size();
inline constexpr std::array<const char*, 5> nickname_pool{"alice", "Alice", "bob", "BOB", "carol"};
inline constexpr std::size_t client_count = 4;

// Operation weights out of 32, so random bytes reach deep states: mostly sends,
// with enough detaches and resumes to overflow rings.
enum class operation { open, join, leave, send, drain, ack, detach, resume, end, advance };
inline constexpr std::array<std::pair<operation, int>, 10> operation_weights{{
    {operation::open, 2}, {operation::join, 4}, {operation::leave, 1}, {operation::send, 11}, {operation::drain, 3},
    {operation::ack, 3}, {operation::detach, 2}, {operation::resume, 2}, {operation::end, 1}, {operation::advance, 3}}};

inline operation operation_of(std::uint8_t byte) {
  int pick = byte % 32;
  for (const auto& [op, weight] : operation_weights) {
    if (pick < weight) return op;
    pick -= weight;
  }
  return operation::advance;
}

// The hub under simulation runs on simulated clocks and its own in-memory store.
using simulated_hub = basic_hub<simulated_policy>;

class hub_simulation {
 public:
  explicit hub_simulation(std::uint64_t seed = 1) : h_(make_hub(store_, seed)) {}

  // Runs every operation the bytes describe; returns the first invariant violated.
  std::optional<std::string> run(const std::uint8_t* data, std::size_t size) {
    byte_reader in(data, size);
    while (!in.done() && !failure_) {
      touched_ = false;
      step(in);
      if (touched_ && !failure_) check_invariants();  // a step that never called the hub changed nothing to check
    }
    return failure_;
  }

  [[nodiscard]] const simulated_hub& the_hub() const { return h_; }
  [[nodiscard]] std::uint64_t messages_sent() const { return messages_sent_; }
  [[nodiscard]] std::uint64_t messages_received() const { return messages_received_; }
  [[nodiscard]] std::uint64_t overflows() const { return overflows_; }

 private:
  // The model's rooms are indexes into room_names; messages are numbered in send order.
  using room_index = std::size_t;
  using message_number = std::uint64_t;

  struct client {
    std::optional<session_grant> session;
    bool attached = false;
    std::array<bool, room_count> in_room{};
    std::array<std::uint64_t, room_count> last_seen{};  // highest seq received per room
    std::array<bool, room_count> has_last_seen{};      // received in, or resumed with, that room: may ack
    std::map<message_number, room_index> expected;  // owed to this client and not yet received
    std::set<message_number> optional;              // sent before the client left that room: at most once
    std::vector<bool> received;                     // by message number
    std::map<std::string, send_message_result> keys; // clientMsgId → first result
  };

  // What the simulation sent, looked up by the address of the frame the hub shares among recipients.
  struct sent_message {
    shared_frame frame;  // held, so no later frame can reuse the address
    message_number number;
    room_index room;
    std::uint64_t seq;
    session_handle sender;
  };

  static simulated_hub make_hub(simulated_policy::room_store& store, std::uint64_t seed) {
    hub_config config;
    config.replay_capacity = 8;  // small, so detaches overflow often enough to exercise the gap path
    config.seq_block_size = 4;
    config.session_grace = std::chrono::seconds(5);
    // Rooms left empty and unwritten expire and come back, and recreating them can run
    // out of budget: both paths are reachable within a few advances.
    config.room_ttl = std::chrono::seconds(20);
    config.room_creation = {1, 2};  // a session creating both rooms at once is refused the second
    return std::move(*simulated_hub::open(store, splitmix_random(seed * 0x9E3779B97F4A7C15ull + 1), std::move(config)));
  }

  // Every call into the hub goes through here, so run() knows which steps may have changed its state.
  simulated_hub& hub() {
    touched_ = true;
    return h_;
  }

  void fail(std::string why) {
    if (!failure_) failure_ = std::move(why);
  }

  void reset(client& c) { c = client{}; }

  static room_index index_of(std::string_view room) {
    return static_cast<room_index>(std::find(room_names.begin(), room_names.end(), room) - room_names.begin());
  }

  client* by_handle(session_handle h) {
    for (auto& c : clients_)
      if (c.session && c.session->handle == h) return &c;
    return nullptr;
  }

  void step(byte_reader& in) {
    const operation op = operation_of(in.next());
    const std::uint8_t target = in.next();
    client& c = clients_[target % client_count];
    const room_index room = (target >> 4) % room_count;
    switch (op) {
      case operation::open:
        if (!c.session) {
          c.session = hub().open_session(now_);
          c.attached = true;
        }
        break;
      case operation::join: join(c, room, in.next()); break;
      case operation::leave: leave(c, room); break;
      case operation::send: send(c, room, in.next()); break;
      case operation::drain: drain(c); break;
      case operation::ack:  // up to what the client has seen, or less
        if (c.session && c.attached && c.has_last_seen[room]) {
          const std::uint64_t seen = c.last_seen[room];
          if (!hub().ack(c.session->handle, {room_names[room], in.next() % 2 ? seen : seen / 2}))
            fail("an ack of a seq the client received was refused");
        }
        break;
      case operation::detach:
        if (c.session && c.attached) {
          hub().detach(c.session->handle, now_);
          c.attached = false;
        }
        break;
      case operation::resume: resume(c); break;
      case operation::end:
        if (c.session && in.next() % 4 == 0) {
          hub().end_session(c.session->handle, now_);
          reset(c);
        }
        break;
      case operation::advance: advance(std::chrono::milliseconds(in.next() * 20)); break;
    }
  }

  void join(client& c, room_index room, std::uint8_t how) {
    if (!c.session || !c.attached) return;
    std::optional<std::string> nick;
    if (how % 3 != 0) nick = nickname_pool[how % nickname_pool.size()];
    const bool creates = h_.rooms().count(room_names[room]) == 0;
    auto r = hub().join_room(c.session->handle, {room_names[room], nick}, now_);
    if (!r) {
      // Only creating a room spends the budget; joining one that exists never does.
      const bool budget = r.error().code == error_code::rate_limited || r.error().code == error_code::room_limit;
      if (budget && creates) return;
      if (budget) fail("joining an existing room was refused by the creation budget");
      if (r.error().code != error_code::nickname_taken || !nick) fail("join failed: " + r.error().message);
      if (c.in_room[room]) fail("a member's rejoin was refused");
      return;
    }
    if (nick && !c.in_room[room] && r->nickname != *nick) fail("join kept another spelling than asked");
    c.in_room[room] = true;
  }

  void leave(client& c, room_index room) {
    if (!c.session || !c.attached) return;
    auto r = hub().leave_room(c.session->handle, {room_names[room]}, now_);
    if (r.has_value() != c.in_room[room]) fail("leave disagreed with the model's membership");
    c.in_room[room] = false;
    // Messages still queued from before the leave may arrive, or may not after a drop.
    for (auto it = c.expected.begin(); it != c.expected.end();) {
      if (it->second == room) {
        c.optional.insert(it->first);
        it = c.expected.erase(it);
      } else {
        ++it;
      }
    }
  }

  void send(client& c, room_index room, std::uint8_t how) {
    if (!c.session || !c.attached) return;
    std::optional<std::string> key;
    if (how % 4 == 1) key = "k" + std::to_string(next_key_++);
    if (how % 4 == 2 && !c.keys.empty()) key = std::next(c.keys.begin(), how % c.keys.size())->first;
    const std::string body = "m" + std::to_string(messages_sent_);
    auto r = hub().send_message(c.session->handle, {room_names[room], body, key}, now_);
    if (key && c.keys.count(*key)) {  // a repeat: the original result, nothing delivered
      const auto& first = c.keys.at(*key);
      if (!r || r->seq != first.seq || r->message_id != first.message_id) fail("a repeated clientMsgId was not idempotent");
      return;
    }
    if (!r) {
      const bool member = c.in_room[room];
      if (r.error().code == error_code::not_in_room && member) fail("a member was told it is not in the room");
      if (r.error().code == error_code::rate_limited && !member) fail("a non-member was rate limited, not refused");
      if (r.error().code != error_code::not_in_room && r.error().code != error_code::rate_limited)
        fail("send failed: " + r.error().message);
      return;
    }
    if (!c.in_room[room]) fail("a non-member's send succeeded");
    if (r->seq <= last_seq_[room]) fail("seq did not increase in " + std::string(room_names[room]));
    last_seq_[room] = r->seq;
    const message_number number = messages_sent_++;
    if (key) c.keys.emplace(*key, *r);
    record_frame(c, room, number, *r, body);
    for (auto& other : clients_)
      if (&other != &c && other.session && other.in_room[room]) other.expected.emplace(number, room);
  }

  // Finds the frame the hub built for the message just sent in its recipients' replay
  // rings, checks it is one frame shared by all of them and that its text says what was
  // sent, and records it so drain() can recognise it without parsing.
  void record_frame(const client& c, room_index room, message_number number, const send_message_result& r,
                    const std::string& body) {
    const auto& rooms = h_.rooms();
    const auto it = rooms.find(room_names[room]);
    if (it == rooms.end()) return fail("a room that was sent to does not exist");
    shared_frame frame;
    std::string sender_nickname;
    for (const auto& m : it->second.members) {
      const auto ms = m.session->memberships.find(room_names[room]);
      if (ms == m.session->memberships.end()) return;  // check_invariants reports the inconsistency
      const auto& ring = ms->second.ring;
      if (m.session->handle == c.session->handle) {
        sender_nickname = ms->second.nickname;
        if (!ring.empty() && ring.back().seq == r.seq) return fail("a session received its own message (in its ring)");
        continue;
      }
      if (ring.empty() || ring.back().seq != r.seq || !ring.back().frame)
        return fail("a recipient's replay ring does not end with the message just sent");
      if (!frame) frame = ring.back().frame;
      else if (frame != ring.back().frame) return fail("recipients of one message hold different frames");
    }
    if (!frame) return;  // nobody else in the room: nothing will be delivered
    const std::string_view text = *frame;
    auto has = [&](const std::string& field) { return text.find(field) != std::string_view::npos; };
    const std::string seq = "\"seq\":" + std::to_string(r.seq);
    const std::size_t seq_at = text.find(seq);
    const bool seq_whole = seq_at != std::string_view::npos && seq_at + seq.size() < text.size() &&
                           (text[seq_at + seq.size()] == ',' || text[seq_at + seq.size()] == '}');
    if (!has("\"_tag\":\"room.message\"") || !has("\"room\":\"" + std::string(room_names[room]) + "\"") ||
        !seq_whole || !has("\"messageId\":\"" + r.message_id + "\"") || !has("\"body\":\"" + body + "\"") ||
        !has("\"fromNickname\":\"" + sender_nickname + "\"") || !has("\"sentAt\":\"" + r.sent_at + "\""))
      return fail("a message's frame does not say what was sent: " + std::string(text.substr(0, 200)));
    const std::string* address = frame.get();
    if (!frames_.emplace(address, sent_message{std::move(frame), number, room, r.seq, c.session->handle}).second)
      fail("two messages share one frame");
  }

  void drain(client& c) {
    if (!c.session) return;
    for (const auto& frame : hub().drain(c.session->handle)) {
      if (!c.attached) fail("a detached session had frames to drain");
      const auto known = frames_.find(frame.get());
      if (known == frames_.end()) {
        // Not a frame any send produced: say what it is, then fail.
        if (!frame) return fail("a null frame was delivered");
        auto m = decode_server_frame(*frame);
        // An heir hears that it became its room's owner when the last owner's session ended.
        if (m && std::holds_alternative<room_event_frame>(*m)) {
          const auto& e = std::get<room_event_frame>(*m);
          if (e.kind != "role" || e.fields.value("role", std::string()) != "owner")
            fail("an unexpected room.event was delivered: " + encode_room_event(e));
          continue;
        }
        if (!m || !std::holds_alternative<room_message_frame>(*m)) fail("an undecodable frame was delivered");
        else fail("a frame no send produced was delivered, for message " + std::get<room_message_frame>(*m).message_id);
        return;
      }
      const sent_message& msg = known->second;
      if (msg.sender == c.session->handle) fail("a session received its own message");
      if (c.received.size() <= msg.number) c.received.resize(msg.number + 1);
      if (c.received[msg.number]) fail("a message was delivered twice");
      c.received[msg.number] = true;
      if (c.expected.erase(msg.number) == 0 && c.optional.erase(msg.number) == 0)
        fail("a message arrived that was not owed");
      c.has_last_seen[msg.room] = true;
      auto& seen = c.last_seen[msg.room];
      if (msg.seq <= seen) fail("seqs arrived out of order in " + std::string(room_names[msg.room]));
      seen = msg.seq;
      ++messages_received_;
    }
    if (!c.attached) return;
    if (!c.expected.empty())
      fail("an attached member is missing a message in " + std::string(room_names[c.expected.begin()->second]) +
           " after a drain");
  }

  void resume(client& c) {
    if (!c.session) return;
    resume_block resume{c.session->session_id, c.session->reconnect_token, {}};
    for (room_index room = 0; room < room_count; ++room)
      if (c.in_room[room]) {
        c.has_last_seen[room] = true;
        resume.last_acked_seq_by_room[room_names[room]] = c.last_seen[room];
      }
    auto r = hub().resume_session(resume, now_);
    if (!r) {
      if (r.error().code != error_code::replay_buffer_overflow) fail("resume failed: " + r.error().message);
      ++overflows_;
      reset(c);  // the gap is reported and the session is gone: a fresh start owes nothing
      return;
    }
    c.attached = true;
    drain(c);
  }

  void advance(std::chrono::milliseconds by) {
    now_ += by;
    for (const auto& ended : hub().expire(now_))
      if (client* c = by_handle(ended.handle)) reset(*c);
  }

  void check_invariants() {
    std::size_t memberships = 0;
    for (const auto& [name, room] : h_.rooms()) {
      if (room.by_folded.size() != room.members.size()) fail("nicknames are not unique in " + name);
      // Exactly the rooms that are empty and never written to are waiting to expire.
      if (room.expires_at.has_value() != (room.members.empty() && !room.used))
        fail("the expiry of " + name + " disagrees with its members and its use");
      const room_index index = index_of(name);
      if (index < room_count && room.used != (last_seq_[index] > 0))
        fail(name + " is used exactly when a message was sent in it");
      std::array<session_handle, client_count> seen{};
      std::size_t seen_count = 0;
      for (const auto& m : room.members) {
        ++memberships;
        const session_handle handle = m.session->handle;
        if (std::find(seen.begin(), seen.begin() + seen_count, handle) != seen.begin() + seen_count)
          fail("a session is a member twice of " + name);
        else if (seen_count < seen.size())
          seen[seen_count++] = handle;
        auto idx = room.by_folded.find(fold_nickname(m.nickname));
        if (idx == room.by_folded.end() || idx->second != handle) fail("the nickname index is stale in " + name);
        auto ms = m.session->memberships.find(name);
        if (ms == m.session->memberships.end() || ms->second.room != &room || ms->second.nickname != m.nickname)
          fail("membership is not consistent both ways in " + name);
        if (ms != m.session->memberships.end() && ms->second.ring.size() > ms->second.ring.capacity())
          fail("a replay ring outgrew its capacity");
        client* c = by_handle(handle);
        if (!c || index >= room_count || !c->in_room[index]) fail("the hub holds a membership the model does not");
      }
    }
    std::size_t model_memberships = 0;
    for (const auto& c : clients_)
      if (c.session)
        model_memberships += static_cast<std::size_t>(std::count(c.in_room.begin(), c.in_room.end(), true));
    if (memberships != model_memberships) fail("membership counts differ between hub and model");
  }

  simulated_policy::room_store store_;
  simulated_hub h_;
  simulated_moment now_ = simulated_epoch;
  std::array<client, client_count> clients_{};
  std::array<std::uint64_t, room_count> last_seq_{};
  std::unordered_map<const std::string*, sent_message> frames_;
  std::uint64_t next_key_ = 0;
  std::uint64_t messages_sent_ = 0;
  std::uint64_t messages_received_ = 0;
  std::uint64_t overflows_ = 0;
  std::optional<std::string> failure_;
  bool touched_ = false;
};

}  // namespace parley::simulation
