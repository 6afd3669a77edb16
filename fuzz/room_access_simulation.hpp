// SPDX-License-Identifier: MIT
// A byte-driven simulation of sessions controlling rooms (private rooms, roles, invites, knocks, bans, direct
// messages, restarts), checking after every step that no room is left where nobody can admit anyone, that no
// banned or unadmitted principal is a member, that private rooms are listed only to those admitted, and that a
// direct message reaches its recipient alone.
#pragma once

#include <parley/parley.hpp>

#include "splitmix_random.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley::simulation {

class room_access_simulation {
 public:
  using sim_hub = basic_hub<simulated_policy>;

  explicit room_access_simulation(std::uint64_t seed) : seed_(seed) { hub_.emplace(open()); }

  // Runs every operation the bytes describe; returns the first invariant violated.
  std::optional<std::string> run(const std::uint8_t* data, std::size_t size) {
    for (std::size_t i = 0; i + 3 < size && !failure_; i += 4) {
      step(data[i], data[i + 1], data[i + 2], data[i + 3]);
      if (!failure_) check();
    }
    return failure_;
  }

  [[nodiscard]] std::uint64_t admitted_by_invite() const noexcept { return by_invite_; }
  [[nodiscard]] std::uint64_t admitted_by_knock() const noexcept { return by_knock_; }
  [[nodiscard]] std::uint64_t bans() const noexcept { return bans_; }
  [[nodiscard]] std::uint64_t direct_messages() const noexcept { return directs_; }
  [[nodiscard]] std::uint64_t restarts() const noexcept { return restarts_; }

 private:
  static constexpr std::array<const char*, 3> rooms_{"den", "lab", "lobby"};
  static constexpr std::array<const char*, 3> labels_{"", "ann-token", "bob-token"};
  static constexpr std::size_t slots = 6;

  sim_hub open() {
    hub_config config;
    config.knocks = {50, 60};
    config.invites = {50, 60};
    config.room_creation = {50, 60};
    config.max_live_invites = 8;
    return std::move(*sim_hub::open(store_, splitmix_random(seed_ * 0x9E3779B97F4A7C15ull + 7), std::move(config)));
  }

  sim_hub& hub() { return *hub_; }
  const sim_hub& hub() const { return *hub_; }

  void fail(std::string why) {
    if (!failure_) failure_ = std::move(why);
  }

  // The nickname of some member of `room`, picked by `pick`.
  std::optional<std::string> someone_in(const std::string& room, std::uint8_t pick) const {
    auto it = hub().rooms().find(room);
    if (it == hub().rooms().end() || it->second.members.empty()) return std::nullopt;
    return it->second.members[pick % it->second.members.size()].nickname;
  }

  void step(std::uint8_t op, std::uint8_t a, std::uint8_t b, std::uint8_t c) {
    auto& slot = sessions_[a % slots];
    const std::string room = rooms_[b % rooms_.size()];
    if (!slot && op % 16 != 0) return;
    const session_handle s = slot ? *slot : 0;
    switch (op % 16) {
      case 0:
        if (!slot) slot = hub().open_session(now_, labels_[b % labels_.size()], member_kind::agent, c % 4 != 0).handle;
        break;
      case 1:
        hub().end_session(s, now_);
        slot.reset();
        break;
      case 2:
        (void)hub().create_room(s, {room, c % 2 ? room_visibility::private_room : room_visibility::public_room, std::nullopt},
                               now_);
        break;
      case 3: {
        std::optional<std::string> invite;
        if (!invites_.empty() && c % 2) invite = invites_[c % invites_.size()];
        if (hub().join_room(s, {room, std::nullopt, invite}, now_) && invite) ++by_invite_;
        break;
      }
      case 4:
        (void)hub().leave_room(s, {room}, now_);
        break;
      case 5: {
        auto made = hub().invite(s, {room, c % 3 ? std::optional<std::uint32_t>(c % 3) : std::nullopt,
                                    c % 5 ? std::optional<std::uint32_t>(60) : std::nullopt,
                                    c % 2 ? member_role::watcher : member_role::member},
                                now_);
        if (made) invites_.push_back(made->code);
        break;
      }
      case 6:
        if (auto k = hub().knock(s, {room, std::nullopt, std::nullopt}, now_)) knocks_.emplace_back(room, k->knock_id);
        break;
      case 7:
        if (!knocks_.empty()) {  // answered by the caller, or else by the first session that may
          const bool approve = c % 4 != 0;
          const auto [knocked, id] = knocks_[c % knocks_.size()];
          bool answered = static_cast<bool>(hub().answer_knock(s, {knocked, id, approve}, now_));
          for (const auto& other : sessions_)
            if (!answered && other) answered = static_cast<bool>(hub().answer_knock(*other, {knocked, id, approve}, now_));
          if (answered && approve) ++by_knock_;
        }
        break;
      case 8:
        if (auto nick = someone_in(room, c)) (void)hub().act_on_member(s, {room, *nick, member_action::kick}, now_);
        break;
      case 9:
        if (auto nick = someone_in(room, c))
          if (hub().act_on_member(s, {room, *nick, member_action::ban}, now_)) ++bans_;
        break;
      case 10:
        if (auto nick = someone_in(room, c)) (void)hub().act_on_member(s, {room, *nick, member_action::unban}, now_);
        break;
      case 11:
        if (auto nick = someone_in(room, c))
          (void)hub().set_role(s, {room, *nick, static_cast<member_role>(c % 3)}, now_);
        break;
      case 12:
        if (auto nick = someone_in(room, c))
          if (hub().send_message(s, {room, "psst", std::nullopt, *nick}, now_)) ++directs_;
        break;
      case 13:
        (void)hub().send_message(s, {room, "hello", std::nullopt, std::nullopt}, now_);
        break;
      case 14:
        now_ += std::chrono::seconds(c);
        (void)hub().expire(now_);
        break;
      case 15:
        if (c % 8 == 0) restart();
        break;
    }
    drain_all();
  }

  // Every session is gone; the store is all that remains.
  void restart() {
    for (auto& slot : sessions_) slot.reset();
    hub_.reset();
    hub_.emplace(open());
    ++restarts_;
  }

  // A direct message goes to the member it names and nobody else.
  void drain_all() {
    for (const auto& slot : sessions_) {
      if (!slot) continue;
      const auto* state = hub().session(*slot);
      if (!state) continue;
      for (const auto& frame : hub().drain(*slot)) {
        auto decoded = decode_server_frame(*frame);
        if (!decoded) return fail("an undecodable frame was delivered");
        const auto* m = std::get_if<room_message_frame>(&*decoded);
        if (!m || !m->to) continue;
        auto at = state->memberships.find(m->room);
        if (at == state->memberships.end() || fold_nickname(at->second.nickname) != fold_nickname(*m->to))
          return fail("a direct message to " + *m->to + " reached another session");
      }
    }
  }

  void check() {
    for (const auto& [name, r] : hub().rooms()) {
      const auto& roles = r.access.roles;
      const bool owned = std::any_of(roles.begin(), roles.end(), [](const auto& x) { return x.second == member_role::owner; });
      if (!r.members.empty() && !owned) return fail(name + " has members and no owner");
      const bool is_private = r.access.visibility == room_visibility::private_room;
      if (is_private && r.members.empty() && !owned) return fail(name + " is private, empty and ownerless, and was kept");
      for (const auto& m : r.members) {
        const std::string key = m.session->principal.empty() ? "session:" + m.session->id : "token:" + m.session->principal;
        if (r.access.bans.count(key)) return fail("banned " + key + " is a member of " + name);
        if (is_private && !roles.count(key)) return fail(key + " is in private " + name + " without being admitted");
      }
      for (const auto& [key, role] : roles)
        if (key.rfind("session:", 0) == 0 && !hub().handle_of(key.substr(8)))
          return fail("the ended session " + key + " still holds a role in " + name);
    }
    for (const auto& slot : sessions_) {
      if (!slot || !hub().session(*slot)) continue;
      const auto* s = hub().session(*slot);
      const std::string key = s->principal.empty() ? "session:" + s->id : "token:" + s->principal;
      auto listed = hub().list_rooms(*slot);
      if (!listed) return fail("list_rooms failed: " + listed.error().message);
      for (const auto& room : listed->available) {
        const auto& r = hub().rooms().at(room.name);
        if (r.access.visibility == room_visibility::private_room && !r.access.roles.count(key))
          return fail("private " + room.name + " was listed to " + key + ", who is not admitted");
      }
    }
  }

  std::uint64_t seed_;
  simulated_policy::room_store store_;
  std::optional<sim_hub> hub_;
  moment_of<simulated_policy> now_ = simulated_epoch;
  std::array<std::optional<session_handle>, slots> sessions_{};
  std::vector<std::string> invites_;
  std::vector<std::pair<std::string, std::string>> knocks_;  // (room, knockId)
  std::uint64_t by_invite_ = 0, by_knock_ = 0, bans_ = 0, directs_ = 0, restarts_ = 0;
  std::optional<std::string> failure_;
};

}  // namespace parley::simulation
