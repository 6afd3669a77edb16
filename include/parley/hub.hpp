// SPDX-License-Identifier: MIT
// The hub: rooms, sessions, nicknames and delivery as one deterministic state machine with no I/O.
//
// basic_hub<Policy> is built from its policy's clocks, randomness, store and frame
// encoding (policy.hpp); `parley::hub` is the default. Every operation takes `now` on
// both clocks: deadlines (session grace, rate-limit refill, the idempotency window)
// read only the monotonic one, and the wall clock reaches only sentAt and UUIDv7.
// Deliveries go to per-session outboxes that the caller drains; a message's frame is
// encoded once and shared by every recipient's outbox and replay ring.
//
// Rooms are cheap to ask for and permanent once used, so creating them is bounded three
// ways: a per-principal budget (the token's label, or the session when it has none), a
// server-wide cap, and a TTL after which a room nobody is in and nobody ever wrote to is
// deleted again. Joining an existing room is never limited.
//
// Rooms people control: a room is public (anyone may join) or private (an invite, or
// an owner's approval of a knock). Roles and bans attach to principals — a token's label,
// which is durable and whose roles and bans the store keeps, or else the session itself,
// whose roles and bans end with it. A room always keeps an owner while anyone is in it:
// when the last owner's session ends, the member present longest becomes owner; a private
// room left with no members and no owner is deleted, since nobody could admit anyone.
#pragma once

#include "clock.hpp"
#include "error.hpp"
#include "idempotency_window.hpp"
#include "nickname_generator.hpp"
#include "policy.hpp"
#include "replay_ring.hpp"
#include "room_bus.hpp"
#include "room_store.hpp"
#include "sha256.hpp"
#include "shared_frame.hpp"
#include "token_bucket.hpp"
#include "uuid.hpp"
#include "version.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <iterator>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley {

struct hub_config {
  token_bucket_config rate{};                 // per-session send budget: burst 20, 10/s
  std::size_t replay_capacity = 64;           // unacked messages kept per (session, room)
  milliseconds session_grace = std::chrono::seconds(60);  // how long a detached session may resume
  idempotency_window_config idempotency{};    // clientMsgId memory: >= 1024 keys and >= 10 minutes
  std::size_t max_body_bytes = default_max_body_bytes;
  std::uint64_t seq_block_size = 256;         // seqs reserved per store write (hi/lo)
  std::string server_version = std::string(version_string);
  per_minute_budget room_creation{};          // new rooms per principal: burst 20, 10/min
  std::size_t max_rooms = 10000;              // rooms at most; a join that would create one more is refused
  milliseconds room_ttl = std::chrono::hours(24);  // an empty room never written to goes after this; 0: never
  per_minute_budget invites{10, 10};          // invites made per principal: burst 10, 10/min
  per_minute_budget knocks{5, 5};             // knocks made per principal: burst 5, 5/min
  milliseconds knock_ttl = std::chrono::minutes(10);  // an unanswered knock expires after this
  std::size_t max_pending_knocks = 20;        // per room
  std::size_t max_held_events = 64;           // room.events kept for a detached session until it resumes
  std::size_t max_live_invites = 100;         // per room: unexpired, not used up
  // Non-empty: this hub is one node of a cluster, and a bus (room_bus.hpp) orders room
  // messages and issues their seqs; empty: the hub orders them itself, from its store.
  std::string node_id{};
};

// A local handle for a session; only the hub and its caller see it, never the wire.
using session_handle = std::uint64_t;

// What a client hears when the room store fails: the store's own error (a path, an SQL
// error) is for the host's log, never for the wire.
inline constexpr std::string_view storage_failed = "the server's storage failed; try again later";

struct session_grant {
  session_handle handle = 0;
  std::string session_id;
  std::string reconnect_token;
};

struct hub_stats {
  std::size_t sessions = 0;
  std::size_t attached_sessions = 0;
  std::size_t rooms = 0;
  std::size_t memberships = 0;
  std::uint64_t messages_total = 0;
  std::uint64_t deliveries_total = 0;
  std::uint64_t rate_limited_total = 0;
  std::uint64_t replay_overflows_total = 0;
  std::uint64_t room_creations_refused_total = 0;  // by the budget or the cap
  std::uint64_t rooms_expired_total = 0;
  std::uint64_t bus_records_behind_total = 0;  // cluster: records at or below their room's latest seq
};

template <class Policy>
class basic_hub {
 public:
  using policy_type = Policy;
  using moment_type = moment_of<Policy>;
  using monotonic_time = typename moment_type::monotonic_time;
  using random_type = typename Policy::random;
  using store_type = typename Policy::room_store;
  using frame_encoding = typename Policy::frame_encoding;

  struct session_state;

  struct invite_state {
    std::string code_hash;  // SHA-256 of the code, hex: the code itself is never kept
    member_role role = member_role::member;
    std::optional<std::uint32_t> max_uses;
    std::uint32_t uses = 0;
    std::int64_t expires_at_ms = 0;  // wall clock, ms since the epoch: an invite outlives restarts
  };

  struct knock_state {
    session_handle knocker = 0;
    std::string nickname;  // asked for, or assigned at the knock
    std::optional<std::string> note;
    monotonic_time expires{};
  };

  // Who may enter a room and what they may do there. Principal keys are "token:LABEL"
  // (durable: stored) or "session:ID" (ends with the session: never stored).
  struct room_access {
    room_visibility visibility = room_visibility::public_room;
    std::map<std::string, member_role, std::less<>> roles;  // absent: member
    std::map<std::string, std::string, std::less<>> bans;   // principal → its nickname when banned
    std::vector<invite_state> invites;
  };

  struct member {
    session_state* session;
    std::string nickname;
    std::uint64_t joined = 0;  // this room's join counter at the join: who_is_here's cursor
  };

  struct room_state {
    std::string name;
    std::vector<member> members;                                 // in join order
    std::unordered_map<std::string, session_handle> by_folded;   // folded nickname → member
    std::uint64_t next_seq = 0;                                  // hi/lo: [next_seq, seq_limit) is reserved
    std::uint64_t seq_limit = 0;
    std::uint64_t last_seq = 0;
    bool used = false;                         // a seq was ever reserved: never expires
    std::uint64_t joins = 0;                   // members ever admitted
    std::optional<monotonic_time> expires_at;  // set while empty and unused, with a TTL
    room_access access{};                      // visibility, roles, bans, invites
    std::string saved_access{};                // what the store holds, so unchanged access is not rewritten
    std::map<std::string, knock_state, std::less<>> knocks{};  // pending, by knockId
  };

  struct membership {
    room_state* room;
    std::string nickname;
    replay_ring ring;
    replay_ring direct_ring;       // direct messages to this member: their own seqs
    std::uint64_t direct_seq = 0;  // the last one issued
  };

  struct session_state {
    session_handle handle;
    std::string id;
    std::string reconnect_token;
    bool attached = true;
    monotonic_time detach_deadline{};
    std::map<std::string, membership, std::less<>> memberships;
    token_bucket<monotonic_time> bucket;
    idempotency_window<send_message_result, monotonic_time> sent;
    std::vector<shared_frame> outbox;
    bool ready_listed = false;
    std::string principal;                    // the token's label; empty: the session is its own
    token_bucket<monotonic_time> room_bucket;  // room creations, when the principal is the session
    member_kind kind = member_kind::agent;     // what who_is_here and fromKind say of it
    std::set<std::string, std::less<>> principal_rooms{};  // rooms holding a role or ban of this session's own principal
    bool direct_messages = false;                           // its client said it can take them
    std::map<std::string, std::string, std::less<>> knocks{};  // room → its pending knockId there
    // (room, frame) while detached. A list, not a deque: an empty one allocates nothing,
    // and nearly every session's stays empty.
    std::list<std::pair<std::string, shared_frame>> held_events{};
    std::map<std::string, std::uint64_t, std::less<>> missed_events{};  // room → events dropped past the bound
  };

  // Loads the store's rooms; a store that cannot be read is an error, not an empty hub.
  [[nodiscard]] static result<basic_hub> open(store_type& store, random_type random, hub_config config = {}) {
    auto rooms = store.load_rooms();
    if (!rooms) return tl::unexpected(rooms.error());
    basic_hub h(store, std::move(random), std::move(config));
    for (auto& r : *rooms) {
      room_state& room = h.rooms_.emplace(r.name, room_state{}).first->second;
      room.name = r.name;
      room.used = r.next_seq > 1;
      room.access = parse_access(r.access);
      room.saved_access = r.access;
      // Their TTL starts at the first call that brings the time (a server's first tick).
      if (!room.used && h.config_.room_ttl.count() > 0) h.unstamped_rooms_.push_back(r.name);
    }
    // Session principals' roles did not survive the restart: a private room with no
    // durable owner left can admit nobody, and goes.
    for (auto it = h.rooms_.begin(); it != h.rooms_.end();) {
      room_state& room = it->second;
      if (room.access.visibility == room_visibility::private_room && !has_owner(room) && store.delete_room(room.name, {})) {
        it = h.rooms_.erase(it);
        continue;
      }
      ++it;
    }
    return h;
  }

  basic_hub(basic_hub&&) noexcept = default;
  basic_hub& operator=(basic_hub&&) = delete;
  basic_hub(const basic_hub&) = delete;

  // ---- sessions -----------------------------------------------------------

  // A fresh secret from the hub's randomness (base64url): the server's cookie ids.
  [[nodiscard]] std::string random_secret(std::size_t bytes = 32) { return random_token(random_, bytes); }

  // `principal` is who the room-creation budget belongs to: the label of the token the
  // session presented, or empty when it presented none (the session is its own).
  // `kind` is what the hello said the client is: an agent, or a person at the web page.
  // `direct_messages`: its client can take direct messages (hello's features).
  [[nodiscard]] session_grant open_session(const moment_type& now, std::string principal = {},
                                           member_kind kind = member_kind::agent, bool direct_messages = false) {
    touch(now);
    const session_handle handle = ++last_handle_;
    auto s = std::make_unique<session_state>(session_state{
        handle, uuid_v4(random_), random_token(random_, 32), true, {}, {},
        token_bucket<monotonic_time>(config_.rate, now.monotonic),
        idempotency_window<send_message_result, monotonic_time>(config_.idempotency), {}, false, std::move(principal),
        token_bucket<monotonic_time>::per_minute(config_.room_creation, now.monotonic), kind, {}, direct_messages});
    session_grant grant{handle, s->id, s->reconnect_token};
    by_id_.emplace(s->id, handle);
    sessions_.emplace(handle, std::move(s));
    return grant;
  }

  // Resumes a detached (or still attached: the newer connection wins) session and
  // queues, per room, exactly the messages after the client's last ack. If any of
  // them was evicted the resume fails with ReplayBufferOverflowError and the session
  // ends, so its nicknames are free for the fresh session the client starts next.
  [[nodiscard]] result<session_grant> resume_session(const resume_block& resume, const moment_type& now) {
    touch(now);
    auto id = by_id_.find(resume.session_id);
    if (id == by_id_.end())
      return make_error(error_code::unknown_session, "no session " + resume.session_id + " (it ended or never existed)");
    session_state& s = *sessions_.at(id->second);
    if (!constant_time_equal(s.reconnect_token, resume.reconnect_token))
      return make_error(error_code::bad_reconnect_token, "the reconnect token does not match this session");
    for (const auto& [room, m] : s.memberships)
      if (const std::uint64_t after = acked_after_resume(resume, room, m); after > m.room->last_seq)
        return make_error(error_code::bad_handshake_frame,
                          "resume.lastAckedSeqByRoom names seq " + std::to_string(after) + " in " + room +
                              ", which was never sent (its latest is " + std::to_string(m.room->last_seq) +
                              "); the session is unharmed");
    for (const auto& [room, m] : s.memberships)
      if (const std::uint64_t after = acked_direct_after_resume(resume, room, m); after > m.direct_seq)
        return make_error(error_code::bad_handshake_frame,
                          "resume.lastAckedDirectSeqByRoom names seq " + std::to_string(after) + " in " + room +
                              ", which was never sent (its latest is " + std::to_string(m.direct_seq) +
                              "); the session is unharmed");
    detach(s.handle, now);
    json lost = json::array();
    for (auto& [room, m] : s.memberships)
      if (!m.ring.can_resume_after(acked_after_resume(resume, room, m)) ||
          !m.direct_ring.can_resume_after(acked_direct_after_resume(resume, room, m)))
        lost.push_back(room);
    if (!lost.empty()) {
      ++stats_.replay_overflows_total;
      std::string rooms;
      for (const auto& r : lost) rooms += (rooms.empty() ? "" : ", ") + r.get<std::string>();
      end_session(s.handle, now);
      return make_error(error_code::replay_buffer_overflow,
                        "messages were dropped while disconnected (in " + rooms + "); the session has ended",
                        json{{"rooms", std::move(lost)}});
    }
    s.attached = true;
    deadlines_.erase({s.detach_deadline, s.handle});
    for (auto& [room, m] : s.memberships) {
      const std::uint64_t after = acked_after_resume(resume, room, m);
      m.ring.ack(after);
      m.ring.for_each_after(after, [&](const replay_entry& e) { enqueue(s, e.frame); });
      const std::uint64_t direct_after = acked_direct_after_resume(resume, room, m);
      m.direct_ring.ack(direct_after);
      m.direct_ring.for_each_after(direct_after, [&](const replay_entry& e) { enqueue(s, e.frame); });
    }
    // Then what happened to it meanwhile (approved, kicked, a knock to answer…), and how
    // many events, per room, did not fit.
    for (const auto& [room, count] : s.missed_events)
      enqueue(s, make_shared_frame(frame_encoding::encode(
                     encode_room_event(room_event_frame{room, "missed", json{{"count", count}}}))));
    for (auto& [room, frame] : s.held_events) enqueue(s, frame);
    s.missed_events.clear();
    s.held_events.clear();
    return session_grant{s.handle, s.id, s.reconnect_token};
  }

  // The transport is gone; memberships stay for the grace period.
  void detach(session_handle handle, const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s || !s->attached) return;
    s->attached = false;
    s->outbox.clear();  // still in the replay rings, which is where a resume reads from
    s->detach_deadline = now.monotonic + config_.session_grace;
    deadlines_.emplace(s->detach_deadline, handle);
  }

  // A clean end (close 1000, or the grace ran out): memberships vanish at once.
  void end_session(session_handle handle, const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return;
    std::set<std::string, std::less<>> touched = s->principal_rooms;
    for (auto& [name, m] : s->memberships) {
      remove_member(*m.room, *s, now);
      touched.insert(name);
    }
    s->memberships.clear();
    // A session principal's roles and bans end with it; then every room it touched
    // must still have an owner, or (private and empty) go.
    const std::string key = principal_key(*s);
    if (s->principal.empty()) {
      for (const auto& name : s->principal_rooms)
        if (auto it = rooms_.find(name); it != rooms_.end()) {
          it->second.access.roles.erase(key);
          it->second.access.bans.erase(key);
        }
      invite_buckets_.erase(key);
      knock_buckets_.erase(key);
    }
    for (const auto& [room, id] : std::map<std::string, std::string, std::less<>>(s->knocks))
      if (auto it = rooms_.find(room); it != rooms_.end()) forget_knock(it->second, id);
    for (const auto& name : touched)
      if (auto it = rooms_.find(name); it != rooms_.end()) ensure_owner(it->second, now);
    if (!s->attached) deadlines_.erase({s->detach_deadline, handle});
    forget_pending_of(handle);
    by_id_.erase(s->id);
    sessions_.erase(handle);
  }

  struct ended_session {
    session_handle handle;
    std::string session_id;
    friend bool operator==(const ended_session& a, const ended_session& b) {
      return a.handle == b.handle && a.session_id == b.session_id;
    }
  };

  // Ends every detached session whose grace ran out by `now` and returns them; then
  // deletes every room whose TTL ran out (stats().rooms_expired_total counts them).
  std::vector<ended_session> expire(const moment_type& now) {
    touch(now);
    std::vector<ended_session> ended;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now.monotonic) {
      const session_handle h = deadlines_.begin()->second;
      ended.push_back(ended_session{h, sessions_.at(h)->id});
      end_session(h, now);
    }
    while (!knock_deadlines_.empty() && knock_deadlines_.begin()->first <= now.monotonic) {
      const auto [room, id] = knock_deadlines_.begin()->second;
      auto r = rooms_.find(room);
      if (r == rooms_.end()) {
        knock_deadlines_.erase(knock_deadlines_.begin());
        continue;
      }
      if (auto k = r->second.knocks.find(id); k != r->second.knocks.end())
        if (session_state* knocker = find(k->second.knocker))
          send_event(*knocker, room_event_frame{room, "expired", json{{"knockId", id}}});
      forget_knock(r->second, id);
      knock_deadlines_.erase({knock_deadlines_.begin()->first, {room, id}});  // if forget_knock found none
    }
    while (!room_deadlines_.empty() && room_deadlines_.begin()->first <= now.monotonic) {
      auto it = rooms_.find(room_deadlines_.begin()->second);
      room_deadlines_.erase(room_deadlines_.begin());
      if (it == rooms_.end()) continue;  // cannot happen: a room leaves rooms_ only here
      room_state& r = it->second;
      r.expires_at.reset();
      if (!store_->delete_room(r.name, now.wall)) {
        schedule_expiry(r, now);  // the store failed: keep the room and try again a TTL later
        continue;
      }
      ++stats_.rooms_expired_total;
      drop_room(r);
    }
    return ended;
  }

  [[nodiscard]] std::optional<monotonic_time> next_deadline() const {
    std::optional<monotonic_time> next;
    if (!deadlines_.empty()) next = deadlines_.begin()->first;
    if (!room_deadlines_.empty() && (!next || room_deadlines_.begin()->first < *next))
      next = room_deadlines_.begin()->first;
    if (!knock_deadlines_.empty() && (!next || knock_deadlines_.begin()->first < *next))
      next = knock_deadlines_.begin()->first;
    return next;
  }

  // ---- tools ----------------------------------------------------------------

  // A room that does not exist is created public, with the caller its owner, as the
  // reference creates it (ownership is our addition). A private room admits a
  // principal that holds a role in it, or one with a live invite; a ban refuses all.
  [[nodiscard]] result<join_room_result> join_room(session_handle handle, const join_room_args& args, const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (args.nickname)
      if (auto ok = check_nickname("nickname", *args.nickname); !ok) return tl::unexpected(ok.error());
    if (args.invite)
      if (auto ok = check_invite_code(*args.invite); !ok) return tl::unexpected(ok.error());
    if (auto it = s->memberships.find(args.room); it != s->memberships.end()) return joined(*it->second.room, *s);

    auto existing = rooms_.find(args.room);
    if (existing == rooms_.end()) {
      if (args.invite)
        return make_error(error_code::invite_invalid, "the invite is not valid: there is no room " + args.room,
                          json{{"room", args.room}});
      return create(*s, args.room, room_visibility::public_room, args.nickname, now);
    }
    room_state& r = existing->second;
    const std::string key = principal_key(*s);
    if (r.access.bans.count(key))
      return make_error(error_code::banned, "you are banned from " + args.room, json{{"room", args.room}});
    room_access next = r.access;
    if (r.access.visibility == room_visibility::private_room && !r.access.roles.count(key)) {
      if (!args.invite)
        return make_error(error_code::room_private,
                          args.room + " is private: join it with an invite, or knock to ask its owners",
                          json{{"room", args.room}});
      invite_state* invite = live_invite(next, *args.invite, now);
      if (!invite)
        return make_error(error_code::invite_invalid,
                          "the invite to " + args.room + " is not valid: unknown, expired or used up",
                          json{{"room", args.room}});
      ++invite->uses;
      next.roles[key] = invite->role;
    }
    if (auto taken = nickname_taken(r, args.nickname)) return tl::unexpected(*taken);
    // A room nobody owns (its session-principal owner left it empty, or it predates
    // owners) gets its next member as owner, so that it never stays unmoderated.
    if (!has_owner(r)) next.roles[key] = member_role::owner;
    if (auto saved = save_access(r, std::move(next)); !saved) return tl::unexpected(saved.error());
    note_principal_room(*s, r);
    return admit(r, *s, args.nickname);
  }

  // Our addition: a new room of either visibility, the caller its owner.
  [[nodiscard]] result<join_room_result> create_room(session_handle handle, const create_room_args& args,
                                                     const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (args.nickname)
      if (auto ok = check_nickname("nickname", *args.nickname); !ok) return tl::unexpected(ok.error());
    if (rooms_.count(args.room))
      return make_error(error_code::room_exists, args.room + " already exists; join it instead",
                        json{{"room", args.room}});
    return create(*s, args.room, args.visibility, args.nickname, now);
  }

  // Silent to the others: there are no presence events in the protocol.
  [[nodiscard]] result<leave_room_result> leave_room(session_handle handle, const leave_room_args& args,
                                                     const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    auto it = s->memberships.find(args.room);
    if (it == s->memberships.end()) return not_in_room(args.room);
    remove_member(*it->second.room, *s, now);
    s->memberships.erase(it);
    return leave_room_result{args.room};
  }

  [[nodiscard]] result<send_message_result> send_message(session_handle handle, const send_message_args& args,
                                                         const moment_type& now) {
    if (ordered_by_bus())
      return make_error(error_code::internal, "a cluster node answers a send through the bus: call it with a request id");
    auto sent = send(handle, args, now, nullptr);
    if (!sent) return tl::unexpected(sent.error());
    return std::move(**sent);
  }

  // ---- cluster: room messages ordered by a bus (room_bus.hpp) ------------------

  [[nodiscard]] bool ordered_by_bus() const noexcept { return !config_.node_id.empty(); }

  // A send on a cluster node, checked as send_message checks it and then handed to the
  // bus (take_published). nullopt: the answer reaches the sender's outbox later, as a
  // tool.ok under `request_id` once the bus has ordered the message (bus_delivered), or
  // a tool.err if the bus refused it (bus_refused). A retry under the same clientMsgId
  // is answered with the first send's result, or together with it while it is pending,
  // and a retry of a refused send publishes the same message again: the bus drops a
  // second copy by its message id, so an ambiguous refusal (the bus took it after all)
  // never delivers it twice.
  [[nodiscard]] result<std::optional<send_message_result>> send_message(session_handle handle,
                                                                        const send_message_args& args,
                                                                        const moment_type& now,
                                                                        const std::string& request_id) {
    return send(handle, args, now, &request_id);
  }

  // The messages sent here since the last call, in send order, for the host to publish.
  void take_published(std::vector<bus_message>& into) {
    into.clear();
    into.swap(published_);
  }

  // One message of the bus, in the bus's order, whichever node sent it: delivered to
  // this hub's members of its room (never to the session that sent it), and, when
  // this node sent it, answered to its sender. A seq at or below the room's latest is
  // delivered to nobody, since a seq never goes back: it is a redelivery, or the bus lost
  // its log and started its numbering again. Returns false for such a record, which the
  // host must report: in the second case the room's messages are being lost.
  bool bus_delivered(const bus_message& m, std::uint64_t seq, const moment_type& now) {
    touch(now);
    bool in_order = true;
    auto it = rooms_.find(m.room);
    if (it != rooms_.end() && seq <= it->second.last_seq) {
      in_order = false;
      ++stats_.bus_records_behind_total;
    } else if (it != rooms_.end()) {
      room_state& r = it->second;
      r.last_seq = seq;
      r.used = true;
      cancel_expiry(r);
      std::string text = encode_room_message(
          room_message_frame{m.room, seq, m.message_id, m.from_nickname, m.body, m.sent_at, m.from_kind});
      const shared_frame frame = make_shared_frame(frame_encoding::encode(std::move(text)));
      ++stats_.messages_total;
      for (member& to : r.members) {
        if (to.session->id == m.session_id) continue;  // on whichever node the sender is now, no echo
        to.session->memberships.find(m.room)->second.ring.push(seq, frame);
        if (to.session->attached) enqueue(*to.session, frame);
      }
    }
    if (m.node != config_.node_id) return in_order;
    if (!in_order) {
      bus_refused(m.message_id);  // its sender hears that it went nowhere
      return false;
    }
    auto p = pending_.find(m.message_id);
    if (p == pending_.end()) return in_order;
    pending_send sent = std::move(p->second);
    forget_pending(p);
    session_state* s = find(sent.session);
    if (!s) return in_order;
    send_message_result result{m.room, seq, m.message_id, m.sent_at};
    if (sent.client_msg_id) s->sent.remember(*sent.client_msg_id, result, now.monotonic);
    for (const std::string& id : sent.request_ids) answer(*s, encode_tool_ok(id, json(result)));
    return in_order;
  }

  // The bus would not take a message this node published (unreachable, or no answer in
  // time): its sender hears so. It may have been taken after all; a retry under the
  // same clientMsgId publishes the same message, which the bus then drops as a copy.
  void bus_refused(std::string_view message_id) {
    auto p = pending_.find(message_id);
    if (p == pending_.end() || p->second.refused) return;
    session_state* s = find(p->second.session);
    const error e{error_code::internal,
                  "could not send: the cluster did not confirm the message; retry with the same clientMsgId", nullptr};
    if (s)
      for (const std::string& id : p->second.request_ids) answer(*s, encode_tool_err(id, e));
    p->second.request_ids.clear();
    // Without a clientMsgId no retry can name it: nothing more to keep.
    if (!p->second.client_msg_id) return forget_pending(p);
    p->second.refused = true;
  }

  [[nodiscard]] std::size_t pending_sends() const noexcept { return pending_.size(); }

 private:
  [[nodiscard]] result<std::optional<send_message_result>> send(session_handle handle, const send_message_args& args,
                                                               const moment_type& now, const std::string* request_id) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (auto ok = check_body(args.body, config_.max_body_bytes); !ok) return tl::unexpected(ok.error());
    if (args.client_msg_id) {
      if (auto ok = check_client_msg_id(*args.client_msg_id); !ok) return tl::unexpected(ok.error());
      // A retry returns the first result, delivers nothing and spends no token.
      if (const send_message_result* first = s->sent.find(*args.client_msg_id)) return *first;
      if (auto p = pending_by_key_.find({handle, *args.client_msg_id}); p != pending_by_key_.end())
        return retry_pending(pending_.find(p->second)->second, *request_id);
    }
    auto it = s->memberships.find(args.room);
    if (it == s->memberships.end()) return not_in_room(args.room);
    if (role_of(*it->second.room, *s) == member_role::watcher)
      return make_error(error_code::forbidden, "watchers may read " + args.room + " but not send there",
                        json{{"room", args.room}, {"role", "watcher"}});
    const member* recipient = nullptr;
    if (args.to) {
      auto found = direct_recipient(*s, *it->second.room, *args.to);
      if (!found) return tl::unexpected(found.error());
      recipient = *found;
    }
    if (auto wait = s->bucket.try_take(now.monotonic)) {
      ++stats_.rate_limited_total;
      return make_error(error_code::rate_limited,
                        "rate limited: retry after " + std::to_string(wait->count()) + " ms",
                        json{{"retryAfterMs", wait->count()}});
    }
    room_state& r = *it->second.room;
    if (recipient) return send_direct(*s, it->second, *recipient, args, now);
    if (ordered_by_bus()) return publish(*s, it->second, args, *request_id, now);
    auto seq = next_seq(r);
    if (!seq) return tl::unexpected(seq.error());

    send_message_result sent{args.room, *seq, uuid_v7(now.wall, random_), format_rfc3339(now.wall)};
    std::string text = encode_room_message(
        room_message_frame{args.room, sent.seq, sent.message_id, it->second.nickname, args.body, sent.sent_at, s->kind});
    const shared_frame frame = make_shared_frame(frame_encoding::encode(std::move(text)));
    ++stats_.messages_total;
    for (member& m : r.members) {
      if (m.session == s) continue;  // the sender's confirmation is this result, never an echo
      m.session->memberships.find(args.room)->second.ring.push(sent.seq, frame);
      if (m.session->attached) enqueue(*m.session, frame);
    }
    if (args.client_msg_id) s->sent.remember(*args.client_msg_id, sent, now.monotonic);
    return sent;
  }

 public:

  // One page of every room in name order, each in `joined` or `available`; the page
  // after `cursor` (the previous page's last name), of `limit` rooms or the default.
  [[nodiscard]] result<list_rooms_result> list_rooms(session_handle handle, const list_rooms_args& args = {}) const {
    const session_state* s = find(handle);
    if (!s) return no_session();
    if (args.limit)
      if (auto ok = check_limit(*args.limit, max_list_rooms_limit); !ok) return tl::unexpected(ok.error());
    if (args.cursor)
      if (auto ok = check_room_cursor(*args.cursor); !ok) return tl::unexpected(ok.error());
    const std::size_t page = args.limit.value_or(default_list_rooms_page);
    list_rooms_result out;
    const std::string key = principal_key(*s);
    // A private room is listed only to its members and to principals admitted to it.
    auto listed = [&](const room_state& r) {
      return r.access.visibility == room_visibility::public_room || s->memberships.count(r.name) ||
             r.access.roles.count(key);
    };
    auto it = args.cursor ? rooms_.upper_bound(*args.cursor) : rooms_.begin();
    std::size_t n = 0;
    const std::string* last = nullptr;
    for (; it != rooms_.end(); ++it) {
      const auto& [name, r] = *it;
      if (!listed(r)) continue;
      if (n == page) break;
      ++n;
      last = &name;
      if (auto m = s->memberships.find(name); m != s->memberships.end())
        out.joined.push_back(joined_room{name, m->second.nickname, r.members.size(), role_of(r, *s), r.access.visibility});
      else
        out.available.push_back(available_room{name, r.members.size(), r.access.visibility});
    }
    if (it != rooms_.end() && last) out.next_cursor = *last;
    return out;
  }

  // One page of the members in join order, after `cursor` (a position in that order).
  [[nodiscard]] result<who_is_here_result> who_is_here(session_handle handle, const who_is_here_args& args) const {
    const session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (args.limit)
      if (auto ok = check_limit(*args.limit, max_who_is_here_limit); !ok) return tl::unexpected(ok.error());
    std::uint64_t after = 0;
    if (args.cursor) {
      auto c = parse_member_cursor(*args.cursor);
      if (!c) return tl::unexpected(c.error());
      after = *c;
    }
    auto it = s->memberships.find(args.room);
    if (it == s->memberships.end()) return not_in_room(args.room);
    const auto& members = it->second.room->members;
    const std::size_t page = args.limit.value_or(default_who_is_here_page);
    who_is_here_result out{args.room, {}};
    auto m = std::partition_point(members.begin(), members.end(), [&](const member& x) { return x.joined <= after; });
    for (std::size_t n = 0; m != members.end() && n < page; ++m, ++n) {
      out.nicknames.push_back(m->nickname);
      out.members.push_back(member_entry{m->nickname, m->session->kind, role_of(*it->second.room, *m->session)});
    }
    if (m != members.end()) out.next_cursor = std::to_string(std::prev(m)->joined);
    return out;
  }

  // ---- owners' tools (our addition) -----------------------------------------

  // A code of 192 random bits; the room keeps its SHA-256 only.
  [[nodiscard]] result<invite_result> invite(session_handle handle, const invite_args& args, const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    auto owned = owned_room(*s, args.room, "invite");
    if (!owned) return tl::unexpected(owned.error());
    room_state& r = **owned;
    if (args.role == member_role::owner)
      return make_error(error_code::invalid_argument, "an invite admits a member or a watcher; make owners with set_role",
                        json{{"field", "role"}, {"rule", "one of member, watcher"}});
    if (args.max_uses)
      if (auto ok = check_count("maxUses", *args.max_uses, max_invite_uses); !ok) return tl::unexpected(ok.error());
    if (args.expires_in_s)
      if (auto ok = check_count("expiresInS", *args.expires_in_s, max_invite_lifetime_s); !ok)
        return tl::unexpected(ok.error());
    room_access next = r.access;
    const std::int64_t now_ms = wall_ms(now);
    next.invites.erase(std::remove_if(next.invites.begin(), next.invites.end(),
                                      [&](const invite_state& i) { return !usable(i, now_ms); }),
                       next.invites.end());
    if (next.invites.size() >= config_.max_live_invites)
      return make_error(error_code::invalid_argument,
                        args.room + " has " + std::to_string(next.invites.size()) +
                            " live invites, the most a room may have; wait for some to expire or be used up",
                        json{{"field", "room"}, {"rule", "at most " + std::to_string(config_.max_live_invites) + " live invites"}});
    if (auto wait = principal_budget(invite_buckets_, config_.invites, *s, now).try_take(now.monotonic))
      return make_error(error_code::rate_limited, "making invites too fast: retry after " + std::to_string(wait->count()) + " ms",
                        json{{"retryAfterMs", wait->count()}});
    std::string code = random_token(random_, 24);
    const std::int64_t lifetime_ms = std::int64_t{args.expires_in_s.value_or(default_invite_lifetime_s)} * 1000;
    next.invites.push_back(invite_state{sha256_hex(code), args.role, args.max_uses, 0, now_ms + lifetime_ms});
    if (auto saved = save_access(r, std::move(next)); !saved) return tl::unexpected(saved.error());
    const auto expires = now.wall + std::chrono::duration_cast<typename decltype(now.wall)::duration>(
                                        std::chrono::milliseconds(lifetime_ms));
    return invite_result{args.room, std::move(code), format_rfc3339(expires), args.role, args.max_uses};
  }

  // kick: the member's principal is out (every session of it, since roles belong to
  // principals) and may come back (to a private room, with a new invite). ban: out too,
  // and the principal may not come back under any nickname until unbanned. unban names
  // the nickname the principal had when banned.
  [[nodiscard]] result<member_action_result> act_on_member(session_handle handle, const member_action_args& args,
                                                           const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    const char* verb = args.action == member_action::kick ? "kick" : args.action == member_action::ban ? "ban" : "unban";
    auto owned = owned_room(*s, args.room, verb);
    if (!owned) return tl::unexpected(owned.error());
    room_state& r = **owned;
    if (auto ok = check_nickname("nickname", args.nickname); !ok) return tl::unexpected(ok.error());
    room_access next = r.access;
    if (args.action == member_action::unban) {
      auto ban = std::find_if(next.bans.begin(), next.bans.end(),
                              [&](const auto& b) { return fold_nickname(b.second) == fold_nickname(args.nickname); });
      if (ban == next.bans.end())
        return make_error(error_code::not_found, "nobody banned from " + args.room + " was called " + args.nickname,
                          json{{"room", args.room}, {"nickname", args.nickname}});
      std::string nickname = ban->second;
      next.bans.erase(ban);
      if (auto saved = save_access(r, std::move(next)); !saved) return tl::unexpected(saved.error());
      return member_action_result{args.room, std::move(nickname)};
    }
    auto target = member_named(r, args.nickname);
    if (!target) return tl::unexpected(target.error());
    session_state& t = *(*target)->session;
    // Another session of the caller's own principal is the caller: roles and bans are the principal's.
    if (principal_key(t) == principal_key(*s))
      return make_error(error_code::invalid_argument, std::string("you cannot ") + verb + " yourself; leave_room instead",
                        json{{"field", "nickname"}, {"rule", "another member's nickname"}});
    const std::string target_key = principal_key(t);
    const std::string nickname = (*target)->nickname;
    next.roles.erase(target_key);
    if (args.action == member_action::ban) next.bans[target_key] = nickname;
    if (auto saved = save_access(r, std::move(next)); !saved) return tl::unexpected(saved.error());
    note_principal_room(t, r);
    std::vector<session_state*> out{&t};
    for (member& m : r.members)
      if (m.session != &t && principal_key(*m.session) == target_key) out.push_back(m.session);
    for (session_state* gone : out) {
      remove_membership(*gone, r, now);
      send_event(*gone, room_event_frame{args.room, args.action == member_action::ban ? "banned" : "kicked", json::object()});
    }
    ensure_owner(r, now);
    return member_action_result{args.room, nickname};
  }

  [[nodiscard]] result<set_role_result> set_role(session_handle handle, const set_role_args& args, const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    auto owned = owned_room(*s, args.room, "set_role");
    if (!owned) return tl::unexpected(owned.error());
    room_state& r = **owned;
    if (auto ok = check_nickname("nickname", args.nickname); !ok) return tl::unexpected(ok.error());
    auto target = member_named(r, args.nickname);
    if (!target) return tl::unexpected(target.error());
    session_state& t = *(*target)->session;
    if (principal_key(t) == principal_key(*s))
      return make_error(error_code::invalid_argument,
                        "you cannot change your own role; make another owner first, and let them change it",
                        json{{"field", "nickname"}, {"rule", "another member's nickname"}});
    room_access next = r.access;
    next.roles[principal_key(t)] = args.role;
    if (auto saved = save_access(r, std::move(next)); !saved) return tl::unexpected(saved.error());
    note_principal_room(t, r);
    send_event(t, room_event_frame{args.room, "role", json{{"role", to_string(args.role)}}});
    return set_role_result{args.room, (*target)->nickname, args.role};
  }

  // Asks a private room's owners to let the caller in; they hear of it as a "knock" event.
  // A second knock on the same room returns the pending one.
  [[nodiscard]] result<knock_result> knock(session_handle handle, const knock_args& args, const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (args.nickname)
      if (auto ok = check_nickname("nickname", *args.nickname); !ok) return tl::unexpected(ok.error());
    if (args.note)
      if (auto ok = check_knock_note(*args.note); !ok) return tl::unexpected(ok.error());
    auto it = rooms_.find(args.room);
    if (it == rooms_.end())
      return make_error(error_code::not_found, "there is no room " + args.room, json{{"room", args.room}});
    room_state& r = it->second;
    const std::string key = principal_key(*s);
    if (s->memberships.count(args.room))
      return make_error(error_code::invalid_argument, "you are already in " + args.room,
                        json{{"field", "room"}, {"rule", "a room you are not in"}});
    if (r.access.bans.count(key))
      return make_error(error_code::banned, "you are banned from " + args.room, json{{"room", args.room}});
    if (r.access.visibility == room_visibility::public_room || r.access.roles.count(key))
      return make_error(error_code::invalid_argument, "you may join " + args.room + " without knocking: use join_room",
                        json{{"field", "room"}, {"rule", "a private room you are not admitted to"}});
    if (auto pending = s->knocks.find(args.room); pending != s->knocks.end()) return knock_result{args.room, pending->second};
    if (r.knocks.size() >= config_.max_pending_knocks)
      return make_error(error_code::rate_limited,
                        args.room + " has " + std::to_string(r.knocks.size()) + " knocks waiting; try again later",
                        json{{"retryAfterMs", std::chrono::duration_cast<milliseconds>(config_.knock_ttl).count()}});
    if (auto wait = principal_budget(knock_buckets_, config_.knocks, *s, now).try_take(now.monotonic))
      return make_error(error_code::rate_limited, "knocking too fast: retry after " + std::to_string(wait->count()) + " ms",
                        json{{"retryAfterMs", wait->count()}});
    std::string nickname =
        args.nickname ? *args.nickname
                      : allocate_nickname(random_, [&](const std::string& folded) { return r.by_folded.count(folded) > 0; });
    std::string id = random_token(random_, 16);
    const monotonic_time expires = now.monotonic + config_.knock_ttl;
    r.knocks.emplace(id, knock_state{handle, nickname, args.note, expires});
    s->knocks.emplace(args.room, id);
    knock_deadlines_.emplace(expires, std::make_pair(args.room, id));
    json event{{"knockId", id}, {"nickname", nickname}};
    if (args.note) event["note"] = *args.note;
    for (member& m : r.members)
      if (role_of(r, *m.session) == member_role::owner) send_event(*m.session, room_event_frame{args.room, "knock", event});
    return knock_result{args.room, std::move(id)};
  }

  // approve admits the knocker as a member (under the nickname it asked for, or a free
  // one if that was taken meanwhile); deny tells it no. Either way the knock is gone.
  [[nodiscard]] result<knock_answer_result> answer_knock(session_handle handle, const knock_answer_args& args,
                                                         const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    auto owned = owned_room(*s, args.room, args.approve ? "approve" : "deny");
    if (!owned) return tl::unexpected(owned.error());
    room_state& r = **owned;
    if (auto ok = check_knock_id(args.knock_id); !ok) return tl::unexpected(ok.error());
    auto k = r.knocks.find(args.knock_id);
    session_state* knocker = k == r.knocks.end() ? nullptr : find(k->second.knocker);
    if (!knocker)
      return make_error(error_code::not_found,
                        "no knock " + args.knock_id + " is waiting in " + args.room + " (answered, expired or withdrawn)",
                        json{{"room", args.room}, {"knockId", args.knock_id}});
    std::string nickname = k->second.nickname;
    if (args.approve && !knocker->memberships.count(r.name)) {
      room_access next = r.access;
      next.roles.emplace(principal_key(*knocker), member_role::member);
      if (auto saved = save_access(r, std::move(next)); !saved) return tl::unexpected(saved.error());
      note_principal_room(*knocker, r);
      std::optional<std::string> wanted;
      if (!r.by_folded.count(fold_nickname(nickname))) wanted = nickname;
      nickname = admit(r, *knocker, wanted).nickname;
    }
    forget_knock(r, args.knock_id);
    if (args.approve)
      send_event(*knocker, room_event_frame{args.room, "approved", json{{"nickname", nickname}, {"membersCount", r.members.size()}}});
    else
      send_event(*knocker, room_event_frame{args.room, "denied", json::object()});
    return knock_answer_result{args.room, args.knock_id, std::move(nickname)};
  }

  // Cumulative per room. Acks for rooms the session is not in are ignored: a leave
  // may cross an ack in flight. An ack past the room's latest seq is refused and
  // changes nothing: accepted, it would make a later resume silently replay nothing.
  [[nodiscard]] result<void> ack(session_handle handle, const ack_frame& a) {
    return ack(handle, a.room, a.seq, a.direct);
  }

  // The same for an ack read in place (decode_canonical_ack's ack_view): nothing is copied.
  [[nodiscard]] result<void> ack(session_handle handle, std::string_view room, std::uint64_t seq, bool direct) {
    session_state* s = find(handle);
    if (!s) return no_session();
    auto it = s->memberships.find(room);
    if (it == s->memberships.end()) return {};
    if (direct) {
      if (seq > it->second.direct_seq) return future_seq(room, seq, it->second.direct_seq);
      it->second.direct_ring.ack(seq);
      return {};
    }
    if (seq > it->second.room->last_seq) return future_seq(room, seq, it->second.room->last_seq);
    it->second.ring.ack(seq);
    return {};
  }

  // ---- deliveries -----------------------------------------------------------

  // Sessions whose outbox became non-empty since the last call, each listed once.
  [[nodiscard]] std::vector<session_handle> take_ready() {
    std::vector<session_handle> out;
    take_ready(out);
    return out;
  }

  // The same into a caller's vector, cleared first; the buffers swap, so a caller that
  // keeps its vector allocates nothing once both have grown.
  void take_ready(std::vector<session_handle>& into) {
    into.clear();
    into.swap(ready_);
    for (session_handle h : into)
      if (session_state* s = find(h)) s->ready_listed = false;
  }

  // The frames queued for an attached session, oldest first.
  [[nodiscard]] std::vector<shared_frame> drain(session_handle handle) {
    std::vector<shared_frame> out;
    drain(handle, out);
    return out;
  }

  // The same into a caller's vector, cleared first (its frames released); the buffers
  // swap, so the outbox keeps a capacity and a steady stream allocates nothing.
  void drain(session_handle handle, std::vector<shared_frame>& into) {
    into.clear();
    if (session_state* s = find(handle)) into.swap(s->outbox);
  }

  // ---- inspection ---------------------------------------------------------

  [[nodiscard]] hub_stats stats() const {
    hub_stats st = stats_;
    st.sessions = sessions_.size();
    st.rooms = rooms_.size();
    for (const auto& [h, s] : sessions_) st.attached_sessions += s->attached ? 1 : 0;
    for (const auto& [n, r] : rooms_) st.memberships += r.members.size();
    return st;
  }

  [[nodiscard]] const std::map<std::string, room_state, std::less<>>& rooms() const noexcept { return rooms_; }
  [[nodiscard]] const session_state* session(session_handle handle) const { return find(handle); }
  [[nodiscard]] std::optional<session_handle> handle_of(std::string_view session_id) const {
    auto it = by_id_.find(std::string(session_id));
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
  }
  [[nodiscard]] const hub_config& config() const noexcept { return config_; }
  // Cheap, unlike stats(): a server reads it every tick to log expiries.
  [[nodiscard]] std::uint64_t rooms_expired_total() const noexcept { return stats_.rooms_expired_total; }

 private:
  basic_hub(store_type& store, random_type random, hub_config config)
      : store_(&store), random_(std::move(random)), config_(std::move(config)) {}

  session_state* find(session_handle handle) const {
    auto it = sessions_.find(handle);
    return it == sessions_.end() ? nullptr : it->second.get();
  }

  static tl::unexpected<error> no_session() {
    return make_error(error_code::internal, "the session has ended");
  }
  static tl::unexpected<error> not_in_room(const std::string& room) {
    return make_error(error_code::not_in_room, "not a member of " + room + "; join it first", json{{"room", room}});
  }

  static tl::unexpected<error> future_seq(std::string_view room, std::uint64_t seq, std::uint64_t latest) {
    return make_error(error_code::invalid_argument,
                      "seq " + std::to_string(seq) + " was never sent in " + std::string(room) + " (its latest is " +
                          std::to_string(latest) + "); nothing was acked",
                      json{{"field", "seq"}, {"rule", "at most the room's latest seq"}});
  }

  static bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
  }

  // A room the client names no ack for resumes from the server's own ack point.
  static std::uint64_t acked_after_resume(const resume_block& resume, std::string_view room, const membership& m) {
    auto it = resume.last_acked_seq_by_room.find(room);
    return it == resume.last_acked_seq_by_room.end() ? m.ring.acked() : it->second;
  }
  static std::uint64_t acked_direct_after_resume(const resume_block& resume, std::string_view room, const membership& m) {
    auto it = resume.last_acked_direct_seq_by_room.find(room);
    return it == resume.last_acked_direct_seq_by_room.end() ? m.direct_ring.acked() : it->second;
  }

  // An existing room, or a new one if the cap and the principal's budget allow: the
  // cap is checked first, so a refused creation spends no budget.
  result<room_state*> ensure_room(session_state& s, const std::string& name, const moment_type& now) {
    if (auto it = rooms_.find(name); it != rooms_.end()) return &it->second;
    if (rooms_.size() >= config_.max_rooms) {
      ++stats_.room_creations_refused_total;
      return make_error(error_code::room_limit,
                        "the server has " + std::to_string(rooms_.size()) + " rooms, its limit; " + name +
                            " cannot be created (existing rooms can still be joined)",
                        json{{"maxRooms", config_.max_rooms}});
    }
    if (auto wait = creation_budget(s, now).try_take(now.monotonic)) {
      ++stats_.room_creations_refused_total;
      return make_error(error_code::rate_limited,
                        "creating rooms too fast: retry after " + std::to_string(wait->count()) + " ms",
                        json{{"retryAfterMs", wait->count()}});
    }
    if (auto created = store_->create_room(name, now.wall); !created)
      return make_error(error_code::internal, "could not create room " + name + ": " + std::string(storage_failed));
    room_state& r = rooms_.emplace(name, room_state{}).first->second;
    r.name = name;
    return &r;
  }

  token_bucket<monotonic_time>& creation_budget(session_state& s, const moment_type& now) {
    if (s.principal.empty()) return s.room_bucket;
    auto it = principal_buckets_.find(s.principal);
    if (it == principal_buckets_.end())
      it = principal_buckets_
               .emplace(s.principal, token_bucket<monotonic_time>::per_minute(config_.room_creation, now.monotonic))
               .first;
    return it->second;
  }

  // Rooms loaded by open() start their TTL at the first call that brings the time.
  void touch(const moment_type& now) {
    if (unstamped_rooms_.empty()) return;
    for (const std::string& name : unstamped_rooms_)
      if (auto it = rooms_.find(name); it != rooms_.end()) schedule_expiry(it->second, now);
    unstamped_rooms_.clear();
  }

  // Only a room that is empty and was never written to expires: its name is all there is.
  void schedule_expiry(room_state& r, const moment_type& now) {
    if (config_.room_ttl.count() <= 0 || r.used || !r.members.empty() || r.expires_at) return;
    r.expires_at = now.monotonic + config_.room_ttl;
    room_deadlines_.emplace(*r.expires_at, r.name);
  }

  void cancel_expiry(room_state& r) {
    if (!r.expires_at) return;
    room_deadlines_.erase({*r.expires_at, r.name});
    r.expires_at.reset();
  }

  result<std::uint64_t> next_seq(room_state& r) {
    if (r.next_seq == r.seq_limit) {
      auto first = store_->reserve_seq_block(r.name, config_.seq_block_size);
      if (!first) return make_error(error_code::internal, "could not send: " + std::string(storage_failed));
      r.next_seq = *first;
      r.seq_limit = *first + config_.seq_block_size;
      r.used = true;
    }
    r.last_seq = r.next_seq;
    return r.next_seq++;
  }

  void remove_member(room_state& r, const session_state& s, const moment_type& now) {
    auto it = std::find_if(r.members.begin(), r.members.end(), [&](const member& m) { return m.session == &s; });
    if (it == r.members.end()) return;
    r.by_folded.erase(fold_nickname(it->nickname));
    r.members.erase(it);  // keeps join order for who_is_here
    schedule_expiry(r, now);
  }

  void enqueue(session_state& s, const shared_frame& frame) {
    s.outbox.push_back(frame);
    ++stats_.deliveries_total;
    list_ready(s);
  }

  void list_ready(session_state& s) {
    if (!s.ready_listed) {
      s.ready_listed = true;
      ready_.push_back(s.handle);
    }
  }

  // ---- rooms people control --------------------------------------------------

  static std::string principal_key(const session_state& s) {
    return s.principal.empty() ? "session:" + s.id : "token:" + s.principal;
  }
  static bool durable(std::string_view key) noexcept { return key.rfind("token:", 0) == 0; }

  static member_role role_of(const room_state& r, const session_state& s) {
    auto it = r.access.roles.find(principal_key(s));
    return it == r.access.roles.end() ? member_role::member : it->second;
  }

  static bool has_owner(const room_state& r) {
    return std::any_of(r.access.roles.begin(), r.access.roles.end(),
                       [](const auto& role) { return role.second == member_role::owner; });
  }

  static std::int64_t wall_ms(const moment_type& now) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now.wall.time_since_epoch()).count();
  }

  static bool usable(const invite_state& i, std::int64_t now_ms) {
    return now_ms < i.expires_at_ms && (!i.max_uses || i.uses < *i.max_uses);
  }

  // The live invite whose code this is, compared by hash in constant time with each.
  static invite_state* live_invite(room_access& access, std::string_view code, const moment_type& now) {
    const std::string hash = sha256_hex(code);
    invite_state* found = nullptr;
    for (invite_state& i : access.invites)
      if (constant_time_equal(i.code_hash, hash)) found = &i;
    return found && usable(*found, wall_ms(now)) ? found : nullptr;
  }

  join_room_result joined(const room_state& r, const session_state& s) const {
    return join_room_result{r.name, s.memberships.at(r.name).nickname, r.members.size(), role_of(r, s),
                            r.access.visibility};
  }

  std::optional<error> nickname_taken(const room_state& r, const std::optional<std::string>& nickname) const {
    if (!nickname || !r.by_folded.count(fold_nickname(*nickname))) return std::nullopt;
    return error{error_code::nickname_taken,
                 "the nickname " + *nickname + " is taken in " + r.name + "; pick another",
                 json{{"room", r.name}, {"nickname", *nickname}}};
  }

  // Makes the room (within the cap and the principal's budget) with the caller its owner.
  result<join_room_result> create(session_state& s, const std::string& name, room_visibility visibility,
                                  const std::optional<std::string>& nickname, const moment_type& now) {
    auto room = ensure_room(s, name, now);
    if (!room) return tl::unexpected(room.error());
    room_state& r = **room;
    room_access next;
    next.visibility = visibility;
    next.roles[principal_key(s)] = member_role::owner;
    if (auto saved = save_access(r, std::move(next)); !saved) {
      (void)store_->delete_room(name, now.wall);  // undo the creation; if that fails too, a restart finds a public room
      rooms_.erase(name);
      return tl::unexpected(saved.error());
    }
    note_principal_room(s, r);
    return admit(r, s, nickname);
  }

  join_room_result admit(room_state& r, session_state& s, const std::optional<std::string>& nickname) {
    std::string name =
        nickname ? *nickname
                 : allocate_nickname(random_, [&](const std::string& folded) { return r.by_folded.count(folded) > 0; });
    r.members.push_back(member{&s, name, ++r.joins});
    r.by_folded.emplace(fold_nickname(name), s.handle);
    cancel_expiry(r);
    s.memberships.emplace(r.name, membership{&r, name, replay_ring(config_.replay_capacity),
                                             replay_ring(config_.replay_capacity), 0});
    return joined(r, s);
  }

  // A session principal's roles and bans are forgotten when its session ends.
  static void note_principal_room(session_state& s, const room_state& r) {
    if (s.principal.empty()) s.principal_rooms.insert(r.name);
  }

  result<room_state*> owned_room(session_state& s, const std::string& room, const char* tool) {
    if (auto ok = check_room_slug("room", room); !ok) return tl::unexpected(ok.error());
    auto it = s.memberships.find(room);
    if (it == s.memberships.end()) return not_in_room(room);
    if (role_of(*it->second.room, s) != member_role::owner)
      return make_error(error_code::forbidden, std::string("only an owner of ") + room + " may " + tool,
                        json{{"room", room}, {"role", to_string(role_of(*it->second.room, s))}});
    return it->second.room;
  }

  result<const member*> member_named(const room_state& r, const std::string& nickname) const {
    auto it = r.by_folded.find(fold_nickname(nickname));
    if (it != r.by_folded.end())
      for (const member& m : r.members)
        if (m.session->handle == it->second) return &m;
    return make_error(error_code::not_found, "nobody in " + r.name + " is called " + nickname,
                      json{{"room", r.name}, {"nickname", nickname}});
  }

  token_bucket<monotonic_time>& principal_budget(std::map<std::string, token_bucket<monotonic_time>, std::less<>>& buckets,
                                                 per_minute_budget budget, const session_state& s, const moment_type& now) {
    const std::string key = principal_key(s);
    auto it = buckets.find(key);
    if (it == buckets.end())
      it = buckets.emplace(key, token_bucket<monotonic_time>::per_minute(budget, now.monotonic)).first;
    return it->second;
  }

  // Writes the room's access when what the store keeps of it changes, then adopts it;
  // on a store failure nothing changes.
  result<void> save_access(room_state& r, room_access next) {
    std::string text = serialize_access(next);
    if (text != r.saved_access) {
      if (!store_->save_room_access(r.name, text))
        return make_error(error_code::internal, "could not change " + r.name + ": " + std::string(storage_failed));
      r.saved_access = std::move(text);
    }
    r.access = std::move(next);
    return {};
  }

  // Only what outlives a session: the visibility, durable principals' roles and bans, invites.
  static std::string serialize_access(const room_access& a) {
    json roles = json::object();
    for (const auto& [key, role] : a.roles)
      if (durable(key)) roles[key] = to_string(role);
    json bans = json::object();
    for (const auto& [key, nickname] : a.bans)
      if (durable(key)) bans[key] = nickname;
    json invites = json::array();
    for (const auto& i : a.invites) {
      json entry{{"hash", i.code_hash}, {"role", to_string(i.role)}, {"uses", i.uses}, {"expiresAtMs", i.expires_at_ms}};
      if (i.max_uses) entry["maxUses"] = *i.max_uses;
      invites.push_back(std::move(entry));
    }
    if (a.visibility == room_visibility::public_room && roles.empty() && bans.empty() && invites.empty()) return {};
    return json{{"visibility", to_string(a.visibility)}, {"roles", roles}, {"bans", bans}, {"invites", invites}}.dump();
  }

  // What serialize_access wrote; anything unreadable reads as nothing (public, no roles),
  // except that a record naming itself private stays private.
  static room_access parse_access(std::string_view text) {
    room_access a;
    if (text.empty()) return a;
    const json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (!j.is_object()) return a;
    if (j.value("visibility", std::string()) == "private") a.visibility = room_visibility::private_room;
    if (auto roles = j.find("roles"); roles != j.end() && roles->is_object())
      for (const auto& [key, role] : roles->items())
        if (role.is_string())
          if (auto r = parse_member_role(role.template get<std::string>())) a.roles[key] = *r;
    if (auto bans = j.find("bans"); bans != j.end() && bans->is_object())
      for (const auto& [key, nickname] : bans->items())
        if (nickname.is_string()) a.bans[key] = nickname.template get<std::string>();
    if (auto invites = j.find("invites"); invites != j.end() && invites->is_array())
      for (const auto& i : *invites) {
        if (!i.is_object() || !i.contains("hash") || !i["hash"].is_string()) continue;
        invite_state inv;
        inv.code_hash = i["hash"].get<std::string>();
        inv.role = parse_member_role(i.value("role", std::string("member"))).value_or(member_role::member);
        inv.uses = i.value("uses", std::uint32_t{0});
        inv.expires_at_ms = i.value("expiresAtMs", std::int64_t{0});
        if (i.contains("maxUses") && i["maxUses"].is_number_unsigned()) inv.max_uses = i["maxUses"].get<std::uint32_t>();
        a.invites.push_back(std::move(inv));
      }
    return a;
  }

  // No room is left where nobody can ever admit anyone: with members and no owner, the
  // member present longest becomes one; private, empty and ownerless, the room goes.
  void ensure_owner(room_state& r, const moment_type& now) {
    if (has_owner(r)) return;
    if (!r.members.empty()) {
      session_state& heir = *r.members.front().session;
      room_access next = r.access;
      next.roles[principal_key(heir)] = member_role::owner;
      if (!save_access(r, std::move(next))) return;  // the store failed: tried again at the next change
      note_principal_room(heir, r);
      send_event(heir, room_event_frame{r.name, "role", json{{"role", "owner"}}});
      return;
    }
    if (r.access.visibility != room_visibility::private_room) return;
    if (!store_->delete_room(r.name, now.wall)) return;
    drop_room(r);
  }

  void remove_membership(session_state& s, room_state& r, const moment_type& now) {
    remove_member(r, s, now);
    s.memberships.erase(r.name);
  }

  result<const member*> direct_recipient(const session_state& s, const room_state& r, const std::string& to) const {
    if (auto ok = check_nickname("to", to); !ok) return tl::unexpected(ok.error());
    auto target = member_named(r, to);
    if (!target) return target;
    if ((*target)->session == &s)
      return make_error(error_code::invalid_argument, "you cannot send a direct message to yourself",
                        json{{"field", "to"}, {"rule", "another member's nickname"}});
    if (!(*target)->session->direct_messages)
      return make_error(error_code::forbidden,
                        (*target)->nickname + "'s client cannot take direct messages; write to the room instead",
                        json{{"room", r.name}, {"nickname", (*target)->nickname}});
    return target;
  }

  // One recipient, a seq in its own direct stream of the room: the others see no gap,
  // since room seqs are not spent. Replayed and acked as room messages are, apart.
  result<send_message_result> send_direct(session_state& s, membership& from, const member& to,
                                          const send_message_args& args, const moment_type& now) {
    membership& m = to.session->memberships.find(args.room)->second;
    const std::uint64_t seq = ++m.direct_seq;
    send_message_result sent{args.room, seq, uuid_v7(now.wall, random_), format_rfc3339(now.wall), to.nickname};
    const shared_frame frame = make_shared_frame(frame_encoding::encode(encode_direct_message(
        room_message_frame{args.room, seq, sent.message_id, from.nickname, args.body, sent.sent_at, s.kind, to.nickname})));
    ++stats_.messages_total;
    m.direct_ring.push(seq, frame);
    if (to.session->attached) enqueue(*to.session, frame);
    if (args.client_msg_id) s.sent.remember(*args.client_msg_id, sent, now.monotonic);
    return sent;
  }

  // The room is gone from the store: its knocks are withdrawn, then it goes from memory.
  void drop_room(room_state& r) {
    while (!r.knocks.empty()) {
      const std::string id = r.knocks.begin()->first;
      if (session_state* knocker = find(r.knocks.begin()->second.knocker))
        send_event(*knocker, room_event_frame{r.name, "denied", json::object()});
      forget_knock(r, id);
    }
    cancel_expiry(r);
    const std::string name = r.name;  // not the key of the node being erased
    rooms_.erase(name);
  }

  void forget_knock(room_state& r, const std::string& id) {
    auto k = r.knocks.find(id);
    if (k == r.knocks.end()) return;
    knock_deadlines_.erase({k->second.expires, {r.name, id}});
    if (session_state* knocker = find(k->second.knocker)) knocker->knocks.erase(r.name);
    r.knocks.erase(k);
  }

  // Events reach an attached session at once; a detached one gets them when it resumes,
  // the latest max_held_events of them, and a "missed" count per room for the rest.
  void send_event(session_state& s, const room_event_frame& e) {
    shared_frame frame = make_shared_frame(frame_encoding::encode(encode_room_event(e)));
    if (s.attached) return enqueue(s, frame);
    s.held_events.emplace_back(e.room, std::move(frame));
    if (s.held_events.size() > config_.max_held_events) {
      ++s.missed_events[s.held_events.front().first];
      s.held_events.pop_front();
    }
  }

  // ---- cluster ------------------------------------------------------------------

  // A message this node published and the bus has not yet delivered back.
  struct pending_send {
    session_handle session = 0;
    std::vector<std::string> request_ids;  // the send and its retries, each to be answered
    bus_message message;
    std::optional<std::string> client_msg_id;
    bool refused = false;  // the bus refused it; kept so a retry publishes the same message
  };

  std::optional<send_message_result> publish(session_state& s, const membership& from, const send_message_args& args,
                                             const std::string& request_id, const moment_type& now) {
    bus_message m{args.room,           uuid_v7(now.wall, random_), from.nickname, s.kind, args.body,
                  format_rfc3339(now.wall), config_.node_id,       s.id};
    published_.push_back(m);
    if (args.client_msg_id) pending_by_key_.emplace(std::pair{s.handle, *args.client_msg_id}, m.message_id);
    std::string id = m.message_id;
    pending_.emplace(std::move(id), pending_send{s.handle, {request_id}, std::move(m), args.client_msg_id});
    return std::nullopt;
  }

  // A retry spends no token: it rides on the first send, or republishes it if refused.
  std::optional<send_message_result> retry_pending(pending_send& p, const std::string& request_id) {
    p.request_ids.push_back(request_id);
    if (std::exchange(p.refused, false)) published_.push_back(p.message);
    return std::nullopt;
  }

  template <class Iterator>
  void forget_pending(Iterator p) {
    if (p->second.client_msg_id) pending_by_key_.erase({p->second.session, *p->second.client_msg_id});
    pending_.erase(p);
  }

  void forget_pending_of(session_handle handle) {
    if (pending_.empty()) return;
    for (auto p = pending_.begin(); p != pending_.end();) {
      auto next = std::next(p);
      if (p->second.session == handle) forget_pending(p);
      p = next;
    }
  }

  // A send's answer, to an attached sender only: a detached one retries after resuming
  // and the idempotency window answers it.
  void answer(session_state& s, std::string text) {
    if (!s.attached) return;
    s.outbox.push_back(make_shared_frame(frame_encoding::encode(std::move(text))));
    list_ready(s);
  }

  store_type* store_;
  random_type random_;
  hub_config config_;
  std::map<std::string, room_state, std::less<>> rooms_;
  std::unordered_map<session_handle, std::unique_ptr<session_state>> sessions_;
  std::unordered_map<std::string, session_handle> by_id_;
  std::set<std::pair<monotonic_time, session_handle>> deadlines_;
  std::set<std::pair<monotonic_time, std::string>> room_deadlines_;  // empty, unused rooms by expiry
  std::vector<std::string> unstamped_rooms_;                         // loaded, waiting for the time
  std::map<std::string, token_bucket<monotonic_time>, std::less<>> principal_buckets_;  // by token label
  std::map<std::string, token_bucket<monotonic_time>, std::less<>> invite_buckets_;     // by principal key
  std::map<std::string, token_bucket<monotonic_time>, std::less<>> knock_buckets_;      // by principal key
  std::set<std::pair<monotonic_time, std::pair<std::string, std::string>>> knock_deadlines_;  // (room, knockId)
  std::vector<session_handle> ready_;
  std::vector<bus_message> published_;                                      // for the host to publish
  std::map<std::string, pending_send, std::less<>> pending_;                // by message id
  std::map<std::pair<session_handle, std::string>, std::string> pending_by_key_;  // (sender, clientMsgId) → message id
  session_handle last_handle_ = 0;
  hub_stats stats_{};
};

using hub = basic_hub<default_policy>;

}  // namespace parley
