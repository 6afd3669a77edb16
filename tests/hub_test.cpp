// SPDX-License-Identifier: MIT
// The hub's rules one by one: sessions, rooms, nicknames, sends, limits, replay and the stores it writes.
#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley;
using namespace parley::testing;
using std::chrono::milliseconds;

namespace {

struct fixture {
  test_store store;
  test_hub h;
  explicit fixture(hub_config config = {})
      : h(std::move(*test_hub::open(store, testing::seeded_random(42), std::move(config)))) {}

  session_handle session() { return h.open_session(epoch).handle; }

  join_room_result join(session_handle s, const std::string& room, std::optional<std::string> nick = std::nullopt) {
    auto r = h.join_room(s, {room, std::move(nick)}, epoch);
    REQUIRE(r);
    return *r;
  }

  result<send_message_result> send(session_handle s, const std::string& room, std::string body,
                                    std::optional<std::string> key = std::nullopt, test_moment now = epoch) {
    return h.send_message(s, {room, std::move(body), std::move(key)}, now);
  }

  std::vector<json> received(session_handle s) {
    std::vector<json> out;
    for (const auto& f : h.drain(s)) out.push_back(json::parse(*f));
    return out;
  }
};

std::string utf8_body(std::size_t bytes) {
  // 4-byte emoji, then ASCII to land exactly on `bytes`.
  std::string s;
  while (s.size() + 4 <= bytes) s += "\xF0\x9F\x98\x80";
  while (s.size() < bytes) s += "x";
  return s;
}

}  // namespace

TEST_CASE("a fresh session gets a UUID session id and a reconnect token of >= 128 random bits") {
  fixture f;
  auto a = f.h.open_session(epoch);
  auto b = f.h.open_session(epoch);
  CHECK(a.session_id.size() == 36);
  CHECK(a.session_id != b.session_id);
  CHECK(a.reconnect_token.size() >= 22);  // 22 base64url chars = 132 bits
  CHECK(a.reconnect_token != b.reconnect_token);
  CHECK(f.h.stats().sessions == 2);
}

TEST_CASE("join creates the room implicitly, reports the member count, and a second join is the same membership") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  auto ja = f.join(a, "lobby", "alice");
  CHECK(ja.room == "lobby");
  CHECK(ja.nickname == "alice");
  CHECK(ja.members_count == 1);
  CHECK(f.join(b, "lobby", "bob").members_count == 2);
  auto again = f.join(a, "lobby", "someone-else");
  CHECK(again.nickname == "alice");
  CHECK(again.members_count == 2);
  CHECK(f.store.load_rooms()->size() == 1);
}

TEST_CASE("nicknames are unique per room, case-insensitively, and keep their spelling") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  f.join(a, "lobby", "Alice");
  auto taken = f.h.join_room(b, {"lobby", std::string("alice")}, epoch);
  REQUIRE_FALSE(taken);
  CHECK(taken.error().code == error_code::nickname_taken);
  CHECK(taken.error().details["nickname"] == "alice");
  CHECK(f.join(b, "other", "alice").nickname == "alice");  // another room: no collision
  auto who = f.h.who_is_here(a, {"lobby"});
  CHECK(who->nicknames == std::vector<std::string>{"Alice"});
}

TEST_CASE("a nickname frees up when its member leaves or its session ends") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  f.join(a, "lobby", "alice");
  REQUIRE(f.h.leave_room(a, {"lobby"}, epoch));
  f.join(b, "lobby", "ALICE");
  f.h.end_session(b, epoch);
  f.join(a, "lobby", "alice");
}

TEST_CASE("automatic nicknames are adjective-animal, then -2, -3 on collision") {
  fixture f;
  auto a = f.session();
  auto n = f.join(a, "lobby").nickname;
  CHECK(validate_nickname(n));
  CHECK(std::count(n.begin(), n.end(), '-') == 1);
  // Many automatic members in one room: all distinct, all valid.
  std::set<std::string> seen{fold_nickname(n)};
  for (int i = 0; i < 300; ++i) {
    auto nick = f.join(f.session(), "lobby").nickname;
    CHECK(validate_nickname(nick));
    CHECK(seen.insert(fold_nickname(nick)).second);
  }
  // A source that always draws the same pair shows the suffixes themselves.
  test_store store;
  auto same_pair = test_hub::open(store, [](unsigned char* out, std::size_t n) { std::fill(out, out + n, 0); });
  std::vector<std::string> nicknames;
  for (int i = 0; i < 3; ++i) {
    auto s = same_pair->open_session(epoch).handle;
    nicknames.push_back(same_pair->join_room(s, {"lobby", std::nullopt}, epoch)->nickname);
  }
  const std::string base = std::string(nickname_adjectives[0]) + "-" + std::string(nickname_animals[0]);
  CHECK(nicknames == std::vector<std::string>{base, base + "-2", base + "-3"});
}

TEST_CASE("leave is silent to others; leaving a room you are not in is NotInRoomError") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  f.join(a, "lobby", "alice");
  f.join(b, "lobby", "bob");
  auto left = f.h.leave_room(a, {"lobby"}, epoch);
  CHECK(left->room == "lobby");
  CHECK(f.received(b).empty());
  CHECK(f.h.leave_room(a, {"lobby"}, epoch).error().code == error_code::not_in_room);
  CHECK(f.h.who_is_here(b, {"lobby"})->nicknames == std::vector<std::string>{"bob"});
}

TEST_CASE("send: every member but the sender receives it once, with the sender's nickname") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  auto c = f.session();
  auto outsider = f.session();
  f.join(a, "lobby", "alice");
  f.join(b, "lobby", "bob");
  f.join(c, "lobby", "carol");
  auto sent = f.send(a, "lobby", "hello");
  REQUIRE(sent);
  CHECK(sent->seq == 1);
  CHECK(sent->message_id.size() == 36);
  CHECK(sent->message_id[14] == '7');
  CHECK(sent->sent_at == "2026-11-22T00:00:00.000Z");
  CHECK(f.received(a).empty());
  CHECK(f.received(outsider).empty());
  for (auto s : {b, c}) {
    auto got = f.received(s);
    REQUIRE(got.size() == 1);
    CHECK(got[0]["_tag"] == "room.message");
    CHECK(got[0]["room"] == "lobby");
    CHECK(got[0]["seq"] == 1);
    CHECK(got[0]["messageId"] == sent->message_id);
    CHECK(got[0]["fromNickname"] == "alice");
    CHECK(got[0]["body"] == "hello");
    CHECK(got[0]["sentAt"] == sent->sent_at);
  }
  CHECK(f.h.stats().deliveries_total == 2);
}

TEST_CASE("a message's frame is built once and shared by all recipients") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  auto c = f.session();
  f.join(a, "lobby");
  f.join(b, "lobby");
  f.join(c, "lobby");
  REQUIRE(f.send(a, "lobby", "x"));
  auto fb = f.h.drain(b);
  auto fc = f.h.drain(c);
  REQUIRE(fb.size() == 1);
  REQUIRE(fc.size() == 1);
  CHECK(fb[0].get() == fc[0].get());
}

TEST_CASE("seq is per room and strictly increasing") {
  fixture f;
  auto a = f.session();
  f.join(a, "one");
  f.join(a, "two");
  CHECK(f.send(a, "one", "x")->seq == 1);
  CHECK(f.send(a, "one", "x")->seq == 2);
  CHECK(f.send(a, "two", "x")->seq == 1);
  CHECK(f.send(a, "one", "x")->seq == 3);
}

TEST_CASE("seqs come from the store in blocks: one write per block, never reused after a restart") {
  test_store store;
  hub_config config;
  config.seq_block_size = 10;
  config.rate = {1000, 1000};
  std::uint64_t last = 0;
  {
    auto h = test_hub::open(store, testing::seeded_random(1), config);
    auto s = h->open_session(epoch).handle;
    REQUIRE(h->join_room(s, {"lobby", std::nullopt}, epoch));
    for (int i = 0; i < 25; ++i) last = h->send_message(s, {"lobby", "x", std::nullopt}, epoch)->seq;
    CHECK(last == 25);
    CHECK(store.blocks_reserved() == 3);  // not 25
  }
  auto restarted = test_hub::open(store, testing::seeded_random(2), config);
  CHECK(restarted->rooms().count("lobby") == 1);  // the room outlived every member
  auto s = restarted->open_session(epoch).handle;
  REQUIRE(restarted->join_room(s, {"lobby", std::nullopt}, epoch));
  CHECK(restarted->send_message(s, {"lobby", "x", std::nullopt}, epoch)->seq > last);
}

// A store whose writes can be made to fail, as a full disk would.
struct failing_store {
  bool fail_seq = false;
  test_store inner;
  auto load_rooms() { return inner.load_rooms(); }
  result<void> create_room(std::string_view n, test_moment::wall_time t) {
    if (n == "broken") return make_error(error_code::internal, "disk full");
    return inner.create_room(n, t);
  }
  result<std::uint64_t> reserve_seq_block(std::string_view r, std::uint64_t c) {
    if (fail_seq) return make_error(error_code::internal, "disk full");
    return inner.reserve_seq_block(r, c);
  }
  result<bool> delete_room(std::string_view n, test_moment::wall_time t) { return inner.delete_room(n, t); }
  result<void> save_room_access(std::string_view n, std::string_view a) { return inner.save_room_access(n, a); }
};
struct failing_store_policy : simulated_policy {
  using room_store = failing_store;
};

TEST_CASE("a store that fails is InternalError, and the hub stays consistent") {
  failing_store store;
  auto h = basic_hub<failing_store_policy>::open(store, testing::seeded_random(1));
  auto s = h->open_session(epoch).handle;
  auto broken = h->join_room(s, {"broken", std::nullopt}, epoch);
  CHECK(broken.error().code == error_code::internal);
  CHECK(broken.error().message.find("disk full") == std::string::npos);  // the store's words stay off the wire
  CHECK(h->rooms().count("broken") == 0);
  REQUIRE(h->join_room(s, {"lobby", std::nullopt}, epoch));
  store.fail_seq = true;
  auto unsent = h->send_message(s, {"lobby", "x", std::nullopt}, epoch);
  CHECK(unsent.error().code == error_code::internal);
  CHECK(unsent.error().message == "could not send: the server's storage failed; try again later");
  store.fail_seq = false;
  CHECK(h->send_message(s, {"lobby", "x", std::nullopt}, epoch)->seq == 1);
}

TEST_CASE("send to a room you are not in is NotInRoomError, and delivers nothing") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  f.join(b, "lobby");
  auto r = f.send(a, "lobby", "x");
  CHECK(r.error().code == error_code::not_in_room);
  CHECK(f.received(b).empty());
}

TEST_CASE("bodies: 1..8192 bytes of UTF-8, counted in bytes") {
  fixture f;
  auto a = f.session();
  f.join(a, "lobby");
  CHECK(f.send(a, "lobby", utf8_body(8192)));
  CHECK(f.send(a, "lobby", std::string(8192, 'x')));
  auto over = f.send(a, "lobby", utf8_body(8193));
  REQUIRE_FALSE(over);
  CHECK(over.error().code == error_code::invalid_argument);
  CHECK(over.error().details["field"] == "body");
  // 2049 emoji are 2049 characters but 8196 bytes
  std::string emoji;
  for (int i = 0; i < 2049; ++i) emoji += "\xF0\x9F\x98\x80";
  CHECK_FALSE(f.send(a, "lobby", emoji));
  CHECK(f.send(a, "lobby", "").error().details["rule"] == "minBytes 1");
  CHECK(f.send(a, "lobby", "bad \xC3").error().details["rule"] == "utf8");
}

TEST_CASE("the 21st rapid send is refused with retryAfterMs, and the budget refills") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  f.join(a, "lobby");
  f.join(b, "lobby");
  for (int i = 1; i <= 20; ++i) CHECK_MESSAGE(f.send(a, "lobby", "x"), "send ", i);
  auto refused = f.send(a, "lobby", "x");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == error_code::rate_limited);
  CHECK(refused.error().details["retryAfterMs"] == 100);
  CHECK(f.received(b).size() == 20);
  CHECK(f.send(a, "lobby", "x", std::nullopt, epoch + milliseconds(100)));
  CHECK(f.h.stats().rate_limited_total == 1);
  // the limit is per session: b is untouched
  CHECK(f.send(b, "lobby", "x"));
}

TEST_CASE("idempotent send: a repeated clientMsgId returns the original, delivers nothing, spends nothing") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  f.join(a, "lobby");
  f.join(b, "lobby");
  auto first = f.send(a, "lobby", "once", std::string("k-1"));
  REQUIRE(first);
  for (int i = 0; i < 30; ++i) {  // more than the burst: repeats are free
    auto again = f.send(a, "lobby", "once", std::string("k-1"), epoch + milliseconds(i));
    REQUIRE(again);
    CHECK(again->seq == first->seq);
    CHECK(again->message_id == first->message_id);
    CHECK(again->sent_at == first->sent_at);
  }
  CHECK(f.received(b).size() == 1);
  for (int i = 0; i < 19; ++i) {
    std::string key = "k";
    key += std::to_string(i + 2);  // not `"k" + std::string&&`: GCC 12 at -O3 warns falsely on it
    CHECK(f.send(a, "lobby", "x", key));
  }
  CHECK(f.send(a, "lobby", "x", std::string("k-21")).error().code == error_code::rate_limited);
  // a refused send is not remembered: its retry is a real send once tokens return
  CHECK(f.send(a, "lobby", "x", std::string("k-21"), epoch + milliseconds(100)));
}

TEST_CASE("clientMsgId: 1-64 characters of [A-Za-z0-9_-]") {
  fixture f;
  auto a = f.session();
  f.join(a, "lobby");
  CHECK(f.send(a, "lobby", "x", std::string(64, 'k')));
  CHECK(f.send(a, "lobby", "x", std::string(65, 'k')).error().details["field"] == "clientMsgId");
  CHECK(f.send(a, "lobby", "x", std::string("")).error().code == error_code::invalid_argument);
  CHECK(f.send(a, "lobby", "x", std::string("a.b")).error().code == error_code::invalid_argument);
}

TEST_CASE("idempotency keys are kept for at least 1024 keys and 10 minutes") {
  hub_config config;
  config.rate = {100000, 100000};
  fixture f(config);
  auto a = f.session();
  f.join(a, "lobby");
  auto first = f.send(a, "lobby", "x", std::string("key-0"));
  for (int i = 1; i < 1024; ++i) REQUIRE(f.send(a, "lobby", "x", "key-" + std::to_string(i)));
  // 1024 keys, all older than nothing: key-0 is still the first result
  CHECK(f.send(a, "lobby", "x", std::string("key-0"), epoch + std::chrono::minutes(20))->seq == first->seq);
  // younger than 10 minutes keeps it even past 1024 keys
  for (int i = 1024; i < 3000; ++i)
    REQUIRE(f.send(a, "lobby", "x", "key-" + std::to_string(i), epoch + std::chrono::minutes(9)));
  CHECK(f.send(a, "lobby", "x", std::string("key-0"), epoch + std::chrono::minutes(9))->seq == first->seq);
  // older than 10 minutes and beyond the last 1024: forgotten, so memory stays bounded
  REQUIRE(f.send(a, "lobby", "x", std::string("fresh"), epoch + std::chrono::minutes(30)));
  CHECK(f.h.session(a)->sent.size() <= 1025);
  CHECK(f.send(a, "lobby", "x", std::string("key-0"), epoch + std::chrono::minutes(30))->seq != first->seq);
}

TEST_CASE("list_rooms separates joined from available; who_is_here is for members only") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  f.join(a, "alpha", "alice");
  f.join(b, "alpha", "bob");
  f.join(b, "beta", "bob");
  auto listed = f.h.list_rooms(a);
  REQUIRE(listed->joined.size() == 1);
  CHECK(listed->joined[0].name == "alpha");
  CHECK(listed->joined[0].nickname == "alice");
  CHECK(listed->joined[0].members_count == 2);
  REQUIRE(listed->available.size() == 1);
  CHECK(listed->available[0].name == "beta");
  CHECK(listed->available[0].members_count == 1);
  CHECK(f.h.who_is_here(a, {"beta"}).error().code == error_code::not_in_room);
  CHECK(f.h.who_is_here(a, {"alpha"})->nicknames == std::vector<std::string>{"alice", "bob"});
  json j = *listed;
  CHECK(j == json::parse(R"({"joined":[{"name":"alpha","nickname":"alice","membersCount":2,"role":"owner"}],
                             "available":[{"name":"beta","membersCount":1}]})"));
}

TEST_CASE("an emptied room persists and is listed as available with 0 members") {
  fixture f;
  auto a = f.session();
  f.join(a, "lobby");
  f.h.end_session(a, epoch);
  auto b = f.session();
  auto listed = f.h.list_rooms(b);
  REQUIRE(listed->available.size() == 1);
  CHECK(listed->available[0].members_count == 0);
}

TEST_CASE("detach keeps memberships for the grace period; expiry ends the session") {
  hub_config config;
  config.session_grace = std::chrono::seconds(60);
  fixture f(config);
  auto a = f.h.open_session(epoch);
  auto b = f.session();
  f.join(a.handle, "lobby", "alice");
  f.join(b, "lobby", "bob");
  f.h.detach(a.handle, epoch);
  CHECK(f.h.who_is_here(b, {"lobby"})->nicknames.size() == 2);
  CHECK(f.h.next_deadline() == (epoch + std::chrono::seconds(60)).monotonic);
  CHECK(f.h.expire(epoch + milliseconds(59999)).empty());
  CHECK(f.h.expire(epoch + std::chrono::seconds(60)) == std::vector<test_hub::ended_session>{{a.handle, a.session_id}});
  CHECK(f.h.who_is_here(b, {"lobby"})->nicknames == std::vector<std::string>{"bob"});
  CHECK_FALSE(f.h.next_deadline());
  auto late = f.h.resume_session({a.session_id, a.reconnect_token, {}}, epoch + std::chrono::seconds(61));
  CHECK(late.error().code == error_code::unknown_session);
}

TEST_CASE("a clean end drops memberships at once") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  f.join(a, "lobby", "alice");
  f.join(b, "lobby", "bob");
  f.h.end_session(a, epoch);
  CHECK(f.h.who_is_here(b, {"lobby"})->nicknames == std::vector<std::string>{"bob"});
  CHECK(f.h.stats().sessions == 1);
}

TEST_CASE("resume replays exactly the messages after each room's ack, in order") {
  hub_config config;
  config.rate = {1000, 1000};
  fixture f(config);
  auto a = f.h.open_session(epoch);
  auto b = f.session();
  f.join(a.handle, "one", "alice");
  f.join(a.handle, "two", "alice");
  f.join(b, "one", "bob");
  f.join(b, "two", "bob");
  for (int i = 0; i < 5; ++i) REQUIRE(f.send(b, "one", "one-" + std::to_string(i + 1)));
  for (int i = 0; i < 3; ++i) REQUIRE(f.send(b, "two", "two-" + std::to_string(i + 1)));
  CHECK(f.received(a.handle).size() == 8);
  REQUIRE(f.h.ack(a.handle, {"one", 2}));
  f.h.detach(a.handle, epoch);
  REQUIRE(f.send(b, "one", "while-away"));
  CHECK(f.h.drain(a.handle).empty());  // detached: nothing is queued for a transport

  auto resumed = f.h.resume_session({a.session_id, a.reconnect_token, {{"one", 4}, {"two", 1}}}, epoch);
  REQUIRE(resumed);
  CHECK(resumed->handle == a.handle);
  std::vector<std::string> bodies;
  for (auto& m : f.received(a.handle)) bodies.push_back(m["body"]);
  CHECK(bodies == std::vector<std::string>{"one-5", "while-away", "two-2", "two-3"});
  CHECK(f.h.who_is_here(b, {"one"})->nicknames.size() == 2);
  // after the resume, live delivery continues
  REQUIRE(f.send(b, "two", "live"));
  CHECK(f.received(a.handle).size() == 1);
}

TEST_CASE("a room missing from lastAckedSeqByRoom resumes from the server's own ack point") {
  fixture f;
  auto a = f.h.open_session(epoch);
  auto b = f.session();
  f.join(a.handle, "one");
  f.join(b, "one");
  REQUIRE(f.send(b, "one", "1"));
  REQUIRE(f.send(b, "one", "2"));
  REQUIRE(f.h.ack(a.handle, {"one", 1}));
  f.h.detach(a.handle, epoch);
  auto resumed = f.h.resume_session({a.session_id, a.reconnect_token, {}}, epoch);
  REQUIRE(resumed);
  auto got = f.received(a.handle);
  REQUIRE(got.size() == 1);
  CHECK(got[0]["body"] == "2");
}

TEST_CASE("64 unacked messages resume; the 65th is ReplayBufferOverflowError and the session ends") {
  hub_config config;
  config.rate = {1000, 1000};
  for (int missed : {64, 65}) {
    CAPTURE(missed);
    fixture f(config);
    auto a = f.h.open_session(epoch);
    auto b = f.session();
    f.join(a.handle, "lobby", "alice");
    f.join(b, "lobby", "bob");
    f.h.detach(a.handle, epoch);
    for (int i = 0; i < missed; ++i) REQUIRE(f.send(b, "lobby", std::to_string(i)));
    auto resumed = f.h.resume_session({a.session_id, a.reconnect_token, {{"lobby", 0}}}, epoch);
    if (missed == 64) {
      REQUIRE(resumed);
      CHECK(f.received(a.handle).size() == 64);
    } else {
      REQUIRE_FALSE(resumed);
      CHECK(resumed.error().code == error_code::replay_buffer_overflow);
      CHECK(resumed.error().details["rooms"] == json::array({"lobby"}));
      CHECK(f.h.stats().replay_overflows_total == 1);
      CHECK(f.h.who_is_here(b, {"lobby"})->nicknames == std::vector<std::string>{"bob"});
      CHECK_FALSE(f.h.handle_of(a.session_id));
    }
  }
}

TEST_CASE("acks while attached keep the ring small, so a later drop resumes") {
  hub_config config;
  config.rate = {1000, 1000};
  fixture f(config);
  auto a = f.h.open_session(epoch);
  auto b = f.session();
  f.join(a.handle, "lobby");
  f.join(b, "lobby");
  for (int i = 0; i < 200; ++i) {
    auto sent = f.send(b, "lobby", "x");
    REQUIRE(f.h.ack(a.handle, {"lobby", sent->seq}));
  }
  CHECK(f.h.session(a.handle)->memberships.at("lobby").ring.size() == 0);
  f.h.detach(a.handle, epoch);
  REQUIRE(f.h.resume_session({a.session_id, a.reconnect_token, {{"lobby", 200}}}, epoch));
}

TEST_CASE("resume refuses a wrong reconnect token and an unknown session, and changes nothing") {
  fixture f;
  auto a = f.h.open_session(epoch);
  f.join(a.handle, "lobby");
  f.h.detach(a.handle, epoch);
  std::string wrong = a.reconnect_token;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  CHECK(f.h.resume_session({a.session_id, wrong, {}}, epoch).error().code == error_code::bad_reconnect_token);
  CHECK(f.h.resume_session({"00000000-0000-4000-8000-000000000000", a.reconnect_token, {}}, epoch).error().code ==
        error_code::unknown_session);
  CHECK(f.h.session(a.handle));
  CHECK_FALSE(f.h.session(a.handle)->attached);
  CHECK(f.h.resume_session({a.session_id, a.reconnect_token, {}}, epoch));
}

TEST_CASE("resuming an attached session takes it over from the old transport") {
  fixture f;
  auto a = f.h.open_session(epoch);
  auto b = f.session();
  f.join(a.handle, "lobby");
  f.join(b, "lobby");
  REQUIRE(f.send(b, "lobby", "1"));
  auto resumed = f.h.resume_session({a.session_id, a.reconnect_token, {{"lobby", 0}}}, epoch);
  REQUIRE(resumed);
  auto got = f.received(a.handle);
  REQUIRE(got.size() == 1);  // not twice: the old transport's undrained copy was dropped
  CHECK_FALSE(f.h.next_deadline());
}

TEST_CASE("take_ready lists each session with new frames once") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  auto c = f.session();
  f.join(a, "lobby");
  f.join(b, "lobby");
  f.join(c, "lobby");
  REQUIRE(f.send(a, "lobby", "1"));
  REQUIRE(f.send(a, "lobby", "2"));
  auto ready = f.h.take_ready();
  std::sort(ready.begin(), ready.end());
  CHECK(ready == std::vector<session_handle>{b, c});
  CHECK(f.h.take_ready().empty());
  CHECK(f.h.drain(b).size() == 2);
}

TEST_CASE("an ack or a resume past the room's latest seq is refused and changes nothing") {
  fixture f;
  auto a = f.h.open_session(epoch);
  auto b = f.session();
  f.join(a.handle, "one");
  f.join(b, "one");
  REQUIRE(f.send(b, "one", "1"));
  REQUIRE(f.send(b, "one", "2"));
  CHECK(f.received(a.handle).size() == 2);
  auto future = f.h.ack(a.handle, {"one", 3});
  REQUIRE_FALSE(future);
  CHECK(future.error().code == error_code::invalid_argument);
  CHECK(future.error().message == "seq 3 was never sent in one (its latest is 2); nothing was acked");
  CHECK_FALSE(f.h.ack(a.handle, {"one", 9007199254740991}));
  CHECK(f.h.ack(a.handle, {"not-joined", 9007199254740991}));  // a leave may cross an ack: ignored
  f.h.detach(a.handle, epoch);
  auto refused = f.h.resume_session({a.session_id, a.reconnect_token, {{"one", 3}}}, epoch);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == error_code::bad_handshake_frame);
  // Nothing was acked by either: a proper resume still replays both.
  auto resumed = f.h.resume_session({a.session_id, a.reconnect_token, {{"one", 0}}}, epoch);
  REQUIRE(resumed);
  CHECK(f.received(a.handle).size() == 2);
}

TEST_CASE("operations on an ended session are refused, not crashed") {
  fixture f;
  auto a = f.session();
  f.h.end_session(a, epoch);
  CHECK(f.h.join_room(a, {"lobby", std::nullopt}, epoch).error().code == error_code::internal);
  CHECK(f.h.send_message(a, {"lobby", "x", std::nullopt}, epoch).error().code == error_code::internal);
  CHECK_FALSE(f.h.list_rooms(a));
  CHECK_FALSE(f.h.ack(a, {"lobby", 1}));
  f.h.detach(a, epoch);
  f.h.end_session(a, epoch);
  CHECK(f.h.drain(a).empty());
}

TEST_CASE("the hub validates arguments itself, for C++ callers that skip the wire decoder") {
  fixture f;
  auto a = f.session();
  CHECK(f.h.join_room(a, {"Bad Room", std::nullopt}, epoch).error().details["field"] == "room");
  CHECK(f.h.join_room(a, {"lobby", std::string("-x")}, epoch).error().details["field"] == "nickname");
  CHECK(f.h.rooms().empty());
}

// ---- room-flood defences ---------------------------------------------------

namespace {

std::string room_name(int i) {
  const std::string n = std::to_string(i);
  return "room-" + std::string(4 - std::min<std::size_t>(4, n.size()), '0') + n;  // name order is number order
}

// A store whose deletes can be made to fail.
struct flaky_delete_store {
  bool fail_delete = false;
  test_store inner;
  auto load_rooms() { return inner.load_rooms(); }
  result<void> create_room(std::string_view n, test_moment::wall_time t) { return inner.create_room(n, t); }
  result<bool> delete_room(std::string_view n, test_moment::wall_time t) {
    if (fail_delete) return make_error(error_code::internal, "disk full");
    return inner.delete_room(n, t);
  }
  result<std::uint64_t> reserve_seq_block(std::string_view r, std::uint64_t c) { return inner.reserve_seq_block(r, c); }
  result<void> save_room_access(std::string_view n, std::string_view a) { return inner.save_room_access(n, a); }
};
struct flaky_delete_policy : simulated_policy {
  using room_store = flaky_delete_store;
};

}  // namespace

TEST_CASE("creating rooms spends a per-session budget; over it nothing is created, and joining existing rooms goes on") {
  fixture f;
  auto a = f.session();
  for (int i = 0; i < 20; ++i) f.join(a, room_name(i));
  auto refused = f.h.join_room(a, {"one-too-many", std::nullopt}, epoch);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == error_code::rate_limited);
  CHECK(refused.error().details == json{{"retryAfterMs", 6000}});
  CHECK(f.h.rooms().count("one-too-many") == 0);
  CHECK(f.store.load_rooms()->size() == 20);
  CHECK(f.h.session(a)->memberships.count("one-too-many") == 0);
  CHECK(f.h.stats().room_creations_refused_total == 1);
  CHECK(f.h.stats().rate_limited_total == 0);  // that counter is send_message's
  // Joining rooms that exist costs nothing, for this session or any other.
  auto b = f.session();
  f.join(b, room_name(3));
  REQUIRE(f.h.leave_room(a, {room_name(3)}, epoch));
  f.join(a, room_name(3));
  // The advertised wait is exactly enough.
  CHECK(f.h.join_room(a, {"one-too-many", std::nullopt}, epoch + milliseconds(5999)).error().code ==
        error_code::rate_limited);
  CHECK(f.h.join_room(a, {"one-too-many", std::nullopt}, epoch + milliseconds(6000)));
  // Another session without a token has a budget of its own.
  CHECK(f.h.join_room(b, {"b-own", std::nullopt}, epoch));
}

TEST_CASE("sessions of one token label share one creation budget, across sessions and after they end") {
  hub_config config;
  config.room_creation = {2, 1};
  fixture f(config);
  auto a1 = f.h.open_session(epoch, "alice-agent").handle;
  auto a2 = f.h.open_session(epoch, "alice-agent").handle;
  auto b = f.h.open_session(epoch, "bob-agent").handle;
  f.join(a1, "one");
  f.join(a2, "two");
  CHECK(f.h.join_room(a2, {"three", std::nullopt}, epoch).error().code == error_code::rate_limited);
  f.h.end_session(a1, epoch);
  f.h.end_session(a2, epoch);
  auto a3 = f.h.open_session(epoch, "alice-agent").handle;  // a new session does not reset the label's budget
  auto again = f.h.join_room(a3, {"three", std::nullopt}, epoch);
  CHECK(again.error().code == error_code::rate_limited);
  CHECK(again.error().details["retryAfterMs"] == 60000);
  f.join(b, "three");  // another label is not affected
  f.join(a3, "three");  // and now it exists: free
}

TEST_CASE("max_rooms refuses a join that would create a room with RoomLimitError, spends no budget, and lets joins in") {
  hub_config config;
  config.max_rooms = 2;
  config.room_creation = {3, 0};  // three creations ever: a cap refusal that spent one would show
  config.room_ttl = milliseconds(1000);
  fixture f(config);
  auto a = f.session();
  f.join(a, "one");
  f.join(a, "two");
  for (int i = 0; i < 5; ++i) {
    auto refused = f.h.join_room(a, {"three", std::nullopt}, epoch);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == error_code::room_limit);
    CHECK(refused.error().details == json{{"maxRooms", 2}});
    CHECK(to_string(refused.error().code) == "RoomLimitError");
  }
  CHECK(f.h.rooms().size() == 2);
  CHECK(f.store.load_rooms()->size() == 2);
  f.join(f.session(), "two");  // existing rooms still take members
  REQUIRE(f.h.leave_room(a, {"one"}, epoch));
  (void)f.h.expire(epoch + milliseconds(1000));  // "one" was empty and unused: gone, under the cap again
  CHECK(f.h.rooms().count("one") == 0);
  CHECK(f.h.join_room(a, {"three", std::nullopt}, epoch + milliseconds(1000)));  // the third token was still there
}

TEST_CASE("an empty room nobody wrote to expires after the TTL, in the store too; a used or occupied one never does") {
  hub_config config;
  config.room_ttl = milliseconds(10000);
  fixture f(config);
  auto a = f.session();
  f.join(a, "idle");
  f.join(a, "busy");
  f.join(a, "kept");
  REQUIRE(f.send(a, "busy", "hello"));
  CHECK_FALSE(f.h.next_deadline());  // every room has a member
  const auto t1 = epoch + milliseconds(1000);
  REQUIRE(f.h.leave_room(a, {"idle"}, t1));
  REQUIRE(f.h.leave_room(a, {"busy"}, t1));
  CHECK(f.h.next_deadline() == t1.monotonic + milliseconds(10000));
  (void)f.h.expire(t1 + milliseconds(9999));
  CHECK(f.h.rooms().count("idle") == 1);  // not a millisecond early
  (void)f.h.expire(t1 + milliseconds(10000));
  CHECK(f.h.rooms().count("idle") == 0);
  CHECK(f.h.rooms().count("busy") == 1);  // a message was sent: permanent
  CHECK(f.h.rooms().count("kept") == 1);  // a member is in it
  CHECK(f.h.stats().rooms_expired_total == 1);
  const auto stored = f.store.load_rooms().value();
  CHECK(stored.size() == 2);
  CHECK(std::none_of(stored.begin(), stored.end(), [](const auto& r) { return r.name == "idle"; }));
  CHECK_FALSE(f.h.next_deadline());
}

TEST_CASE("a join before the TTL runs out keeps the room, and the TTL starts again when it empties") {
  hub_config config;
  config.room_ttl = milliseconds(10000);
  fixture f(config);
  auto a = f.session();
  f.join(a, "lobby");
  REQUIRE(f.h.leave_room(a, {"lobby"}, epoch));
  REQUIRE(f.h.join_room(a, {"lobby", std::nullopt}, epoch + milliseconds(9000)));
  (void)f.h.expire(epoch + milliseconds(20000));
  CHECK(f.h.rooms().count("lobby") == 1);
  f.h.end_session(a, epoch + milliseconds(20000));  // ending the session empties it too
  CHECK(f.h.next_deadline() == (epoch + milliseconds(30000)).monotonic);
  (void)f.h.expire(epoch + milliseconds(30000));
  CHECK(f.h.rooms().count("lobby") == 0);
}

TEST_CASE("rooms loaded from the store start their TTL at the first time the hub is given; used ones never expire") {
  test_store store;
  REQUIRE(store.create_room("unused", epoch.wall));
  REQUIRE(store.create_room("used", epoch.wall));
  REQUIRE(store.reserve_seq_block("used", 4));
  hub_config config;
  config.room_ttl = milliseconds(5000);
  auto h = test_hub::open(store, testing::seeded_random(1), config);
  REQUIRE(h);
  CHECK_FALSE(h->next_deadline());  // no time yet
  const auto start = epoch + std::chrono::hours(1);
  (void)h->expire(start);
  CHECK(h->next_deadline() == (start + milliseconds(5000)).monotonic);
  (void)h->expire(start + milliseconds(5000));
  CHECK(h->rooms().count("unused") == 0);
  CHECK(h->rooms().count("used") == 1);
  CHECK(store.load_rooms()->size() == 1);
}

TEST_CASE("a room TTL of 0 never expires anything") {
  hub_config config;
  config.room_ttl = milliseconds(0);
  fixture f(config);
  auto a = f.session();
  f.join(a, "lobby");
  REQUIRE(f.h.leave_room(a, {"lobby"}, epoch));
  CHECK_FALSE(f.h.next_deadline());
  (void)f.h.expire(epoch + std::chrono::hours(24 * 365));
  CHECK(f.h.rooms().count("lobby") == 1);
}

TEST_CASE("a store that cannot delete keeps the room, and the hub tries again a TTL later") {
  flaky_delete_store store;
  hub_config config;
  config.room_ttl = milliseconds(1000);
  auto h = basic_hub<flaky_delete_policy>::open(store, testing::seeded_random(1), config);
  auto s = h->open_session(epoch).handle;
  REQUIRE(h->join_room(s, {"lobby", std::nullopt}, epoch));
  REQUIRE(h->leave_room(s, {"lobby"}, epoch));
  store.fail_delete = true;
  (void)h->expire(epoch + milliseconds(1000));
  CHECK(h->rooms().count("lobby") == 1);
  CHECK(h->next_deadline() == (epoch + milliseconds(2000)).monotonic);
  store.fail_delete = false;
  (void)h->expire(epoch + milliseconds(2000));
  CHECK(h->rooms().count("lobby") == 0);
  CHECK(store.inner.load_rooms()->empty());
}

TEST_CASE("list_rooms pages through every room in name order, splitting each page into joined and available") {
  fixture f;
  auto a = f.session();
  auto b = f.session();
  for (const char* r : {"c", "a", "e"}) f.join(a, r);
  for (const char* r : {"b", "d"}) f.join(b, r);
  auto page1 = f.h.list_rooms(a, {2u, std::nullopt});
  REQUIRE(page1);
  CHECK(page1->joined.size() == 1);
  CHECK(page1->joined[0].name == "a");
  CHECK(page1->available.size() == 1);
  CHECK(page1->available[0].name == "b");
  CHECK(page1->next_cursor == "b");
  auto page2 = f.h.list_rooms(a, {2u, page1->next_cursor});
  CHECK(page2->joined[0].name == "c");
  CHECK(page2->available[0].name == "d");
  CHECK(page2->next_cursor == "d");
  auto page3 = f.h.list_rooms(a, {2u, page2->next_cursor});
  CHECK(page3->joined.size() == 1);
  CHECK(page3->joined[0].name == "e");
  CHECK(page3->available.empty());
  CHECK_FALSE(page3->next_cursor);  // the last page says so by saying nothing
  CHECK(json(*page3).contains("nextCursor") == false);
  // A cursor that names no room (it expired meanwhile) still pages on from its place.
  auto after_bb = f.h.list_rooms(a, {5u, std::string("bb")});
  CHECK(after_bb->joined.size() == 2);  // c, e
  CHECK(after_bb->available.size() == 1);  // d
  // Without a limit: everything here, in the old shape.
  auto all = f.h.list_rooms(a);
  CHECK(all->joined.size() == 3);
  CHECK(all->available.size() == 2);
  CHECK_FALSE(json(*all).contains("nextCursor"));
}

TEST_CASE("list_rooms without a limit stops at the default page and says where to go on") {
  hub_config config;
  config.room_creation = {1000, 1000};
  fixture f(config);
  auto a = f.session();
  for (int i = 0; i < static_cast<int>(default_list_rooms_page) + 3; ++i) f.join(a, room_name(i));
  auto first = f.h.list_rooms(a);
  REQUIRE(first);
  CHECK(first->joined.size() == default_list_rooms_page);
  REQUIRE(first->next_cursor);
  CHECK(*first->next_cursor == room_name(static_cast<int>(default_list_rooms_page) - 1));
  auto rest = f.h.list_rooms(a, {std::nullopt, first->next_cursor});
  CHECK(rest->joined.size() == 3);
  CHECK_FALSE(rest->next_cursor);
}

TEST_CASE("list_rooms and who_is_here refuse a bad limit or cursor with InvalidArgumentError") {
  fixture f;
  auto a = f.session();
  f.join(a, "lobby");
  for (std::uint32_t bad : {0u, max_list_rooms_limit + 1}) {
    auto r = f.h.list_rooms(a, {bad, std::nullopt});
    REQUIRE_FALSE(r);
    CHECK(r.error().details == json{{"field", "limit"}, {"rule", "integer 1..350"}});
  }
  auto cursor = f.h.list_rooms(a, {std::nullopt, std::string("Not A Room")});
  CHECK(cursor.error().details == json{{"field", "cursor"}, {"rule", std::string(cursor_rule)}});
  auto who_limit = f.h.who_is_here(a, {"lobby", max_who_is_here_limit + 1, std::nullopt});
  CHECK(who_limit.error().details == json{{"field", "limit"}, {"rule", "integer 1..500"}});
  for (const char* bad : {"", "x", "-1", "12345678901234567890"}) {
    CAPTURE(bad);
    CHECK(f.h.who_is_here(a, {"lobby", std::nullopt, std::string(bad)}).error().details["field"] == "cursor");
  }
}

TEST_CASE("who_is_here pages in join order, and a member leaving between pages skips nobody") {
  fixture f;
  std::vector<session_handle> s;
  for (const char* n : {"m1", "m2", "m3", "m4", "m5"}) {
    s.push_back(f.session());
    f.join(s.back(), "lobby", std::string(n));
  }
  auto page1 = f.h.who_is_here(s[0], {"lobby", 2u, std::nullopt});
  REQUIRE(page1);
  CHECK(page1->nicknames == std::vector<std::string>{"m1", "m2"});
  REQUIRE(page1->next_cursor);
  REQUIRE(f.h.leave_room(s[1], {"lobby"}, epoch));  // m2, the cursor's own member, leaves
  REQUIRE(f.h.leave_room(s[2], {"lobby"}, epoch));  // and m3, the next one
  f.join(s[2], "lobby", std::string("m3-again"));    // rejoins at the end
  auto page2 = f.h.who_is_here(s[0], {"lobby", 2u, page1->next_cursor});
  CHECK(page2->nicknames == std::vector<std::string>{"m4", "m5"});
  auto page3 = f.h.who_is_here(s[0], {"lobby", 2u, page2->next_cursor});
  CHECK(page3->nicknames == std::vector<std::string>{"m3-again"});
  CHECK_FALSE(page3->next_cursor);
  auto all = f.h.who_is_here(s[0], {"lobby"});
  CHECK(all->nicknames == std::vector<std::string>{"m1", "m4", "m5", "m3-again"});
  CHECK_FALSE(all->next_cursor);
}
