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
#pragma once

#include "clock.hpp"
#include "error.hpp"
#include "idempotency_window.hpp"
#include "nickname_generator.hpp"
#include "policy.hpp"
#include "replay_ring.hpp"
#include "room_store.hpp"
#include "shared_frame.hpp"
#include "token_bucket.hpp"
#include "uuid.hpp"
#include "version.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
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
  };

  struct membership {
    room_state* room;
    std::string nickname;
    replay_ring ring;
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
      // Their TTL starts at the first call that brings the time (a server's first tick).
      if (!room.used && h.config_.room_ttl.count() > 0) h.unstamped_rooms_.push_back(r.name);
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
  [[nodiscard]] session_grant open_session(const moment_type& now, std::string principal = {},
                                           member_kind kind = member_kind::agent) {
    touch(now);
    const session_handle handle = ++last_handle_;
    auto s = std::make_unique<session_state>(session_state{
        handle, uuid_v4(random_), random_token(random_, 32), true, {}, {},
        token_bucket<monotonic_time>(config_.rate, now.monotonic),
        idempotency_window<send_message_result, monotonic_time>(config_.idempotency), {}, false, std::move(principal),
        token_bucket<monotonic_time>::per_minute(config_.room_creation, now.monotonic), kind});
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
    detach(s.handle, now);
    json lost = json::array();
    for (auto& [room, m] : s.memberships)
      if (!m.ring.can_resume_after(acked_after_resume(resume, room, m))) lost.push_back(room);
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
    }
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
    for (auto& [name, m] : s->memberships) remove_member(*m.room, *s, now);
    if (!s->attached) deadlines_.erase({s->detach_deadline, handle});
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
      rooms_.erase(it);
    }
    return ended;
  }

  [[nodiscard]] std::optional<monotonic_time> next_deadline() const {
    std::optional<monotonic_time> next;
    if (!deadlines_.empty()) next = deadlines_.begin()->first;
    if (!room_deadlines_.empty() && (!next || room_deadlines_.begin()->first < *next))
      next = room_deadlines_.begin()->first;
    return next;
  }

  // ---- tools ----------------------------------------------------------------

  [[nodiscard]] result<join_room_result> join_room(session_handle handle, const join_room_args& args, const moment_type& now) {
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (args.nickname)
      if (auto ok = check_nickname("nickname", *args.nickname); !ok) return tl::unexpected(ok.error());
    if (auto it = s->memberships.find(args.room); it != s->memberships.end())
      return join_room_result{args.room, it->second.nickname, it->second.room->members.size()};

    auto room = ensure_room(*s, args.room, now);
    if (!room) return tl::unexpected(room.error());
    room_state& r = **room;
    std::string nickname;
    if (args.nickname) {
      if (r.by_folded.count(fold_nickname(*args.nickname)))
        return make_error(error_code::nickname_taken,
                          "the nickname " + *args.nickname + " is taken in " + args.room + "; pick another",
                          json{{"room", args.room}, {"nickname", *args.nickname}});
      nickname = *args.nickname;
    } else {
      nickname = allocate_nickname(random_, [&](const std::string& folded) { return r.by_folded.count(folded) > 0; });
    }
    r.members.push_back(member{s, nickname, ++r.joins});
    r.by_folded.emplace(fold_nickname(nickname), handle);
    cancel_expiry(r);
    s->memberships.emplace(args.room, membership{&r, nickname, replay_ring(config_.replay_capacity)});
    return join_room_result{args.room, std::move(nickname), r.members.size()};
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
    touch(now);
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (auto ok = check_body(args.body, config_.max_body_bytes); !ok) return tl::unexpected(ok.error());
    if (args.client_msg_id) {
      if (auto ok = check_client_msg_id(*args.client_msg_id); !ok) return tl::unexpected(ok.error());
      // A retry returns the first result, delivers nothing and spends no token.
      if (const send_message_result* first = s->sent.find(*args.client_msg_id)) return *first;
    }
    auto it = s->memberships.find(args.room);
    if (it == s->memberships.end()) return not_in_room(args.room);
    if (auto wait = s->bucket.try_take(now.monotonic)) {
      ++stats_.rate_limited_total;
      return make_error(error_code::rate_limited,
                        "rate limited: retry after " + std::to_string(wait->count()) + " ms",
                        json{{"retryAfterMs", wait->count()}});
    }
    room_state& r = *it->second.room;
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
    auto it = args.cursor ? rooms_.upper_bound(*args.cursor) : rooms_.begin();
    for (std::size_t n = 0; it != rooms_.end() && n < page; ++it, ++n) {
      const auto& [name, r] = *it;
      if (auto m = s->memberships.find(name); m != s->memberships.end())
        out.joined.push_back(joined_room{name, m->second.nickname, r.members.size()});
      else
        out.available.push_back(available_room{name, r.members.size()});
    }
    if (it != rooms_.end()) out.next_cursor = std::prev(it)->first;
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
      out.members.push_back(member_entry{m->nickname, m->session->kind});
    }
    if (m != members.end()) out.next_cursor = std::to_string(std::prev(m)->joined);
    return out;
  }

  // Cumulative per room. Acks for rooms the session is not in are ignored: a leave
  // may cross an ack in flight. An ack past the room's latest seq is refused and
  // changes nothing: accepted, it would make a later resume silently replay nothing.
  [[nodiscard]] result<void> ack(session_handle handle, const ack_frame& a) {
    session_state* s = find(handle);
    if (!s) return no_session();
    auto it = s->memberships.find(a.room);
    if (it == s->memberships.end()) return {};
    if (a.seq > it->second.room->last_seq) return future_seq(a.room, a.seq, it->second.room->last_seq);
    it->second.ring.ack(a.seq);
    return {};
  }

  // ---- deliveries -----------------------------------------------------------

  // Sessions whose outbox became non-empty since the last call, each listed once.
  [[nodiscard]] std::vector<session_handle> take_ready() {
    std::vector<session_handle> out;
    out.swap(ready_);
    for (session_handle h : out)
      if (session_state* s = find(h)) s->ready_listed = false;
    return out;
  }

  // The frames queued for an attached session, oldest first.
  [[nodiscard]] std::vector<shared_frame> drain(session_handle handle) {
    std::vector<shared_frame> out;
    if (session_state* s = find(handle)) out.swap(s->outbox);
    return out;
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

  static tl::unexpected<error> future_seq(const std::string& room, std::uint64_t seq, std::uint64_t latest) {
    return make_error(error_code::invalid_argument,
                      "seq " + std::to_string(seq) + " was never sent in " + room + " (its latest is " +
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
    if (!s.ready_listed) {
      s.ready_listed = true;
      ready_.push_back(s.handle);
    }
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
  std::vector<session_handle> ready_;
  session_handle last_handle_ = 0;
  hub_stats stats_{};
};

using hub = basic_hub<default_policy>;

}  // namespace parley
