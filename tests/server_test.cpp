// SPDX-License-Identifier: MIT
// The sans-I/O server end to end: HTTP routes, upgrade, hello/resume, tool frames, fan-out, closes, limits.
#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using namespace parley;
using parley::testing::epoch;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

struct harness {
  memory_room_store store;
  hub h;
  server srv;
  time_point now = epoch;
  std::map<connection_id, std::string> inbox;  // bytes written to each connection
  std::map<connection_id, bool> closed;        // the server asked to close it
  bool count_written = true;

  explicit harness(server_config config = {}, server_hooks hooks = {}, hub_config hc = {})
      : h(std::move(*hub::open(store, testing::seeded_random(9), websocket_hub_config(std::move(hc))))),
        srv(h, config, std::move(hooks)) {}

  void pump() {
    for (connection_id id : srv.take_writable()) {
      connection_output out = srv.take_output(id);
      std::size_t n = 0;
      for (const auto& f : out.frames) {
        inbox[id] += *f;
        n += f->size();
      }
      if (count_written) srv.written(id, n);
      if (out.close_after) closed[id] = true;
    }
  }
};

// A WebSocket client speaking to the harness through the core's own client codec.
struct client {
  harness& H;
  connection_id id;
  websocket ws{role::client, testing::seeded_random(3)};
  http_response_parser http;
  std::optional<http_response> response;
  std::vector<json> frames;
  std::optional<ws_close> close;
  std::size_t read_pos = 0;

  explicit client(harness& h) : H(h), id(*h.srv.accept(h.now)) {}

  void raw(std::string_view bytes) {
    H.srv.receive(id, bytes, H.now);
    H.pump();
  }

  void upgrade(std::string extra_headers = "") {
    raw("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
        extra_headers + "\r\n");
    read();
    REQUIRE(response);
    REQUIRE(response->status == 101);
  }

  void send(const std::string& text) { raw(ws.encode_text(text)); }
  void send_json(const json& j) { send(j.dump()); }

  json hello(std::optional<std::string> token = std::nullopt) {
    json h{{"_tag", "hello"}, {"clientVersion", "0.1.0"}};
    if (token) h["authToken"] = *token;
    send_json(h);
    return next();
  }

  // Reads everything the server wrote so far.
  void read() {
    std::string& in = H.inbox[id];
    std::string_view fresh = std::string_view(in).substr(read_pos);
    read_pos = in.size();
    if (!response) {
      auto r = http.feed(fresh);
      if (r.status != http_parse_status::complete) return;
      response = http.take_response();
      fresh.remove_prefix(r.consumed);
      if (response->status != 101) return;
    }
    ws.receive(fresh);
    while (auto e = ws.next_event()) {
      if (auto* t = std::get_if<ws_text>(&*e)) frames.push_back(json::parse(t->data));
      else if (auto* c = std::get_if<ws_close>(&*e)) close = *c;
      else if (auto* p = std::get_if<ws_ping>(&*e)) raw(ws.encode_pong(p->payload));
    }
  }

  // The oldest unread frame.
  json next() {
    read();
    REQUIRE_MESSAGE(!frames.empty(), "no frame arrived");
    json f = frames.front();
    frames.erase(frames.begin());
    return f;
  }

  json call(json request) {
    request["requestId"] = "r";
    send_json(request);
    return next();
  }

  bool server_closed() const { return H.closed.count(id) > 0; }
};

client connected(harness& h, const std::string& nickname = "", const std::string& room = "lobby") {
  client c(h);
  c.upgrade();
  auto ok = c.hello();
  REQUIRE(ok["_tag"] == "hello.ok");
  if (!nickname.empty()) {
    auto joined = c.call({{"_tag", "tool.join_room"}, {"room", room}, {"nickname", nickname}});
    REQUIRE(joined["_tag"] == "tool.ok");
  }
  return c;
}

std::string body_of(const harness& h, connection_id id) {
  const std::string& in = h.inbox.at(id);
  return in.substr(in.find("\r\n\r\n") + 4);
}

}  // namespace

TEST_CASE("HTTP on the WebSocket port: healthz, metrics, 404, 426, 405, 400, 431") {
  harness h;
  client health(h);
  health.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(h.inbox[health.id].rfind("HTTP/1.1 200", 0) == 0);
  CHECK(body_of(h, health.id) == "ok\n");
  CHECK(health.server_closed());

  client metrics(h);
  metrics.raw("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string text = body_of(h, metrics.id);
  for (const char* name : {"parley_connections ", "parley_sessions ", "parley_rooms ", "parley_memberships ",
                           "parley_messages_total ", "parley_deliveries_total ", "parley_rate_limited_total ",
                           "parley_replay_overflows_total ", "parley_slow_consumer_closes_total ",
                           "parley_bytes_in_total ", "parley_bytes_out_total "})
    CHECK_MESSAGE(text.find(std::string("\n") + name) != std::string::npos, name);
  CHECK(h.inbox[metrics.id].find("Content-Type: text/plain; version=0.0.4") != std::string::npos);

  auto status_of = [&](const std::string& request) {
    client c(h);
    c.raw(request);
    CHECK(c.server_closed());
    return std::stoi(h.inbox[c.id].substr(9, 3));
  };
  CHECK(status_of("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n") == 404);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 426);
  CHECK(status_of("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") == 405);
  CHECK(status_of("NOT HTTP\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n") == 431);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n") == 426);
}

TEST_CASE("upgrade, hello, join, send: fan-out without self-echo") {
  harness h;
  client alice = connected(h, "alice");
  client bob = connected(h, "bob");
  CHECK(h.inbox[alice.id].find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);
  auto sent = alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "hi bob"}});
  REQUIRE(sent["_tag"] == "tool.ok");
  auto msg = bob.next();
  CHECK(msg["_tag"] == "room.message");
  CHECK(msg["body"] == "hi bob");
  CHECK(msg["fromNickname"] == "alice");
  CHECK(msg["seq"] == sent["result"]["seq"]);
  alice.read();
  CHECK(alice.frames.empty());
}

TEST_CASE("a hello sent right behind the upgrade request in the same bytes is served") {
  harness h;
  client c(h);
  websocket ws(role::client, testing::seeded_random(1));
  c.raw("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" +
        c.ws.encode_text(R"({"_tag":"hello","clientVersion":"0.1.0"})"));
  CHECK(c.next()["_tag"] == "hello.ok");
}

TEST_CASE("the whole exchange gives the same answers fed byte by byte") {
  harness h;
  client c(h);
  const std::string upgrade = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const std::string frames = c.ws.encode_text(R"({"_tag":"hello","clientVersion":"0.1.0"})") +
                             c.ws.encode_text(R"({"_tag":"tool.join_room","requestId":"1","room":"lobby"})");
  for (char ch : upgrade + frames) c.raw(std::string(1, ch));
  CHECK(c.next()["_tag"] == "hello.ok");
  auto joined = c.next();
  CHECK(joined["requestId"] == "1");
  CHECK(joined["result"]["membersCount"] == 1);
}

TEST_CASE("a bad first frame is hello.err BadHandshakeFrameError and close 1002") {
  harness h;
  client c(h);
  c.upgrade();
  c.send(R"({"_tag":"tool.list_rooms","requestId":"1"})");
  auto err = c.next();
  CHECK(err["_tag"] == "hello.err");
  CHECK(err["code"] == "BadHandshakeFrameError");
  REQUIRE(c.close);
  CHECK(c.close->code == 1002);
  CHECK(c.server_closed());
}

TEST_CASE("auth: no token 4000, bad or revoked token 4000, right token ok, Bearer header accepted") {
  server_hooks hooks;
  hooks.authenticate = [](const std::optional<std::string>& token) -> auth_verdict {
    if (!token) return {error{error_code::auth_required, "a token is required", nullptr}, ""};
    if (*token == "parley_tok_revoked") return {error{error_code::token_revoked, "revoked", nullptr}, "old"};
    if (*token != "parley_tok_good") return {error{error_code::bad_token, "unknown token", nullptr}, ""};
    return {std::nullopt, "laptop"};
  };
  harness h({}, hooks);
  for (auto [token, code] : std::vector<std::pair<std::optional<std::string>, std::string>>{
           {std::nullopt, "AuthRequiredError"}, {std::string("parley_tok_revoked"), "TokenRevokedError"},
           {std::string("parley_tok_wrong"), "BadTokenError"}}) {
    client c(h);
    c.upgrade();
    auto err = c.hello(token);
    CHECK(err["code"] == code);
    REQUIRE(c.close);
    CHECK(c.close->code == 4000);
  }
  client good(h);
  good.upgrade();
  CHECK(good.hello(std::string("parley_tok_good"))["_tag"] == "hello.ok");
  client bearer(h);
  bearer.upgrade("Authorization: Bearer parley_tok_good\r\n");
  CHECK(bearer.hello()["_tag"] == "hello.ok");

  // revoking the label closes its live sessions with 4000 and ends them
  REQUIRE(good.call({{"_tag", "tool.join_room"}, {"room", "lobby"}, {"nickname", "good"}})["_tag"] == "tool.ok");
  h.srv.close_sessions_of_label("laptop");
  h.pump();
  good.read();
  REQUIRE(good.close);
  CHECK(good.close->code == 4000);
  CHECK(h.h.stats().sessions == 0);
}

TEST_CASE("a 1000 close ends the session at once; any other drop detaches it for the grace period") {
  server_config config;
  config.pong_timeout = seconds(120);  // bob stays quiet through the grace period below
  harness h(config);
  client alice = connected(h, "alice");
  client bob = connected(h, "bob");
  auto who = [&] { return bob.call({{"_tag", "tool.who_is_here"}, {"room", "lobby"}})["result"]["nicknames"]; };
  alice.raw(alice.ws.encode_close(1000, "bye"));
  alice.read();
  REQUIRE(alice.close);
  CHECK(alice.close->code == 1000);
  CHECK(alice.server_closed());
  CHECK(who() == json::array({"bob"}));

  client carol = connected(h, "carol");
  h.srv.transport_closed(carol.id, h.now);  // abrupt: no close frame
  CHECK(who() == json::array({"bob", "carol"}));
  h.now += seconds(61);
  h.srv.on_timer(h.now);
  CHECK(who() == json::array({"bob"}));
}

TEST_CASE("abrupt drop then resume replays exactly what was missed") {
  harness h;
  client alice = connected(h, "alice");
  client bob(h);
  bob.upgrade();
  auto ok = bob.hello();
  REQUIRE(bob.call({{"_tag", "tool.join_room"}, {"room", "lobby"}, {"nickname", "bob"}})["_tag"] == "tool.ok");
  alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "one"}});
  auto first = bob.next();
  bob.send_json({{"_tag", "ack"}, {"room", "lobby"}, {"seq", first["seq"]}});
  h.srv.transport_closed(bob.id, h.now);
  alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "two"}});
  alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "three"}});

  client again(h);
  again.upgrade();
  again.send_json({{"_tag", "hello"},
                   {"clientVersion", "0.1.0"},
                   {"resume",
                    {{"sessionId", ok["sessionId"]},
                     {"reconnectToken", ok["reconnectToken"]},
                     {"lastAckedSeqByRoom", {{"lobby", first["seq"]}}}}}});
  auto resumed = again.next();
  CHECK(resumed["_tag"] == "hello.ok");
  CHECK(resumed["sessionId"] == ok["sessionId"]);
  CHECK(again.next()["body"] == "two");
  CHECK(again.next()["body"] == "three");
  again.read();
  CHECK(again.frames.empty());
}

TEST_CASE("resume failures: 4001 unknown session, 4002 bad token, 4003 overflow") {
  hub_config hc;
  hc.rate = {1000, 1000};
  harness h({}, {}, hc);
  client alice = connected(h, "alice");
  client bob(h);
  bob.upgrade();
  auto ok = bob.hello();
  bob.call({{"_tag", "tool.join_room"}, {"room", "lobby"}});
  h.srv.transport_closed(bob.id, h.now);
  auto resume_with = [&](json session_id, json token) {
    client c(h);
    c.upgrade();
    c.send_json({{"_tag", "hello"},
                 {"clientVersion", "0.1.0"},
                 {"resume", {{"sessionId", session_id}, {"reconnectToken", token}, {"lastAckedSeqByRoom", json::object()}}}});
    auto err = c.next();
    REQUIRE(c.close);
    return std::make_pair(err["code"].get<std::string>(), c.close->code);
  };
  CHECK(resume_with("no-such-session", ok["reconnectToken"]) == std::make_pair(std::string("UnknownSessionError"), std::uint16_t{4001}));
  CHECK(resume_with(ok["sessionId"], std::string(43, 'x')) == std::make_pair(std::string("BadReconnectTokenError"), std::uint16_t{4002}));
  for (int i = 0; i < 65; ++i) alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "m"}});
  CHECK(resume_with(ok["sessionId"], ok["reconnectToken"]) == std::make_pair(std::string("ReplayBufferOverflowError"), std::uint16_t{4003}));
  CHECK(resume_with(ok["sessionId"], ok["reconnectToken"]).second == 4001);  // the overflow ended it
}

TEST_CASE("a resume on a new connection takes the session from the old one, which is closed with 4009") {
  harness h;
  client first(h);
  first.upgrade();
  auto ok = first.hello();
  client second(h);
  second.upgrade();
  second.send_json({{"_tag", "hello"},
                    {"clientVersion", "0.1.0"},
                    {"resume", {{"sessionId", ok["sessionId"]}, {"reconnectToken", ok["reconnectToken"]},
                                {"lastAckedSeqByRoom", json::object()}}}});
  CHECK(second.next()["_tag"] == "hello.ok");
  first.read();
  REQUIRE(first.close);
  CHECK(first.close->code == 4009);
  h.srv.transport_closed(first.id, h.now);  // the old socket closing must not detach the new owner
  CHECK(h.h.stats().attached_sessions == 1);
}

TEST_CASE("bad frames after hello: BadFrameError, InvalidArgumentError under the requestId, 1002/1007/1009") {
  harness h;
  client c = connected(h);
  c.send("not json");
  CHECK(c.next()["code"] == "BadFrameError");
  auto bad = c.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", ""}});
  CHECK(bad["_tag"] == "tool.err");
  CHECK(bad["code"] == "InvalidArgumentError");
  CHECK(bad["requestId"] == "r");

  auto close_code_after = [&](std::string bytes) {
    client x = connected(h);
    x.raw(bytes);
    x.read();
    REQUIRE(x.close);
    CHECK(x.server_closed());
    return x.close->code;
  };
  CHECK(close_code_after(std::string("\x81\x05hello", 7)) == 1002);  // unmasked client frame
  websocket w(role::client, testing::seeded_random(4));
  CHECK(close_code_after(w.encode_text("\xC3\x28")) == 1007);
  CHECK(close_code_after(w.encode_text(std::string(64 * 1024 + 1, 'x'))) == 1009);
}

TEST_CASE("8192-byte bodies pass the server's 64 KiB frame limit; 8193 bytes are refused by the tool") {
  harness h;
  client a = connected(h, "a");
  client b = connected(h, "b");
  std::string body;
  for (int i = 0; i < 2048; ++i) body += "\xF0\x9F\x98\x80";
  CHECK(a.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", body}})["_tag"] == "tool.ok");
  CHECK(b.next()["body"] == body);
  CHECK(a.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", body + "x"}})["code"] == "InvalidArgumentError");
}

TEST_CASE("ping is answered with pong; keepalive pings go out and silence closes the connection") {
  server_config config;
  config.ping_interval = seconds(30);
  config.pong_timeout = seconds(60);
  harness h(config);
  client c = connected(h);
  c.raw(c.ws.encode_ping("are you there"));
  std::string_view in = h.inbox[c.id];
  CHECK(in.find("are you there") != std::string_view::npos);

  h.now += seconds(30);
  h.srv.on_timer(h.now);
  h.pump();
  const std::size_t before = h.inbox[c.id].size();
  CHECK(before > in.size());  // a ping went out
  c.read();                   // our client answers it, which counts as hearing from it
  h.now += seconds(59);
  h.srv.on_timer(h.now);
  h.pump();
  CHECK_FALSE(c.server_closed());

  client silent = connected(h);
  h.now += seconds(60);
  h.srv.on_timer(h.now);
  h.pump();
  CHECK(silent.server_closed());
}

TEST_CASE("the handshake must finish within the timeout: slow-loris connections are closed") {
  server_config config;
  config.handshake_timeout = seconds(10);
  harness h(config);
  client partial(h);
  partial.raw("GET / HTTP/1.1\r\nHost: x\r\n");
  client no_hello(h);
  no_hello.upgrade();
  REQUIRE(h.srv.next_deadline() == epoch + seconds(10));
  h.now += milliseconds(9999);
  h.srv.on_timer(h.now);
  h.pump();
  CHECK_FALSE(partial.server_closed());
  h.now += milliseconds(1);
  h.srv.on_timer(h.now);
  h.pump();
  CHECK(partial.server_closed());
  CHECK(h.inbox[partial.id].rfind("HTTP/1.1 408", 0) == 0);
  CHECK(no_hello.server_closed());
}

TEST_CASE("the connection cap refuses with 503") {
  server_config config;
  config.max_connections = 2;
  harness h(config);
  REQUIRE(h.srv.accept(h.now));
  REQUIRE(h.srv.accept(h.now));
  CHECK_FALSE(h.srv.accept(h.now));
  CHECK(server::capacity_response().rfind("HTTP/1.1 503", 0) == 0);
}

TEST_CASE("a slow consumer is closed with 4008; everyone else is unaffected, and it resumes or learns of the gap") {
  server_config config;
  config.max_queue_bytes = 4096;
  hub_config hc;
  hc.rate = {1000, 1000};
  harness h(config, {}, hc);
  client sender = connected(h, "sender");
  client fast = connected(h, "fast");
  client slow(h);
  slow.upgrade();
  auto ok = slow.hello();
  slow.call({{"_tag", "tool.join_room"}, {"room", "lobby"}, {"nickname", "slow"}});

  h.count_written = false;  // nothing the server hands out counts as written: every reader is slow...
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 40; ++i) {
    auto sent = sender.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", std::string(200, 'x')}});
    REQUIRE(sent["_tag"] == "tool.ok");
    seqs.push_back(sent["result"]["seq"]);
    h.srv.written(fast.id, 1 << 20);  // ...except `fast`, which keeps up
    h.srv.written(sender.id, 1 << 20);
  }
  slow.read();
  REQUIRE(slow.close);
  CHECK(slow.close->code == 4008);
  CHECK(h.srv.metrics_text().find("parley_slow_consumer_closes_total 1") != std::string::npos);
  fast.read();
  CHECK(fast.frames.size() == 40);
  CHECK_FALSE(fast.server_closed());

  // The closed consumer's session resumes and replays what it never got, within its ring.
  h.srv.transport_closed(slow.id, h.now);
  h.count_written = true;
  client back(h);
  back.upgrade();
  back.send_json({{"_tag", "hello"},
                  {"clientVersion", "0.1.0"},
                  {"resume", {{"sessionId", ok["sessionId"]}, {"reconnectToken", ok["reconnectToken"]},
                              {"lastAckedSeqByRoom", {{"lobby", 0}}}}}});
  CHECK(back.next()["_tag"] == "hello.ok");
  back.read();
  CHECK(back.frames.size() == 40);
}

TEST_CASE("a client that sends requests and never reads is a slow consumer too: replies are bounded") {
  server_config config;
  config.max_queue_bytes = 4096;
  harness h(config);
  client c = connected(h);
  h.count_written = false;
  for (int i = 0; i < 200 && !c.server_closed(); ++i)
    c.raw(c.ws.encode_text(R"({"_tag":"tool.list_rooms","requestId":"x"})"));
  c.read();
  REQUIRE(c.close);
  CHECK(c.close->code == 4008);
  // a ping flood is no way around the bound either
  client p = connected(h);
  for (int i = 0; i < 200 && !p.server_closed(); ++i) p.raw(p.ws.encode_ping(std::string(100, 'p')));
  CHECK(p.server_closed());
}

TEST_CASE("shutdown closes every connection with 1001 and refuses new hellos") {
  harness h;
  client a = connected(h);
  client pending(h);
  pending.upgrade();
  h.srv.shutdown();
  h.pump();
  a.read();
  REQUIRE(a.close);
  CHECK(a.close->code == 1001);
  pending.read();
  REQUIRE(pending.close);
  CHECK(pending.close->code == 1001);
}
