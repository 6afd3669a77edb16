// SPDX-License-Identifier: MIT
// parley::basic_client against the core server in memory, and by hand where the server would answer too well.
#include <parley/parley.hpp>

#include "in_memory_network.hpp"
#include "scripted_server.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace parley;
using parley::testing::in_memory_network;
using parley::testing::test_policy;
using parley::testing::test_random;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

using test_client = basic_client<test_policy>;
using mono_time = in_memory_network::time;

// A client on the network that keeps every event and, unless told not to, acks each
// message as soon as it sees it.
struct peer : in_memory_network::endpoint {
  in_memory_network& net;
  test_client c;
  std::vector<client_event> events;
  bool ack_messages = true;

  peer(in_memory_network& n, std::uint64_t seed, client_config config = {})
      : net(n), c(std::move(config), test_random(seed)) {}

  bool step(in_memory_network& n) override {
    auto a = c.poll(n.now());
    const bool moved = !a.events.empty();
    for (auto& e : a.events) {
      if (auto* m = std::get_if<room_message_frame>(&e); m && ack_messages) c.ack(m->room, m->seq, m->to.has_value());
      events.push_back(std::move(e));
    }
    return n.apply(*this, a) || moved;
  }
  void connected(mono_time now) override { c.connected(now); }
  void receive(std::string_view bytes, mono_time now) override { c.receive(bytes, now); }
  void disconnected(mono_time now, std::string why) override { c.disconnected(now, std::move(why)); }

  template <class E>
  std::vector<E> all() const {
    std::vector<E> out;
    for (const auto& e : events)
      if (const auto* x = std::get_if<E>(&e)) out.push_back(*x);
    return out;
  }

  std::optional<client_event> outcome(call_id id) const {
    for (const auto& e : events) {
      if (const auto* ok = std::get_if<call_succeeded>(&e); ok && ok->call == id) return e;
      if (const auto* failed = std::get_if<call_failed>(&e); failed && failed->call == id) return e;
    }
    return std::nullopt;
  }

  json ok(tool_args args) {
    const call_id id = c.call(std::move(args));
    net.settle();
    const auto o = outcome(id);
    REQUIRE(o);
    if (const auto* failed = std::get_if<call_failed>(&*o)) FAIL("the call failed: ", failed->code, " ", failed->message);
    return std::get<call_succeeded>(*o).result;
  }

  call_failed failed(tool_args args) {
    const call_id id = c.call(std::move(args));
    net.settle();
    const auto o = outcome(id);
    REQUIRE(o);
    REQUIRE(std::holds_alternative<call_failed>(*o));
    return std::get<call_failed>(*o);
  }

  std::vector<std::string> bodies() const {
    std::vector<std::string> out;
    for (const auto& m : all<room_message_frame>()) out.push_back(m.body);
    return out;
  }
};

join_room_args join(std::string room, std::optional<std::string> nickname = std::nullopt) {
  return {std::move(room), std::move(nickname)};
}
send_message_args say(std::string room, std::string body) { return {std::move(room), std::move(body), std::nullopt}; }
send_message_args tell(std::string room, std::string to, std::string body) {
  return {std::move(room), std::move(body), std::nullopt, std::move(to)};
}

const mono_time t0{milliseconds(1'000'000)};

}  // namespace

TEST_CASE("client: connects at the first poll, joins, sends, and receives the others' messages but not its own") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  REQUIRE(alice.c.session_open());
  REQUIRE(alice.all<session_opened>().size() == 1);
  CHECK_FALSE(alice.all<session_opened>()[0].resumed);
  REQUIRE(alice.c.session());
  CHECK(alice.c.session()->session_id.size() == 36);

  CHECK(alice.ok(join("lobby", "alice"))["nickname"] == "alice");
  const auto refused = bob.failed(join("lobby", "ALICE"));
  CHECK(refused.why == call_failure::refused);
  CHECK(refused.code == "NicknameTakenError");
  CHECK(refused.details["nickname"] == "ALICE");
  CHECK(bob.ok(join("lobby", "bob"))["membersCount"] == 2);
  CHECK(alice.c.rooms() == std::map<std::string, std::string, std::less<>>{{"lobby", "alice"}});
  const auto sent = alice.ok(say("lobby", "hello"));
  CHECK(sent["seq"] == 1);
  const auto got = bob.all<room_message_frame>();
  REQUIRE(got.size() == 1);
  CHECK(got[0].body == "hello");
  CHECK(got[0].from_nickname == "alice");
  CHECK(got[0].message_id == sent["messageId"]);
  CHECK(bob.c.last_seq("lobby") == 1);
  CHECK(alice.all<room_message_frame>().empty());
  CHECK(bob.ok(leave_room_args{"lobby"})["room"] == "lobby");
  CHECK(bob.c.rooms().empty());
}

TEST_CASE("client: a message stays in the server's ring until the caller acks it") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  alice.ok(join("lobby"));
  bob.ok(join("lobby"));
  bob.ack_messages = false;
  alice.ok(say("lobby", "one"));
  alice.ok(say("lobby", "two"));
  REQUIRE(bob.all<room_message_frame>().size() == 2);
  CHECK(net.unacked(bob, "lobby") == 2);
  bob.c.ack("lobby", 1);
  net.settle();
  CHECK(net.unacked(bob, "lobby") == 1);
  bob.c.ack("lobby", 2);
  net.settle();
  CHECK(net.unacked(bob, "lobby") == 0);
}

TEST_CASE("client: after a drop it resumes, replays what it missed once and in order, and resends calls in flight") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  alice.ok(join("lobby", "alice"));
  bob.ok(join("lobby", "bob"));
  bob.ack_messages = false;  // the replay after the resume must still skip what was passed on
  alice.ok(say("lobby", "before"));
  net.cut(bob);
  net.settle();
  REQUIRE(bob.all<connection_closed>().size() == 1);
  CHECK(bob.all<connection_closed>()[0].was_open);
  CHECK(bob.all<connection_closed>()[0].reconnecting);
  CHECK(bob.all<connection_closed>()[0].reason.empty());  // the transport ended by itself
  alice.ok(say("lobby", "away-1"));
  alice.ok(say("lobby", "away-2"));

  // A send whose answer is lost with the link, and a leave in the same position.
  const call_id send = alice.c.call(say("lobby", "once"));
  const auto sent = alice.c.poll(net.now());
  net.deliver_then_cut(alice, sent.send);
  const call_id leave = alice.c.call(leave_room_args{"side"});  // no connection: fails at once
  net.advance(seconds(11));
  REQUIRE(alice.c.session_open());
  REQUIRE(bob.c.session_open());
  CHECK(bob.all<session_opened>().back().resumed);
  CHECK(bob.bodies() == std::vector<std::string>{"before", "away-1", "away-2", "once"});
  REQUIRE(alice.outcome(send));
  CHECK(std::holds_alternative<call_succeeded>(*alice.outcome(send)));
  REQUIRE(alice.outcome(leave));
  CHECK(std::get<call_failed>(*alice.outcome(leave)).why == call_failure::unreachable);
  CHECK(bob.c.last_seq("lobby") == 4);
}

TEST_CASE("client: a leave in flight when the connection drops fails; it is not safe to send twice") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  net.settle();
  alice.ok(join("lobby"));
  const call_id leave = alice.c.call(leave_room_args{"lobby"});
  net.deliver_then_cut(alice, alice.c.poll(net.now()).send);
  net.settle();
  REQUIRE(alice.outcome(leave));
  CHECK(std::get<call_failed>(*alice.outcome(leave)).why == call_failure::connection_lost);
}

TEST_CASE("client: a refused resume starts a new session that rejoins as name-2 when the name was taken") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  net.settle();
  alice.ok(join("lobby", "alice"));
  alice.ok(join("side", "alice"));
  // A send whose answer is lost, then a restart: in a new session it cannot be retried safely.
  const call_id send = alice.c.call(say("lobby", "lost?"));
  net.deliver_then_cut(alice, alice.c.poll(net.now()).send);
  net.restart_server();
  peer& impostor = net.add<peer>(5);
  net.settle();
  impostor.ok(join("lobby", "Alice"));
  net.advance(seconds(11));
  REQUIRE(alice.c.session_open());

  REQUIRE(alice.all<resume_refused>().size() == 1);
  CHECK(alice.all<resume_refused>()[0].code == "UnknownSessionError");
  const auto closed = alice.all<connection_closed>();
  REQUIRE(closed.size() == 2);  // the restart, then the server's close after hello.err
  CHECK(closed[1].reason == "resume refused");
  CHECK(closed[1].close_code == 4001);
  const auto opened = alice.all<session_opened>();
  REQUIRE(opened.size() == 2);
  CHECK_FALSE(opened[1].resumed);
  CHECK(opened[1].rejoining == std::vector<std::string>{"lobby", "side"});
  REQUIRE(alice.outcome(send));
  CHECK(std::get<call_failed>(*alice.outcome(send)).why == call_failure::session_reset);
  const auto rejoined = alice.all<room_rejoined>();
  REQUIRE(rejoined.size() == 2);
  CHECK(alice.c.rooms() == std::map<std::string, std::string, std::less<>>{{"lobby", "alice-2"}, {"side", "alice"}});
  CHECK(impostor.ok(who_is_here_args{"lobby"})["nicknames"] == json::array({"Alice", "alice-2"}));
}

TEST_CASE("client: a call waits for a connection under way, and fails at once with none") {
  test_client c({}, test_random(1));
  const call_id early = c.call(list_rooms_args{});  // before the first poll: nothing is under way
  auto a = c.poll(t0);
  REQUIRE(a.dial);
  REQUIRE(a.events.size() == 1);
  CHECK(std::get<call_failed>(a.events[0]).call == early);
  CHECK(std::get<call_failed>(a.events[0]).why == call_failure::unreachable);
  CHECK(std::get<call_failed>(a.events[0]).code.empty());

  const call_id waiting = c.call(list_rooms_args{});
  CHECK(c.poll(t0).events.empty());
  c.disconnected(t0);  // the dial failed
  a = c.poll(t0);
  REQUIRE(a.events.size() == 2);
  CHECK(std::holds_alternative<connection_closed>(a.events[0]));
  CHECK_FALSE(std::get<connection_closed>(a.events[0]).was_open);
  CHECK(std::get<call_failed>(a.events[1]).call == waiting);
  CHECK(std::get<call_failed>(a.events[1]).why == call_failure::unreachable);
}

TEST_CASE("client: a refused hello is reported, retried after a backoff, and named when calls fail meanwhile") {
  in_memory_network net;
  client_config config;
  config.client_version = "9.0.0";
  peer& p = net.add<peer>(1, config);
  net.settle();
  const auto refused = p.all<hello_refused>();
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].code == "VersionMismatchError");
  CHECK(p.all<connection_closed>()[0].reason == "hello refused");
  CHECK(p.all<connection_closed>()[0].close_code == 4004);  // the server's close, which the client waited for
  const auto f = p.failed(list_rooms_args{});
  CHECK(f.why == call_failure::unreachable);
  CHECK(f.code == "VersionMismatchError");
  CHECK(f.message.find("9.0.0") != std::string::npos);
}

TEST_CASE("client: the handshake must finish within connect_timeout; the transport is closed before the next dial") {
  test_client c({}, test_random(1));
  REQUIRE(c.poll(t0).dial);
  c.connected(t0);
  auto a = c.poll(t0);
  CHECK(a.send.rfind("GET / HTTP/1.1\r\nHost: 127.0.0.1:7539\r\n", 0) == 0);
  REQUIRE(a.deadline);
  CHECK(*a.deadline == t0 + seconds(10));
  CHECK_FALSE(c.poll(t0 + seconds(10) - milliseconds(1)).close);
  a = c.poll(t0 + seconds(10));
  CHECK(a.close);
  CHECK_FALSE(a.dial);
  REQUIRE(a.events.size() == 1);
  CHECK(std::get<connection_closed>(a.events[0]).reason == "the server did not complete the handshake in time");
  // Until the caller says the transport is closed, nothing is dialed, however late it is.
  CHECK_FALSE(c.poll(t0 + seconds(60)).dial);
  c.disconnected(t0 + seconds(60));
  CHECK(c.poll(t0 + seconds(60)).dial);
}

TEST_CASE("client: 90 s without a byte from the server drops the connection") {
  in_memory_network net;
  peer& p = net.add<peer>(1);
  net.settle();
  REQUIRE(p.c.session_open());
  net.clock += seconds(89);  // the server's timers do not run, so it sends no ping
  net.settle();
  CHECK(p.c.session_open());
  net.clock += seconds(1);
  net.settle();
  REQUIRE_FALSE(p.all<connection_closed>().empty());
  CHECK(p.all<connection_closed>()[0].reason == "the server went silent");
  net.advance(milliseconds(100));
  CHECK(p.c.session_open());  // and it resumed
  CHECK(p.all<session_opened>().back().resumed);
}

TEST_CASE("client: backoff is exponential with equal jitter: 50-100 ms first, doubling, capped at 5-10 s") {
  // The jitter draw pinned to each end of its range gives the bounds exactly.
  for (const bool upper : {false, true}) {
    CAPTURE(upper);
    test_random random(1);
    const auto fixed = random.fixed;
    test_client c({}, random);
    mono_time t = t0;
    std::vector<std::int64_t> waits;
    for (int i = 0; i < 10; ++i) {
      const std::int64_t step = std::min<std::int64_t>(10000, std::int64_t{100} << i);
      *fixed = static_cast<std::uint64_t>(upper ? step / 2 : 0);  // random_below(step/2 + 1) yields it as it is
      REQUIRE(c.poll(t).dial);
      c.disconnected(t);
      const auto deadline = c.poll(t).deadline;
      REQUIRE(deadline);
      waits.push_back((*deadline - t).count());
      CHECK_FALSE(c.poll(*deadline - milliseconds(1)).dial);
      t = *deadline;
    }
    if (upper) CHECK(waits == std::vector<std::int64_t>{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000});
    else CHECK(waits == std::vector<std::int64_t>{50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000});
  }
  // And any draw lands between them.
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    test_client c({}, test_random(seed));
    mono_time t = t0;
    for (int i = 0; i < 10; ++i) {
      const std::int64_t step = std::min<std::int64_t>(10000, std::int64_t{100} << i);
      REQUIRE(c.poll(t).dial);
      c.disconnected(t);
      const auto wait = (*c.poll(t).deadline - t).count();
      CHECK(wait >= step / 2);
      CHECK(wait <= step);
      t += milliseconds(wait);
    }
  }
}

TEST_CASE("client: a session that stayed open 10 s resets the backoff, so the next drop retries within 100 ms") {
  in_memory_network net;
  net.server_up = false;
  peer& p = net.add<peer>(3);
  for (int i = 0; i < 6; ++i) net.advance(seconds(4));  // six refused dials: the step is up to 3.2 s
  net.server_up = true;
  net.advance(seconds(10));
  REQUIRE(p.c.session_open());
  net.advance(seconds(10));  // healthy_after
  net.cut(p);
  const auto a = p.c.poll(net.now());
  REQUIRE(a.deadline);
  CHECK((*a.deadline - net.now()) >= milliseconds(50));
  CHECK((*a.deadline - net.now()) <= milliseconds(100));
}

TEST_CASE("client: close() ends the session with 1000 at once, and fails what it leaves unanswered") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  alice.ok(join("lobby", "alice"));
  bob.ok(join("lobby", "bob"));
  alice.c.close(net.now());
  const call_id late = alice.c.call(list_rooms_args{});
  net.settle();
  CHECK(alice.c.finished());
  CHECK(std::get<call_failed>(*alice.outcome(late)).why == call_failure::closed);
  CHECK_FALSE(alice.all<connection_closed>().back().reconnecting);
  CHECK(bob.ok(who_is_here_args{"lobby"})["nicknames"] == json::array({"bob"}));

  // Never connected: finished at once. Connecting: the attempt is abandoned and its waiting calls fail.
  test_client idle({}, test_random(1));
  idle.close(t0);
  CHECK(idle.poll(t0).finished);
  test_client dialing({}, test_random(1));
  REQUIRE(dialing.poll(t0).dial);
  const call_id waiting = dialing.call(list_rooms_args{});
  dialing.close(t0);
  auto a = dialing.poll(t0);
  CHECK(a.close);
  CHECK_FALSE(a.finished);
  REQUIRE(a.events.size() == 1);
  CHECK(std::get<call_failed>(a.events[0]).call == waiting);
  CHECK(std::get<call_failed>(a.events[0]).why == call_failure::closed);
  dialing.disconnected(t0);
  CHECK(dialing.poll(t0).finished);
}

TEST_CASE("client: request ids number the wire requests, and each send_message gets its own clientMsgId") {
  test_client c({}, test_random(1));
  REQUIRE(c.poll(t0).dial);
  c.connected(t0);
  const std::string request = c.poll(t0).send;
  // Answer the upgrade and the hello by hand.
  const auto key_at = request.find("Sec-WebSocket-Key: ") + 19;
  const std::string key = request.substr(key_at, request.find("\r\n", key_at) - key_at);
  c.receive("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
                websocket_accept(key) + "\r\n\r\n",
            t0);
  websocket server_side(role::server);
  auto frames_of = [&](const std::string& bytes) {
    std::vector<client_frame> out;
    server_side.receive(bytes);
    while (auto e = server_side.next_event())
      if (auto* text = std::get_if<ws_text>(&*e)) {
        auto f = decode_client_frame(text->data);
        REQUIRE(f);
        out.push_back(*f);
      }
    return out;
  };
  server_side.receive(c.poll(t0).send);  // the hello
  while (server_side.next_event()) {
  }
  c.receive(encode_server_text_frame(encode_hello_ok({"s-1", "token", "0.1.0"})), t0);
  REQUIRE(c.session_open());
  c.call(say("lobby", "a"));
  c.call(say("lobby", "b"));
  c.call(list_rooms_args{});
  const auto frames = frames_of(c.poll(t0).send);
  REQUIRE(frames.size() == 3);
  const auto& first = std::get<tool_request>(frames[0]);
  const auto& second = std::get<tool_request>(frames[1]);
  CHECK(first.request_id == "c1");
  CHECK(second.request_id == "c2");
  CHECK(std::get<tool_request>(frames[2]).request_id == "c3");
  const auto& key1 = std::get<send_message_args>(first.args).client_msg_id;
  const auto& key2 = std::get<send_message_args>(second.args).client_msg_id;
  REQUIRE(key1);
  REQUIRE(key2);
  CHECK(*key1 != *key2);
  CHECK(key1->size() == 22);  // 16 random bytes in base64url
}

TEST_CASE("client: another client resumes a session from its snapshot, and the server replays after its seqs") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  alice.ok(join("lobby", "alice"));
  bob.ok(join("lobby", "bob"));
  bob.ack_messages = false;  // so both stay in the server's ring
  alice.ok(say("lobby", "1"));
  alice.ok(say("lobby", "2"));
  auto snapshot = bob.c.snapshot();
  REQUIRE(snapshot);
  CHECK(snapshot->session_id == bob.c.session()->session_id);
  CHECK(snapshot->rooms.at("lobby").nickname == "bob");
  CHECK(snapshot->rooms.at("lobby").last_seq == 2);
  snapshot->rooms["lobby"].last_seq = 1;  // as if only the first had been kept
  net.cut(bob);
  alice.ok(say("lobby", "3"));

  client_config config;
  config.resume_from = snapshot;
  peer& again = net.add<peer>(3, config);
  net.settle();
  REQUIRE(again.c.session_open());
  CHECK(again.all<session_opened>()[0].resumed);
  CHECK(again.c.session()->session_id == snapshot->session_id);
  CHECK(again.bodies() == std::vector<std::string>{"2", "3"});
  CHECK(again.c.rooms().at("lobby") == "bob");
}

TEST_CASE("client: a session that fails again at once does not reset the backoff") {
  in_memory_network net;
  net.server_up = false;
  peer& p = net.add<peer>(3);
  for (int i = 0; i < 6; ++i) net.advance(seconds(4));  // six refused dials: the next step is 6.4 s
  net.server_up = true;
  net.advance(seconds(10));
  REQUIRE(p.c.session_open());
  net.cut(p);  // before healthy_after, and no call was answered
  const auto a = p.c.poll(net.now());
  REQUIRE(a.deadline);
  CHECK((*a.deadline - net.now()) >= milliseconds(3200));
}

TEST_CASE("client: an answered call proves the connection, and resets the backoff at once") {
  in_memory_network net;
  net.server_up = false;
  peer& p = net.add<peer>(3);
  for (int i = 0; i < 6; ++i) net.advance(seconds(4));
  net.server_up = true;
  net.advance(seconds(10));
  REQUIRE(p.c.session_open());
  p.ok(list_rooms_args{});
  net.cut(p);
  const auto a = p.c.poll(net.now());
  REQUIRE(a.deadline);
  CHECK((*a.deadline - net.now()) <= milliseconds(100));
}

TEST_CASE("client: it takes from the server what the server takes from a client: one constant") {
  CHECK(client_config{}.websocket.max_message_bytes == max_websocket_message_bytes);
  CHECK(server_config{}.websocket.max_message_bytes == max_websocket_message_bytes);
  CHECK(websocket_limits{}.max_message_bytes == max_websocket_message_bytes);
}

namespace {

// A client against a scripted server answering every request with `answer`; the call is
// made once the session is open. Returns the dial times and the call's outcome.
struct scripted_run {
  std::vector<mono_time> dials;
  std::vector<client_event> events;
  std::optional<client_event> outcome;
  int requests = 0;
};

scripted_run run_call_against(std::function<std::string(const json&)> answer, seconds for_how_long) {
  parley::testing::scripted_server srv;
  srv.answer = std::move(answer);
  test_client c({}, test_random(5));
  scripted_run run;
  mono_time t = t0;
  auto receive = [&](std::string bytes, mono_time now) { c.receive(bytes, now); };
  auto seen = [&](test_client::actions& a) {
    for (auto& e : a.events) run.events.push_back(std::move(e));
    return !a.events.empty();
  };
  run.dials = parley::testing::run_scripted(c, srv, t, t0 + seconds(1), receive, seen);
  REQUIRE(c.session_open());
  const call_id id = c.call(list_rooms_args{});
  auto more = parley::testing::run_scripted(c, srv, t, t0 + for_how_long, receive, seen);
  run.dials.insert(run.dials.end(), more.begin(), more.end());
  for (const auto& e : run.events) {
    if (const auto* ok = std::get_if<call_succeeded>(&e); ok && ok->call == id) run.outcome = e;
    if (const auto* failed = std::get_if<call_failed>(&e); failed && failed->call == id) run.outcome = e;
  }
  run.requests = srv.requests;
  return run;
}

}  // namespace

TEST_CASE("client: an answer over the limit every time fails the call after 3 attempts, with growing backoff") {
  // The loop this guards against: 1009, resume, the same call again, backoff reset by
  // hello.ok: 13 reconnects a second and a call that never ends.
  const auto run = run_call_against(parley::testing::oversized_tool_ok, seconds(60));
  REQUIRE(run.outcome);
  REQUIRE(std::holds_alternative<call_failed>(*run.outcome));
  const auto& failed = std::get<call_failed>(*run.outcome);
  CHECK(failed.why == call_failure::gave_up);
  CHECK(failed.details["tool"] == "list_rooms");
  CHECK(failed.details["attempts"] == 3);
  CHECK(failed.details["reason"].get<std::string>().find("message larger than 65536") != std::string::npos);
  CHECK(failed.message.find("list_rooms") != std::string::npos);
  CHECK(failed.message.find("3 times") != std::string::npos);
  CHECK(run.requests == 3);
  // The first connection, two resumes that re-sent the call, one more that stays up.
  REQUIRE(run.dials.size() == 4);
  const auto gap = [&](std::size_t i) { return (run.dials[i + 1] - run.dials[i]).count(); };
  CHECK(gap(0) >= 50);
  CHECK(gap(0) <= 100);
  CHECK(gap(1) >= 100);
  CHECK(gap(1) <= 200);
  CHECK(gap(2) >= 200);
  CHECK(gap(2) <= 400);
}

TEST_CASE("client: an answer exactly at the limit is taken") {
  const auto run = run_call_against(
      [](const json& request) {
        const std::string id = request.value("requestId", "");
        const std::size_t pad = max_websocket_message_bytes - encode_tool_ok(id, json{{"pad", ""}}).size();
        return encode_server_text_frame(encode_tool_ok(id, json{{"pad", std::string(pad, 'x')}}));
      },
      seconds(5));
  REQUIRE(run.outcome);
  CHECK(std::holds_alternative<call_succeeded>(*run.outcome));
  CHECK(run.dials.size() == 1);
}

// ---- direct messages and rooms people control ------------------------------------

TEST_CASE("client: says it takes direct messages; one reaches its recipient only, with seqs apart from the room's") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  peer& carol = net.add<peer>(3);
  net.settle();
  alice.ok(join("lobby", "alice"));
  bob.ok(join("lobby", "bob"));
  carol.ok(join("lobby", "carol"));
  alice.ok(say("lobby", "to all"));
  // The server refuses a direct message to a client that did not say it takes them.
  const auto sent = alice.ok(tell("lobby", "bob", "psst"));
  CHECK(sent["seq"] == 1);
  CHECK(sent["to"] == "bob");
  const auto got = bob.all<room_message_frame>();
  REQUIRE(got.size() == 2);
  CHECK(got[1].body == "psst");
  REQUIRE(got[1].to);
  CHECK(*got[1].to == "bob");
  CHECK(got[1].seq == 1);
  CHECK(bob.c.last_seq("lobby") == 1);
  CHECK(bob.c.last_direct_seq("lobby") == 1);
  CHECK(carol.bodies() == std::vector<std::string>{"to all"});
  CHECK(carol.c.last_direct_seq("lobby") == 0);
  alice.ok(say("lobby", "again"));
  CHECK(carol.all<room_message_frame>().back().seq == 2);  // no gap for the others
}

TEST_CASE("client: a direct message is acked with direct=true and leaves the server's direct ring only then") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  alice.ok(join("lobby", "alice"));
  bob.ok(join("lobby", "bob"));
  bob.ack_messages = false;
  alice.ok(say("lobby", "room"));
  alice.ok(tell("lobby", "bob", "d1"));
  alice.ok(tell("lobby", "bob", "d2"));
  CHECK(net.unacked(bob, "lobby") == 1);
  CHECK(net.unacked_direct(bob, "lobby") == 2);
  bob.c.ack("lobby", 1, true);
  net.settle();
  CHECK(net.unacked_direct(bob, "lobby") == 1);
  CHECK(net.unacked(bob, "lobby") == 1);  // a direct ack is not a room ack
  bob.c.ack("lobby", 2, true);
  bob.c.ack("lobby", 1);
  net.settle();
  CHECK(net.unacked_direct(bob, "lobby") == 0);
  CHECK(net.unacked(bob, "lobby") == 0);
}

TEST_CASE("client: after a drop the resume names the direct seqs passed on, and direct messages replay once") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  alice.ok(join("lobby", "alice"));
  bob.ok(join("lobby", "bob"));
  bob.ack_messages = false;  // passed on but not acked: the resume alone must keep them from coming twice
  alice.ok(tell("lobby", "bob", "d1"));
  alice.ok(say("lobby", "r1"));
  net.cut(bob);
  alice.ok(tell("lobby", "bob", "d2"));
  alice.ok(say("lobby", "r2"));
  net.advance(seconds(11));
  REQUIRE(bob.c.session_open());
  CHECK(bob.all<session_opened>().back().resumed);
  auto bodies = bob.bodies();
  std::sort(bodies.begin() + 2, bodies.end());  // the room's replay comes before the direct one
  CHECK(bodies == std::vector<std::string>{"d1", "r1", "d2", "r2"});
  CHECK(bob.c.last_direct_seq("lobby") == 2);
  CHECK(bob.c.last_seq("lobby") == 2);
  CHECK(net.unacked_direct(bob, "lobby") == 1);  // the resume acked d1 for us, d2 waits for the caller
}

TEST_CASE("client: a snapshot carries the direct seqs, and a resume from it replays the direct messages after them") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  alice.ok(join("lobby", "alice"));
  bob.ok(join("lobby", "bob"));
  bob.ack_messages = false;
  alice.ok(tell("lobby", "bob", "d1"));
  alice.ok(tell("lobby", "bob", "d2"));
  auto snapshot = bob.c.snapshot();
  REQUIRE(snapshot);
  CHECK(snapshot->rooms.at("lobby").last_direct_seq == 2);
  CHECK(snapshot->rooms.at("lobby").last_seq == 0);
  snapshot->rooms["lobby"].last_direct_seq = 1;  // as if only the first had been kept
  net.cut(bob);
  alice.ok(tell("lobby", "bob", "d3"));
  client_config config;
  config.resume_from = snapshot;
  peer& again = net.add<peer>(3, config);
  net.settle();
  REQUIRE(again.c.session_open());
  CHECK(again.all<session_opened>()[0].resumed);
  CHECK(again.bodies() == std::vector<std::string>{"d2", "d3"});
  CHECK(again.c.last_direct_seq("lobby") == 3);
}

TEST_CASE("client: a new session's direct stream starts at 1 again, and is not taken for a replay") {
  in_memory_network net;
  peer& alice = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  alice.ok(join("lobby", "alice"));
  bob.ok(join("lobby", "bob"));
  alice.ok(tell("lobby", "bob", "d1"));
  alice.ok(tell("lobby", "bob", "d2"));
  net.restart_server();
  net.advance(seconds(11));
  REQUIRE(alice.c.session_open());
  REQUIRE(bob.c.session_open());
  CHECK_FALSE(bob.all<session_opened>().back().resumed);
  CHECK(bob.c.last_direct_seq("lobby") == 0);
  alice.ok(tell("lobby", "bob", "after"));
  CHECK(bob.bodies().back() == "after");
  CHECK(bob.all<room_message_frame>().back().seq == 1);
  // Leaving ends the membership's direct stream too; a rejoin starts a new one.
  bob.ok(leave_room_args{"lobby"});
  CHECK(bob.c.last_direct_seq("lobby") == 0);
  bob.ok(join("lobby", "bob"));
  alice.ok(tell("lobby", "bob", "rejoined"));
  CHECK(bob.bodies().back() == "rejoined");
}

TEST_CASE("client: approved makes the room one to rejoin, under the event's nickname; kicked forgets it") {
  in_memory_network net;
  peer& owner = net.add<peer>(1);
  peer& bob = net.add<peer>(2);
  net.settle();
  CHECK(owner.ok(create_room_args{"den", room_visibility::private_room, std::string("owner")})["role"] == "owner");
  CHECK(owner.c.rooms().count("den") == 1);
  const auto knocked = bob.ok(knock_args{"den", std::string("bobby"), std::string("let me in")});
  const std::string id = knocked["knockId"];
  const auto knocks = owner.all<room_event_frame>();
  REQUIRE(knocks.size() == 1);
  CHECK(knocks[0].kind == "knock");
  CHECK(knocks[0].fields["knockId"] == id);
  CHECK(knocks[0].fields["note"] == "let me in");
  CHECK(owner.ok(knock_answer_args{"den", id, true})["nickname"] == "bobby");
  const auto events = bob.all<room_event_frame>();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == "approved");
  CHECK(bob.c.rooms() == std::map<std::string, std::string, std::less<>>{{"den", "bobby"}});
  owner.ok(say("den", "welcome"));
  CHECK(bob.bodies() == std::vector<std::string>{"welcome"});
  CHECK(bob.c.snapshot()->rooms.at("den").nickname == "bobby");

  // A new session rejoins it like a room it joined.
  net.restart_server();
  net.advance(seconds(11));
  REQUIRE(bob.c.session_open());
  const auto opened = bob.all<session_opened>();
  CHECK(opened.back().rejoining == std::vector<std::string>{"den"});

  in_memory_network net2;
  peer& o2 = net2.add<peer>(1);
  peer& b2 = net2.add<peer>(2);
  net2.settle();
  o2.ok(create_room_args{"den", room_visibility::private_room, std::string("owner")});
  const std::string code = o2.ok(invite_args{"den", std::nullopt, std::nullopt, member_role::member})["code"];
  b2.ok(join_room_args{"den", std::string("b"), code});
  CHECK(b2.c.rooms().count("den") == 1);
  o2.ok(member_action_args{"den", "b", member_action::kick});
  CHECK(b2.all<room_event_frame>().back().kind == "kicked");
  CHECK(b2.c.rooms().empty());
  CHECK(b2.c.last_direct_seq("den") == 0);
}
