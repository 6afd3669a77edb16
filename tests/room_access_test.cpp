// SPDX-License-Identifier: MIT
// Rooms people control, in the hub: private rooms, roles, invites, knocks, kick and ban, ownership, direct messages.
#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley;
using namespace parley::testing;

namespace {

struct fixture {
  test_store store;
  test_hub h;
  test_moment now = epoch;

  explicit fixture(hub_config config = {})
      : h(std::move(*test_hub::open(store, testing::seeded_random(11), std::move(config)))) {}

  // A session; with a label it is that token's (a durable principal).
  session_handle session(std::string label = {}, bool direct = true) {
    return h.open_session(now, std::move(label), member_kind::agent, direct).handle;
  }

  join_room_result create(session_handle s, const std::string& room, room_visibility v = room_visibility::private_room,
                          std::optional<std::string> nick = std::nullopt) {
    auto r = h.create_room(s, {room, v, std::move(nick)}, now);
    REQUIRE(r);
    return *r;
  }

  result<join_room_result> join(session_handle s, const std::string& room, std::optional<std::string> nick = std::nullopt,
                                std::optional<std::string> invite = std::nullopt) {
    return h.join_room(s, {room, std::move(nick), std::move(invite)}, now);
  }

  std::string invite(session_handle owner, const std::string& room, member_role role = member_role::member,
                     std::optional<std::uint32_t> uses = std::nullopt, std::optional<std::uint32_t> seconds = std::nullopt) {
    auto r = h.invite(owner, {room, uses, seconds, role}, now);
    REQUIRE(r);
    return r->code;
  }

  result<member_action_result> act(session_handle s, const std::string& room, const std::string& nick, member_action a) {
    return h.act_on_member(s, {room, nick, a}, now);
  }

  result<send_message_result> send(session_handle s, const std::string& room, const std::string& body,
                                    std::optional<std::string> to = std::nullopt) {
    return h.send_message(s, {room, body, std::nullopt, std::move(to)}, now);
  }

  std::vector<json> received(session_handle s) {
    std::vector<json> out;
    for (const auto& f : h.drain(s)) out.push_back(json::parse(*f));
    return out;
  }

  json who(session_handle s, const std::string& room) {
    auto r = h.who_is_here(s, {room, std::nullopt, std::nullopt});
    REQUIRE(r);
    return json(*r);
  }

  std::vector<std::string> listed(session_handle s) {
    auto r = h.list_rooms(s);
    REQUIRE(r);
    std::vector<std::string> names;
    for (const auto& j : r->joined) names.push_back(j.name);
    for (const auto& a : r->available) names.push_back(a.name);
    return names;
  }
};

template <class T>
error_code code_of(const result<T>& r) {
  REQUIRE_FALSE(r);
  return r.error().code;
}

}  // namespace

TEST_CASE("create_room: the caller owns it; a second create is RoomExistsError; join_room still creates public rooms") {
  fixture f;
  auto ann = f.session();
  const auto made = f.create(ann, "den", room_visibility::private_room, "ann");
  CHECK(made.role == member_role::owner);
  CHECK(made.visibility == room_visibility::private_room);
  CHECK(json(made) == json{{"room", "den"}, {"nickname", "ann"}, {"membersCount", 1}, {"role", "owner"}, {"visibility", "private"}});
  auto again = f.h.create_room(f.session(), {"den", room_visibility::public_room, std::nullopt}, f.now);
  CHECK(code_of(again) == error_code::room_exists);
  CHECK(again.error().details == json{{"room", "den"}});

  auto bob = f.session();
  const auto lobby = f.join(bob, "lobby");
  REQUIRE(lobby);
  CHECK(lobby->role == member_role::owner);  // the reference creates it; we add that its creator owns it
  CHECK(lobby->visibility == room_visibility::public_room);
  CHECK(f.join(ann, "lobby")->role == member_role::member);
}

TEST_CASE("a private room admits an invite's holder or a principal with a role, and nobody else") {
  fixture f;
  auto ann = f.session();
  f.create(ann, "den");
  auto eve = f.session();
  auto refused = f.join(eve, "den");
  CHECK(code_of(refused) == error_code::room_private);
  CHECK(code_of(f.join(eve, "den", std::nullopt, std::string(32, 'x'))) == error_code::invite_invalid);
  CHECK(code_of(f.join(eve, "nowhere", std::nullopt, std::string(32, 'x'))) == error_code::invite_invalid);
  CHECK(f.who(ann, "den")["nicknames"].size() == 1);  // refusals changed nothing

  const std::string code = f.invite(ann, "den", member_role::watcher, 1);
  CHECK(code.size() == 32);  // 24 random bytes in base64url
  auto in = f.join(eve, "den", "eve", code);
  REQUIRE(in);
  CHECK(in->role == member_role::watcher);
  CHECK(code_of(f.join(f.session(), "den", std::nullopt, code)) == error_code::invite_invalid);  // one use only

  // Once admitted, a principal comes back without an invite.
  REQUIRE(f.h.leave_room(eve, {"den"}, f.now));
  CHECK(f.join(eve, "den")->role == member_role::watcher);
}

TEST_CASE("invites: stored as SHA-256 only, expire on the wall clock, bounded per room and per principal") {
  hub_config config;
  config.max_live_invites = 3;
  config.invites = {2, 1};
  fixture f(config);
  auto ann = f.session();
  f.create(ann, "den");
  auto one = f.h.invite(ann, {"den", std::nullopt, 60, member_role::member}, f.now);
  REQUIRE(one);
  CHECK(one->expires_at == "2026-11-22T00:01:00.000Z");
  const std::string access = f.store.load_rooms()->at(0).access;
  CHECK(access.find(one->code) == std::string::npos);
  CHECK(access.find(sha256_hex(one->code)) != std::string::npos);
  CHECK(code_of(f.h.invite(ann, {"den", std::nullopt, std::nullopt, member_role::owner}, f.now)) ==
        error_code::invalid_argument);
  REQUIRE(f.h.invite(ann, {"den", std::nullopt, std::nullopt, member_role::member}, f.now));
  auto limited = f.h.invite(ann, {"den", std::nullopt, std::nullopt, member_role::member}, f.now);
  CHECK(code_of(limited) == error_code::rate_limited);
  CHECK(limited.error().details.contains("retryAfterMs"));

  f.now += std::chrono::seconds(61);  // the first invite expired; the budget refilled one
  CHECK(code_of(f.join(f.session(), "den", std::nullopt, one->code)) == error_code::invite_invalid);
  REQUIRE(f.h.invite(ann, {"den", std::nullopt, std::nullopt, member_role::member}, f.now));  // the expired one made room
}

TEST_CASE("owner-only tools refuse members and watchers with ForbiddenError, and non-members with NotInRoomError") {
  fixture f;
  auto ann = f.session();
  f.create(ann, "den", room_visibility::private_room, "ann");
  auto bob = f.session();
  REQUIRE(f.join(bob, "den", "bob", f.invite(ann, "den")));
  auto out = f.session();
  CHECK(code_of(f.h.invite(bob, {"den", std::nullopt, std::nullopt, member_role::member}, f.now)) == error_code::forbidden);
  CHECK(code_of(f.act(bob, "den", "ann", member_action::kick)) == error_code::forbidden);
  CHECK(code_of(f.h.set_role(bob, {"den", "ann", member_role::watcher}, f.now)) == error_code::forbidden);
  CHECK(code_of(f.h.answer_knock(bob, {"den", "k", true}, f.now)) == error_code::forbidden);
  CHECK(code_of(f.act(out, "den", "bob", member_action::ban)) == error_code::not_in_room);
  CHECK(code_of(f.h.who_is_here(out, {"den", std::nullopt, std::nullopt})) == error_code::not_in_room);
  CHECK(f.who(ann, "den")["members"] == json::array({{{"nickname", "ann"}, {"kind", "agent"}, {"role", "owner"}},
                                                     {{"nickname", "bob"}, {"kind", "agent"}, {"role", "member"}}}));
}

TEST_CASE("kick removes one member, who may come back with an invite; acting on yourself or a stranger changes nothing") {
  fixture f;
  auto ann = f.session();
  f.create(ann, "den", room_visibility::private_room, "ann");
  auto bob = f.session();
  REQUIRE(f.join(bob, "den", "bob", f.invite(ann, "den")));
  f.received(bob);
  CHECK(code_of(f.act(ann, "den", "ann", member_action::kick)) == error_code::invalid_argument);
  CHECK(code_of(f.act(ann, "den", "nobody", member_action::kick)) == error_code::not_found);
  CHECK(f.who(ann, "den")["nicknames"] == json{"ann", "bob"});

  auto kicked = f.act(ann, "den", "BOB", member_action::kick);  // nicknames match case-insensitively
  REQUIRE(kicked);
  CHECK(kicked->nickname == "bob");
  CHECK(f.received(bob) == std::vector<json>{{{"_tag", "room.event"}, {"room", "den"}, {"kind", "kicked"}}});
  CHECK(f.who(ann, "den")["nicknames"] == json{"ann"});
  CHECK(code_of(f.send(bob, "den", "still here?")) == error_code::not_in_room);
  CHECK(code_of(f.join(bob, "den")) == error_code::room_private);  // the kick took its admission
  CHECK(f.join(bob, "den", "bob", f.invite(ann, "den")));
}

TEST_CASE("ban removes every session of the principal and keeps it out under any nickname until unban") {
  fixture f;
  auto ann = f.session("ann-token");
  f.join(ann, "lobby", "ann");
  auto mal1 = f.session("mallory-token");
  auto mal2 = f.session("mallory-token");
  REQUIRE(f.join(mal1, "lobby", "mal"));
  REQUIRE(f.join(mal2, "lobby", "mal-too"));
  REQUIRE(f.act(ann, "lobby", "mal", member_action::ban));
  CHECK(f.received(mal2).back()["kind"] == "banned");
  CHECK(f.who(ann, "lobby")["nicknames"] == json{"ann"});
  auto again = f.join(f.session("mallory-token"), "lobby", "innocent");
  CHECK(code_of(again) == error_code::banned);
  CHECK(code_of(f.h.knock(mal1, {"lobby", std::nullopt, std::nullopt}, f.now)) == error_code::banned);

  CHECK(code_of(f.act(ann, "lobby", "mal-too", member_action::unban)) == error_code::not_found);  // named as banned
  auto unbanned = f.act(ann, "lobby", "MAL", member_action::unban);
  REQUIRE(unbanned);
  CHECK(unbanned->nickname == "mal");
  CHECK(f.join(mal1, "lobby"));
}

TEST_CASE("a watcher reads but may not send, not even a direct message; set_role changes it and says so") {
  fixture f;
  auto ann = f.session();
  f.create(ann, "den", room_visibility::private_room, "ann");
  auto wes = f.session();
  REQUIRE(f.join(wes, "den", "wes", f.invite(ann, "den", member_role::watcher)));
  auto refused = f.send(wes, "den", "hi");
  CHECK(code_of(refused) == error_code::forbidden);
  CHECK(refused.error().details == json{{"room", "den"}, {"role", "watcher"}});
  CHECK(code_of(f.send(wes, "den", "psst", "ann")) == error_code::forbidden);
  REQUIRE(f.send(ann, "den", "welcome"));
  CHECK(f.received(wes).size() == 1);  // watching works

  CHECK(code_of(f.h.set_role(ann, {"den", "ann", member_role::member}, f.now)) == error_code::invalid_argument);
  auto promoted = f.h.set_role(ann, {"den", "wes", member_role::owner}, f.now);
  REQUIRE(promoted);
  CHECK(f.received(wes) == std::vector<json>{{{"_tag", "room.event"}, {"room", "den"}, {"kind", "role"}, {"role", "owner"}}});
  CHECK(f.send(wes, "den", "thanks"));
  REQUIRE(f.h.set_role(wes, {"den", "ann", member_role::watcher}, f.now));  // several owners: one may demote another
  CHECK(code_of(f.send(ann, "den", "hey")) == error_code::forbidden);
}

TEST_CASE("ownership passes to the member present longest when the last owner's session ends") {
  fixture f;
  auto ann = f.session();
  f.join(ann, "lobby", "ann");
  auto bob = f.session();
  auto cat = f.session();
  f.join(bob, "lobby", "bob");
  f.join(cat, "lobby", "cat");
  f.received(bob);
  f.h.end_session(ann, f.now);
  CHECK(f.received(bob) == std::vector<json>{{{"_tag", "room.event"}, {"room", "lobby"}, {"kind", "role"}, {"role", "owner"}}});
  CHECK(f.who(cat, "lobby")["members"][0] == json{{"nickname", "bob"}, {"kind", "agent"}, {"role", "owner"}});
  CHECK(f.received(cat).empty());
}

TEST_CASE("a private room with no members and no owner left is deleted; a durable owner keeps it") {
  fixture f;
  auto anon = f.session();
  f.create(anon, "secret");
  f.h.end_session(anon, f.now);
  CHECK(f.h.rooms().count("secret") == 0);
  CHECK(f.store.load_rooms()->empty());

  auto ann = f.session("ann-token");
  f.create(ann, "kept");
  f.h.end_session(ann, f.now);
  CHECK(f.h.rooms().count("kept") == 1);
  auto back = f.session("ann-token");  // the same token, a new session: still the owner
  auto rejoined = f.join(back, "kept");
  REQUIRE(rejoined);
  CHECK(rejoined->role == member_role::owner);
}

TEST_CASE("durable roles, bans, visibility and invites survive a restart; a session principal's do not") {
  fixture f;
  auto ann = f.session("ann-token");
  f.create(ann, "den", room_visibility::private_room, "ann");
  const std::string code = f.invite(ann, "den", member_role::watcher);
  auto bob = f.session("bob-token");
  REQUIRE(f.join(bob, "den", "bob", code));
  auto anon = f.session();
  REQUIRE(f.join(anon, "den", "anon", f.invite(ann, "den")));
  auto mal = f.session("mal-token");
  REQUIRE(f.join(mal, "den", "mal", f.invite(ann, "den")));
  REQUIRE(f.act(ann, "den", "mal", member_action::ban));

  auto restarted = test_hub::open(f.store, testing::seeded_random(12));
  REQUIRE(restarted);
  auto bob2 = restarted->open_session(f.now, "bob-token").handle;
  auto joined = restarted->join_room(bob2, {"den", std::nullopt, std::nullopt}, f.now);
  REQUIRE(joined);
  CHECK(joined->role == member_role::watcher);
  CHECK(joined->visibility == room_visibility::private_room);
  CHECK(restarted->join_room(restarted->open_session(f.now, "mal-token").handle, {"den", std::nullopt, code}, f.now)
            .error()
            .code == error_code::banned);
  auto stranger = restarted->open_session(f.now).handle;
  CHECK(restarted->join_room(stranger, {"den", std::nullopt, std::nullopt}, f.now).error().code == error_code::room_private);
  auto with_code = restarted->join_room(stranger, {"den", std::nullopt, code}, f.now);  // the invite survived too
  REQUIRE(with_code);
  CHECK(with_code->role == member_role::watcher);
}

TEST_CASE("a store that cannot write access refuses the change and changes nothing") {
  fixture f;
  auto ann = f.session("ann-token");
  f.create(ann, "den", room_visibility::private_room, "ann");
  auto bob = f.session("bob-token");
  REQUIRE(f.join(bob, "den", "bob", f.invite(ann, "den")));
  f.store.fail_access_writes(true);
  CHECK(code_of(f.h.set_role(ann, {"den", "bob", member_role::owner}, f.now)) == error_code::internal);
  CHECK(code_of(f.act(ann, "den", "bob", member_action::ban)) == error_code::internal);
  CHECK(code_of(f.h.invite(ann, {"den", std::nullopt, std::nullopt, member_role::member}, f.now)) == error_code::internal);
  auto refused = f.h.create_room(f.session(), {"other", room_visibility::private_room, std::nullopt}, f.now);
  CHECK(code_of(refused) == error_code::internal);
  CHECK(f.h.rooms().count("other") == 0);
  CHECK(f.who(ann, "den")["members"][1] == json{{"nickname", "bob"}, {"kind", "agent"}, {"role", "member"}});
  f.store.fail_access_writes(false);
  CHECK(f.h.set_role(ann, {"den", "bob", member_role::owner}, f.now));
}

TEST_CASE("list_rooms hides a private room from those not admitted to it") {
  fixture f;
  auto ann = f.session();
  f.create(ann, "den");
  f.join(ann, "lobby");
  auto eve = f.session();
  CHECK(f.listed(eve) == std::vector<std::string>{"lobby"});
  CHECK(f.listed(ann) == std::vector<std::string>{"den", "lobby"});
  auto r = f.h.list_rooms(ann);
  CHECK(json(*r)["joined"][0] == json{{"name", "den"}, {"nickname", r->joined[0].nickname}, {"membersCount", 1},
                                      {"role", "owner"}, {"visibility", "private"}});
  // Paging counts only what the caller may see.
  auto page = f.h.list_rooms(eve, {1, std::nullopt});
  REQUIRE(page);
  CHECK(page->available.size() == 1);
  CHECK_FALSE(page->next_cursor);
}

TEST_CASE("knock: owners hear it; approve admits under the asked nickname; deny and unknown ids; one pending per room") {
  fixture f;
  auto ann = f.session();
  f.create(ann, "den", room_visibility::private_room, "ann");
  auto kim = f.session();
  CHECK(code_of(f.h.knock(kim, {"nowhere", std::nullopt, std::nullopt}, f.now)) == error_code::not_found);
  f.join(ann, "lobby");
  CHECK(code_of(f.h.knock(kim, {"lobby", std::nullopt, std::nullopt}, f.now)) == error_code::invalid_argument);
  auto k = f.h.knock(kim, {"den", std::string("kim"), std::string("from the ops team")}, f.now);
  REQUIRE(k);
  CHECK(json(*k) == json{{"status", "pending"}, {"room", "den"}, {"knockId", k->knock_id}});
  CHECK(f.h.knock(kim, {"den", std::nullopt, std::nullopt}, f.now)->knock_id == k->knock_id);
  CHECK(f.received(ann) == std::vector<json>{{{"_tag", "room.event"}, {"room", "den"}, {"kind", "knock"},
                                              {"knockId", k->knock_id}, {"nickname", "kim"}, {"note", "from the ops team"}}});
  CHECK(code_of(f.h.answer_knock(ann, {"den", "not-a-knock", true}, f.now)) == error_code::not_found);

  auto approved = f.h.answer_knock(ann, {"den", k->knock_id, true}, f.now);
  REQUIRE(approved);
  CHECK(approved->nickname == "kim");
  CHECK(f.received(kim) ==
        std::vector<json>{{{"_tag", "room.event"}, {"room", "den"}, {"kind", "approved"}, {"nickname", "kim"}, {"membersCount", 2}}});
  CHECK(f.send(kim, "den", "thanks"));
  CHECK(code_of(f.h.answer_knock(ann, {"den", k->knock_id, true}, f.now)) == error_code::not_found);  // answered

  auto lee = f.session();
  auto k2 = f.h.knock(lee, {"den", std::nullopt, std::nullopt}, f.now);
  REQUIRE(k2);
  REQUIRE(f.h.answer_knock(ann, {"den", k2->knock_id, false}, f.now));
  CHECK(f.received(lee) == std::vector<json>{{{"_tag", "room.event"}, {"room", "den"}, {"kind", "denied"}}});
  CHECK(code_of(f.join(lee, "den")) == error_code::room_private);
}

TEST_CASE("knocks expire after ten minutes, telling the knocker; a knocker's session end withdraws its knock") {
  fixture f;
  auto ann = f.session();
  f.create(ann, "den");
  auto kim = f.session();
  auto k = f.h.knock(kim, {"den", std::nullopt, std::nullopt}, f.now);
  REQUIRE(k);
  CHECK(f.h.next_deadline() == (f.now + std::chrono::minutes(10)).monotonic);
  f.now += std::chrono::minutes(10);
  f.h.expire(f.now);
  CHECK(f.received(kim) == std::vector<json>{{{"_tag", "room.event"}, {"room", "den"}, {"kind", "expired"}, {"knockId", k->knock_id}}});
  CHECK(code_of(f.h.answer_knock(ann, {"den", k->knock_id, true}, f.now)) == error_code::not_found);

  auto k2 = f.h.knock(kim, {"den", std::nullopt, std::nullopt}, f.now);
  REQUIRE(k2);
  CHECK(k2->knock_id != k->knock_id);
  f.h.end_session(kim, f.now);
  CHECK(code_of(f.h.answer_knock(ann, {"den", k2->knock_id, true}, f.now)) == error_code::not_found);
  CHECK_FALSE(f.h.next_deadline());
}

TEST_CASE("knocks are limited per principal") {
  hub_config config;
  config.knocks = {2, 1};
  fixture f(config);
  auto ann = f.session();
  for (const char* room : {"a", "b", "c"}) f.create(ann, room);
  auto kim = f.session();
  REQUIRE(f.h.knock(kim, {"a", std::nullopt, std::nullopt}, f.now));
  REQUIRE(f.h.knock(kim, {"b", std::nullopt, std::nullopt}, f.now));
  CHECK(code_of(f.h.knock(kim, {"c", std::nullopt, std::nullopt}, f.now)) == error_code::rate_limited);
}

TEST_CASE("a direct message reaches its recipient only, with seqs of its own; the room's seqs show no gap") {
  fixture f;
  auto ann = f.session();
  auto bob = f.session();
  auto cat = f.session();
  f.join(ann, "lobby", "ann");
  f.join(bob, "lobby", "bob");
  f.join(cat, "lobby", "cat");
  REQUIRE(f.send(ann, "lobby", "one"));
  auto dm = f.send(ann, "lobby", "just for you", "Bob");
  REQUIRE(dm);
  CHECK(dm->seq == 1);
  CHECK(dm->to == "bob");
  REQUIRE(f.send(ann, "lobby", "two"));
  REQUIRE(f.send(cat, "lobby", "to bob too", "bob"));

  const auto at_cat = f.received(cat);
  REQUIRE(at_cat.size() == 2);
  CHECK(at_cat[0]["seq"] == 1);
  CHECK(at_cat[1]["seq"] == 2);  // no gap where the direct message went
  for (const auto& m : at_cat) CHECK_FALSE(m.contains("to"));

  const auto at_bob = f.received(bob);
  REQUIRE(at_bob.size() == 4);
  CHECK(at_bob[1] == json{{"_tag", "room.message"}, {"room", "lobby"}, {"seq", 1}, {"messageId", dm->message_id},
                          {"fromNickname", "ann"}, {"body", "just for you"}, {"sentAt", dm->sent_at},
                          {"fromKind", "agent"}, {"to", "bob"}});
  CHECK(at_bob[3]["seq"] == 2);
  CHECK(at_bob[3]["to"] == "bob");
  CHECK(at_bob[3]["fromNickname"] == "cat");
  CHECK(f.received(ann).empty());  // the senders: confirmations are results, never echoes
}

TEST_CASE("direct messages: refusals change nothing and spend no rate token") {
  hub_config config;
  config.rate = {1, 1};
  fixture f(config);
  auto ann = f.session();
  auto old = f.session({}, /*direct=*/false);
  f.join(ann, "lobby", "ann");
  f.join(old, "lobby", "old");
  CHECK(code_of(f.send(ann, "lobby", "x", "nobody")) == error_code::not_found);
  CHECK(code_of(f.send(ann, "lobby", "x", "ann")) == error_code::invalid_argument);
  auto unable = f.send(ann, "lobby", "x", "old");
  CHECK(code_of(unable) == error_code::forbidden);
  CHECK(unable.error().details == json{{"room", "lobby"}, {"nickname", "old"}});
  CHECK(code_of(f.send(ann, "lobby", "x", "bad nick!")) == error_code::invalid_argument);
  CHECK(f.received(old).empty());
  CHECK(f.send(ann, "lobby", "the one token is still there"));
}

TEST_CASE("direct messages are acked apart and replayed on resume from lastAckedDirectSeqByRoom") {
  fixture f;
  auto ann = f.session();
  auto grant = f.h.open_session(f.now, {}, member_kind::agent, true);
  f.join(ann, "lobby", "ann");
  f.join(grant.handle, "lobby", "bob");
  for (const char* body : {"d1", "d2", "d3"}) REQUIRE(f.send(ann, "lobby", body, "bob"));
  REQUIRE(f.send(ann, "lobby", "room"));
  f.received(grant.handle);
  CHECK(code_of(f.h.ack(grant.handle, {"lobby", 4, true})) == error_code::invalid_argument);  // never sent
  REQUIRE(f.h.ack(grant.handle, {"lobby", 1, true}));
  f.h.detach(grant.handle, f.now);

  resume_block resume{grant.session_id, grant.reconnect_token, {{"lobby", 1}}, {{"lobby", 2}}};
  REQUIRE(f.h.resume_session(resume, f.now));
  const auto replay = f.received(grant.handle);
  REQUIRE(replay.size() == 1);  // the room message is acked; direct 3 is not
  CHECK(replay[0]["body"] == "d3");

  f.h.detach(grant.handle, f.now);
  resume_block future{grant.session_id, grant.reconnect_token, {}, {{"lobby", 9}}};
  CHECK(code_of(f.h.resume_session(future, f.now)) == error_code::bad_handshake_frame);
}

TEST_CASE("a public room left without an owner makes its next member the owner") {
  fixture f;
  auto anon = f.session();
  f.join(anon, "lobby");
  f.h.end_session(anon, f.now);  // lobby is empty, public, and its owner's roles ended
  auto bob = f.session();
  auto joined = f.join(bob, "lobby", "bob");
  REQUIRE(joined);
  CHECK(joined->role == member_role::owner);
  CHECK(f.join(f.session(), "lobby")->role == member_role::member);
}

TEST_CASE("another session of your own principal is you: no kicking, banning or re-roling it; a kick takes all of them") {
  fixture f;
  auto ann1 = f.session("ann-token");
  auto ann2 = f.session("ann-token");
  f.create(ann1, "den", room_visibility::private_room, "ann");
  REQUIRE(f.join(ann2, "den", "ann-laptop"));  // the same principal: admitted already
  CHECK(code_of(f.h.set_role(ann1, {"den", "ann-laptop", member_role::member}, f.now)) == error_code::invalid_argument);
  CHECK(code_of(f.act(ann1, "den", "ann-laptop", member_action::kick)) == error_code::invalid_argument);
  CHECK(f.who(ann1, "den")["members"][1]["role"] == "owner");

  auto bob1 = f.session("bob-token");
  auto bob2 = f.session("bob-token");
  const std::string code = f.invite(ann1, "den");
  REQUIRE(f.join(bob1, "den", "bob", code));
  REQUIRE(f.join(bob2, "den", "bob-phone"));
  REQUIRE(f.act(ann1, "den", "bob", member_action::kick));
  CHECK(f.who(ann1, "den")["nicknames"] == json{"ann", "ann-laptop"});
  CHECK(f.received(bob2).back()["kind"] == "kicked");
}

TEST_CASE("events for a detached session wait for its resume; past the bound, a missed count per room says so") {
  hub_config config;
  config.max_held_events = 2;
  fixture f(config);
  auto ann = f.session();
  f.create(ann, "den", room_visibility::private_room, "ann");
  auto kim = f.h.open_session(f.now, {}, member_kind::agent, true);
  auto k = f.h.knock(kim.handle, {"den", std::string("kim"), std::nullopt}, f.now);
  REQUIRE(k);
  f.h.detach(kim.handle, f.now);
  REQUIRE(f.h.answer_knock(ann, {"den", k->knock_id, true}, f.now));
  REQUIRE(f.send(ann, "den", "welcome"));
  REQUIRE(f.h.resume_session({kim.session_id, kim.reconnect_token, {}, {}}, f.now));
  const auto resumed = f.received(kim.handle);
  REQUIRE(resumed.size() == 2);
  CHECK(resumed[0]["body"] == "welcome");  // the replay first, then what happened meanwhile
  CHECK(resumed[1] == json{{"_tag", "room.event"}, {"room", "den"}, {"kind", "approved"}, {"nickname", "kim"}, {"membersCount", 2}});

  // Three role changes while away, two held: the oldest becomes a count.
  REQUIRE(f.h.ack(kim.handle, {"den", 1}));
  f.h.detach(kim.handle, f.now);
  REQUIRE(f.h.set_role(ann, {"den", "kim", member_role::watcher}, f.now));
  REQUIRE(f.h.set_role(ann, {"den", "kim", member_role::member}, f.now));
  REQUIRE(f.h.set_role(ann, {"den", "kim", member_role::owner}, f.now));
  REQUIRE(f.h.resume_session({kim.session_id, kim.reconnect_token, {}, {}}, f.now));
  CHECK(f.received(kim.handle) ==
        std::vector<json>{{{"_tag", "room.event"}, {"room", "den"}, {"kind", "missed"}, {"count", 1}},
                          {{"_tag", "room.event"}, {"room", "den"}, {"kind", "role"}, {"role", "member"}},
                          {{"_tag", "room.event"}, {"room", "den"}, {"kind", "role"}, {"role", "owner"}}});
}
