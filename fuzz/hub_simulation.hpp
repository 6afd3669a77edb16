// SPDX-License-Identifier: MIT
// A byte-driven simulation of clients using one hub, checking the hub's invariants after every step.
//
// Shared by the property tests (random byte strings) and the libFuzzer target (fuzzed
// byte strings). Each byte string decodes into operations: open a session, join
// (named or automatic nickname, with case variants), leave, send (with or without a
// clientMsgId, sometimes repeating one), ack, drain, detach, resume (with the client's
// true last-seen seqs), end, and let time pass. A model of what each client should
// have received is kept beside the hub; `run` returns the first violated invariant.
#pragma once

#include <parley/parley.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
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
      step(in);
      if (!failure_) check_invariants();
    }
    return failure_;
  }

  [[nodiscard]] const simulated_hub& the_hub() const { return h_; }
  [[nodiscard]] std::uint64_t messages_sent() const { return messages_sent_; }
  [[nodiscard]] std::uint64_t messages_received() const { return messages_received_; }
  [[nodiscard]] std::uint64_t overflows() const { return overflows_; }

 private:
  struct client {
    std::optional<session_grant> session;
    bool attached = false;
    std::set<std::string> rooms;
    std::map<std::string, std::uint64_t> last_seen;  // highest seq received per room
    std::map<std::string, std::string> expected;     // message id → room: owed to this client
    std::set<std::string> optional;                  // sent before the client left that room: at most once
    std::set<std::string> received;
    std::set<std::string> sent;                      // ids this session sent: never echoed
    std::map<std::string, send_message_result> keys; // clientMsgId → first result
  };

  static simulated_hub make_hub(simulated_policy::room_store& store, std::uint64_t seed) {
    hub_config config;
    config.replay_capacity = 8;  // small, so detaches overflow often enough to exercise the gap path
    config.seq_block_size = 4;
    config.session_grace = std::chrono::seconds(5);
    auto state = std::make_shared<std::uint64_t>(seed * 0x9E3779B97F4A7C15ull + 1);
    random_source random = [state](unsigned char* out, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) {  // splitmix64: deterministic and cheap
        std::uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        out[i] = static_cast<unsigned char>(z ^ (z >> 31));
      }
    };
    return std::move(*simulated_hub::open(store, std::move(random), std::move(config)));
  }

  void fail(std::string why) {
    if (!failure_) failure_ = std::move(why);
  }

  void reset(client& c) { c = client{}; }

  client* by_handle(session_handle h) {
    for (auto& c : clients_)
      if (c.session && c.session->handle == h) return &c;
    return nullptr;
  }

  void step(byte_reader& in) {
    const operation op = operation_of(in.next());
    const std::uint8_t target = in.next();
    client& c = clients_[target % client_count];
    const std::string room = room_names[(target >> 4) % room_names.size()];
    switch (op) {
      case operation::open:
        if (!c.session) {
          c.session = h_.open_session(now_);
          c.attached = true;
        }
        break;
      case operation::join: join(c, room, in.next()); break;
      case operation::leave: leave(c, room); break;
      case operation::send: send(c, room, in.next()); break;
      case operation::drain: drain(c); break;
      case operation::ack:  // up to what the client has seen, or less
        if (c.session && c.attached && c.last_seen.count(room)) {
          const std::uint64_t seen = c.last_seen[room];
          if (!h_.ack(c.session->handle, {room, in.next() % 2 ? seen : seen / 2}))
            fail("an ack of a seq the client received was refused");
        }
        break;
      case operation::detach:
        if (c.session && c.attached) {
          h_.detach(c.session->handle, now_);
          c.attached = false;
        }
        break;
      case operation::resume: resume(c); break;
      case operation::end:
        if (c.session && in.next() % 4 == 0) {
          h_.end_session(c.session->handle);
          reset(c);
        }
        break;
      case operation::advance: advance(std::chrono::milliseconds(in.next() * 20)); break;
    }
  }

  void join(client& c, const std::string& room, std::uint8_t how) {
    if (!c.session || !c.attached) return;
    std::optional<std::string> nick;
    if (how % 3 != 0) nick = nickname_pool[how % nickname_pool.size()];
    auto r = h_.join_room(c.session->handle, {room, nick}, now_);
    if (!r) {
      if (r.error().code != error_code::nickname_taken || !nick) fail("join failed: " + r.error().message);
      if (c.rooms.count(room)) fail("a member's rejoin was refused");
      return;
    }
    if (nick && !c.rooms.count(room) && r->nickname != *nick) fail("join kept another spelling than asked");
    c.rooms.insert(room);
  }

  void leave(client& c, const std::string& room) {
    if (!c.session || !c.attached) return;
    auto r = h_.leave_room(c.session->handle, {room});
    if (r.has_value() != (c.rooms.count(room) > 0)) fail("leave disagreed with the model's membership");
    c.rooms.erase(room);
    // Messages still queued from before the leave may arrive, or may not after a drop.
    for (auto it = c.expected.begin(); it != c.expected.end();) {
      if (it->second == room && !c.received.count(it->first)) {
        c.optional.insert(it->first);
        it = c.expected.erase(it);
      } else {
        ++it;
      }
    }
  }

  void send(client& c, const std::string& room, std::uint8_t how) {
    if (!c.session || !c.attached) return;
    std::optional<std::string> key;
    if (how % 4 == 1) key = "k" + std::to_string(next_key_++);
    if (how % 4 == 2 && !c.keys.empty()) key = std::next(c.keys.begin(), how % c.keys.size())->first;
    auto r = h_.send_message(c.session->handle, {room, "m" + std::to_string(messages_sent_), key}, now_);
    if (key && c.keys.count(*key)) {  // a repeat: the original result, nothing delivered
      const auto& first = c.keys.at(*key);
      if (!r || r->seq != first.seq || r->message_id != first.message_id) fail("a repeated clientMsgId was not idempotent");
      return;
    }
    if (!r) {
      const bool member = c.rooms.count(room) > 0;
      if (r.error().code == error_code::not_in_room && member) fail("a member was told it is not in the room");
      if (r.error().code == error_code::rate_limited && !member) fail("a non-member was rate limited, not refused");
      if (r.error().code != error_code::not_in_room && r.error().code != error_code::rate_limited)
        fail("send failed: " + r.error().message);
      return;
    }
    if (!c.rooms.count(room)) fail("a non-member's send succeeded");
    if (r->seq <= last_seq_[room]) fail("seq did not increase in " + room);
    last_seq_[room] = r->seq;
    ++messages_sent_;
    c.sent.insert(r->message_id);
    if (key) c.keys.emplace(*key, *r);
    for (auto& other : clients_)
      if (&other != &c && other.session && other.rooms.count(room)) other.expected.emplace(r->message_id, room);
  }

  void drain(client& c) {
    if (!c.session) return;
    for (const auto& frame : h_.drain(c.session->handle)) {
      if (!c.attached) fail("a detached session had frames to drain");
      auto m = decode_server_frame(*frame);
      if (!m || !std::holds_alternative<room_message_frame>(*m)) {
        fail("an undecodable frame was delivered");
        return;
      }
      const auto& msg = std::get<room_message_frame>(*m);
      if (c.sent.count(msg.message_id)) fail("a session received its own message");
      if (!c.received.insert(msg.message_id).second) fail("a message was delivered twice");
      if (!c.expected.count(msg.message_id) && !c.optional.count(msg.message_id))
        fail("a message arrived that was not owed");
      auto& seen = c.last_seen[msg.room];
      if (msg.seq <= seen) fail("seqs arrived out of order in " + msg.room);
      seen = msg.seq;
      ++messages_received_;
    }
    if (!c.attached) return;
    for (const auto& [id, room] : c.expected)
      if (!c.received.count(id)) fail("an attached member is missing a message in " + room + " after a drain");
  }

  void resume(client& c) {
    if (!c.session) return;
    resume_block resume{c.session->session_id, c.session->reconnect_token, {}};
    for (const auto& room : c.rooms) resume.last_acked_seq_by_room[room] = c.last_seen[room];
    auto r = h_.resume_session(resume, now_);
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
    for (const auto& ended : h_.expire(now_))
      if (client* c = by_handle(ended.handle)) reset(*c);
  }

  void check_invariants() {
    std::size_t memberships = 0;
    for (const auto& [name, room] : h_.rooms()) {
      if (room.by_folded.size() != room.members.size()) fail("nicknames are not unique in " + name);
      std::set<session_handle> seen;
      for (const auto& m : room.members) {
        ++memberships;
        if (!seen.insert(m.session->handle).second) fail("a session is a member twice of " + name);
        auto idx = room.by_folded.find(fold_nickname(m.nickname));
        if (idx == room.by_folded.end() || idx->second != m.session->handle) fail("the nickname index is stale in " + name);
        auto ms = m.session->memberships.find(name);
        if (ms == m.session->memberships.end() || ms->second.room != &room || ms->second.nickname != m.nickname)
          fail("membership is not consistent both ways in " + name);
        if (ms != m.session->memberships.end() && ms->second.ring.size() > ms->second.ring.capacity())
          fail("a replay ring outgrew its capacity");
        client* c = by_handle(m.session->handle);
        if (!c || !c->rooms.count(name)) fail("the hub holds a membership the model does not");
      }
    }
    std::size_t model_memberships = 0;
    for (const auto& c : clients_) model_memberships += c.session ? c.rooms.size() : 0;
    if (memberships != model_memberships) fail("membership counts differ between hub and model");
  }

  simulated_policy::room_store store_;
  simulated_hub h_;
  simulated_moment now_ = simulated_epoch;
  std::array<client, client_count> clients_{};
  std::map<std::string, std::uint64_t> last_seq_;
  std::uint64_t next_key_ = 0;
  std::uint64_t messages_sent_ = 0;
  std::uint64_t messages_received_ = 0;
  std::uint64_t overflows_ = 0;
  std::optional<std::string> failure_;
};

}  // namespace parley::simulation
