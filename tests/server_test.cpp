// SPDX-License-Identifier: MIT
// The sans-I/O server end to end: HTTP routes, upgrade, hello/resume, tool frames, fan-out, closes, limits.
#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using namespace parley;
using namespace parley::testing;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// Server tests read what the server logs and control what its token store says.
struct test_hooks {
  bool required = false;
  std::map<std::string, token_verdict, std::less<>> tokens;  // token → verdict; others are unknown
  std::vector<std::string> revoked;
  std::vector<std::string> lines;

  bool tokens_required() const { return required; }
  token_verdict check_token(std::string_view token) {
    auto it = tokens.find(token);
    return it == tokens.end() ? token_verdict{token_status::unknown, {}} : it->second;
  }
  std::vector<std::string> revoked_labels() { return revoked; }
  void log(log_level, std::string_view line) { lines.emplace_back(line); }
  bool storage_failing() const { return failing; }
  bool failing = false;
};

struct test_server_policy : simulated_server_policy {
  using server_hooks = test_hooks;
};
using test_server = basic_server<test_server_policy>;

struct harness {
  test_store store;
  basic_hub<test_server_policy> h;
  test_server srv;
  test_moment now = epoch;
  std::map<connection_id, std::string> inbox;  // bytes written to each connection
  std::map<connection_id, bool> closed;        // the server asked to close it
  bool count_written = true;

  explicit harness(server_config config = {}, test_hooks hooks = {}, hub_config hc = {})
      : h(std::move(*basic_hub<test_server_policy>::open(store, testing::seeded_random(9), std::move(hc)))),
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
struct peer {
  harness& H;
  connection_id id;
  websocket ws{role::client, testing::seeded_random(3)};
  http_response_parser http;
  std::optional<http_response> response;
  std::vector<json> frames;
  std::optional<ws_close> close;
  std::size_t read_pos = 0;

  explicit peer(harness& h) : H(h), id(*h.srv.accept(h.now)) {}

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

  // A hello that resumes `session_id` with `token`, having acked `acks` (room → seq).
  void send_resume(const json& session_id, const json& token, json acks = json::object()) {
    send_json({{"_tag", "hello"},
               {"clientVersion", "0.1.0"},
               {"resume", {{"sessionId", session_id}, {"reconnectToken", token}, {"lastAckedSeqByRoom", std::move(acks)}}}});
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

peer connected(harness& h, const std::string& nickname = "", const std::string& room = "lobby") {
  peer c(h);
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
  peer health(h);
  health.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(h.inbox[health.id].rfind("HTTP/1.1 200", 0) == 0);
  CHECK(body_of(h, health.id) == "ok\n");
  CHECK(health.server_closed());

  peer metrics(h);
  metrics.raw("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string text = body_of(h, metrics.id);
  for (const char* name : {"parley_connections ", "parley_sessions ", "parley_rooms ", "parley_memberships ",
                           "parley_messages_total ", "parley_deliveries_total ", "parley_rate_limited_total ",
                           "parley_replay_overflows_total ", "parley_slow_consumer_closes_total ",
                           "parley_bytes_in_total ", "parley_bytes_out_total "})
    CHECK_MESSAGE(text.find(std::string("\n") + name) != std::string::npos, name);
  CHECK(h.inbox[metrics.id].find("Content-Type: text/plain; version=0.0.4") != std::string::npos);

  auto status_of = [&](const std::string& request) {
    peer c(h);
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

TEST_CASE("/healthz answers 503 while the host's storage is failing, and 200 again once it recovers") {
  harness h;
  h.srv.hooks().failing = true;
  peer sick(h);
  sick.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(h.inbox[sick.id].rfind("HTTP/1.1 503", 0) == 0);
  CHECK(body_of(h, sick.id) == "storage failing\n");
  peer metrics(h);
  metrics.raw("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(body_of(h, metrics.id).find("\nparley_storage_failing 1\n") != std::string::npos);

  h.srv.hooks().failing = false;
  peer well(h);
  well.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(h.inbox[well.id].rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("every HTTP answer says Connection: close, and a request without Host is refused") {
  harness h;
  for (const char* path : {"/healthz", "/metrics", "/nope"}) {
    peer c(h);
    c.raw(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_MESSAGE(h.inbox[c.id].find("\r\nConnection: close\r\n") != std::string::npos, path);
  }
  peer no_host(h);
  no_host.raw("GET /healthz HTTP/1.1\r\n\r\n");
  CHECK(h.inbox[no_host.id].rfind("HTTP/1.1 400 Bad Request: a Host header is required", 0) == 0);
  CHECK(no_host.server_closed());
}

namespace {
const std::string upgrade_head =
    "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

int status_after(harness& h, const std::string& request) {
  peer c(h);
  c.raw(request);
  return std::stoi(h.inbox[c.id].substr(9, 3));
}
}  // namespace

TEST_CASE("a loopback server answers only to loopback Host names, on every route (DNS rebinding)") {
  server_config config;
  config.loopback_hosts_only = true;
  harness h(config);
  for (const char* host : {"localhost", "localhost:7539", "127.0.0.1:7539", "[::1]:7539"}) {
    CAPTURE(host);
    CHECK(status_after(h, std::string("GET /healthz HTTP/1.1\r\nHost: ") + host + "\r\n\r\n") == 200);
    CHECK(status_after(h, upgrade_head + "Host: " + host + "\r\n\r\n") == 101);
  }
  for (const char* host : {"evil.example", "evil.example:7539", "localhost.evil.example", "10.0.0.1:7539"}) {
    CAPTURE(host);
    for (const char* path : {"/healthz", "/metrics", "/nope"})
      CHECK(status_after(h, std::string("GET ") + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n") == 403);
    CHECK(status_after(h, upgrade_head + "Host: " + host + "\r\n\r\n") == 403);
  }
  CHECK(h.h.stats().sessions == 0);
}

TEST_CASE("an upgrade with an Origin is refused unless it is our own page's or an allowed one") {
  server_config config;
  config.allowed_origins = {*parse_web_origin("https://app.example")};
  harness h(config);
  auto upgrade_from = [&](const std::string& origin, const std::string& host = "127.0.0.1:7539") {
    return status_after(h, upgrade_head + "Host: " + host + "\r\nOrigin: " + origin + "\r\n\r\n");
  };
  CHECK(upgrade_from("http://127.0.0.1:7539") == 101);         // the page we serve
  CHECK(upgrade_from("HTTP://127.0.0.1:7539") == 101);
  CHECK(upgrade_from("http://localhost:7539", "localhost:7539") == 101);
  CHECK(upgrade_from("https://app.example") == 101);           // --allow-origin
  CHECK(upgrade_from("https://app.example:443") == 101);
  CHECK(upgrade_from("https://evil.example") == 403);
  CHECK(upgrade_from("https://app.example.evil.example") == 403);
  CHECK(upgrade_from("http://app.example") == 403);            // another scheme
  CHECK(upgrade_from("https://app.example:8443") == 403);      // another port
  CHECK(upgrade_from("http://127.0.0.1:8080") == 403);         // another page on this machine
  CHECK(upgrade_from("https://127.0.0.1:7539") == 403);        // we serve http, not https
  CHECK(upgrade_from("null") == 403);
  CHECK(upgrade_from("garbage") == 403);
  CHECK(status_after(h, upgrade_head + "Host: 127.0.0.1:7539\r\n\r\n") == 101);  // no Origin: a native peer

  server_config tls;
  tls.tls = true;
  harness secure(tls);
  CHECK(status_after(secure, upgrade_head + "Host: chat.example\r\nOrigin: https://chat.example\r\n\r\n") == 101);
  CHECK(status_after(secure, upgrade_head + "Host: chat.example\r\nOrigin: http://chat.example\r\n\r\n") == 403);
}

TEST_CASE("hub_config::max_body_bytes is the one body limit, on the wire as in the hub") {
  hub_config hc;
  hc.max_body_bytes = 100;
  harness h({}, {}, hc);
  peer alice = connected(h, "alice");
  peer bob = connected(h, "bob");
  auto send = [&](std::size_t bytes) {
    return alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", std::string(bytes, 'x')}});
  };
  CHECK(send(100)["_tag"] == "tool.ok");
  auto refused = send(101);
  CHECK(refused["_tag"] == "tool.err");
  CHECK(refused["code"] == "InvalidArgumentError");
  CHECK(refused["details"]["field"] == "body");
  CHECK(bob.next()["body"].get<std::string>().size() == 100);
  bob.read();
  CHECK(bob.frames.empty());  // the refused one was delivered to nobody
}

TEST_CASE("upgrade, hello, join, send: fan-out without self-echo") {
  harness h;
  peer alice = connected(h, "alice");
  peer bob = connected(h, "bob");
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
  peer c(h);
  websocket ws(role::client, testing::seeded_random(1));
  c.raw("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" +
        c.ws.encode_text(R"({"_tag":"hello","clientVersion":"0.1.0"})"));
  CHECK(c.next()["_tag"] == "hello.ok");
}

TEST_CASE("the whole exchange gives the same answers fed byte by byte") {
  harness h;
  peer c(h);
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
  peer c(h);
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
  test_hooks hooks;
  hooks.required = true;
  hooks.tokens = {{"parley_tok_good", {token_status::valid, "laptop"}},
                  {"parley_tok_revoked", {token_status::revoked, "old"}}};
  harness h({}, hooks);
  for (auto [token, code, message] : std::vector<std::tuple<std::optional<std::string>, std::string, std::string>>{
           {std::nullopt, "AuthRequiredError",
            "this server requires a token: pass it in hello.authToken or an Authorization: Bearer header"},
           {std::string("parley_tok_revoked"), "TokenRevokedError", "token old is revoked"},
           {std::string("parley_tok_wrong"), "BadTokenError", "unknown token"}}) {
    peer c(h);
    c.upgrade();
    auto err = c.hello(token);
    CHECK(err["code"] == code);
    CHECK(err["message"] == message);
    REQUIRE(c.close);
    CHECK(c.close->code == 4000);
  }
  peer good(h);
  good.upgrade();
  CHECK(good.hello(std::string("parley_tok_good"))["_tag"] == "hello.ok");
  peer bearer(h);
  bearer.upgrade("Authorization: Bearer parley_tok_good\r\n");
  CHECK(bearer.hello()["_tag"] == "hello.ok");

  // Another process revokes the label: the next poll, within a second, closes its
  // live sessions with 4000 and ends them.
  REQUIRE(good.call({{"_tag", "tool.join_room"}, {"room", "lobby"}, {"nickname", "good"}})["_tag"] == "tool.ok");
  REQUIRE(h.srv.next_deadline());
  CHECK(*h.srv.next_deadline() <= (h.now + seconds(1)).monotonic);
  h.srv.hooks().revoked = {"old", "laptop"};
  h.now += seconds(1);
  h.srv.on_timer(h.now);
  h.pump();
  good.read();
  REQUIRE(good.close);
  CHECK(good.close->code == 4000);
  CHECK(h.h.stats().sessions == 0);
}

TEST_CASE("a token store that cannot answer refuses the hello with 1011 and says nothing of its insides") {
  test_hooks hooks;
  hooks.required = true;
  hooks.tokens = {{"parley_tok_any", {token_status::unavailable, ""}}};
  harness h({}, hooks);
  peer c(h);
  c.upgrade();
  auto err = c.hello(std::string("parley_tok_any"));
  CHECK(err["_tag"] == "hello.err");
  CHECK(err["code"] == "InternalError");
  CHECK(err["message"] == "the server cannot check tokens right now; try again later");
  REQUIRE(c.close);
  CHECK(c.close->code == 1011);
  CHECK(h.h.stats().sessions == 0);
}

TEST_CASE("a 1000 close ends the session at once; any other drop detaches it for the grace period") {
  server_config config;
  config.pong_timeout = seconds(120);  // bob stays quiet through the grace period below
  harness h(config);
  peer alice = connected(h, "alice");
  peer bob = connected(h, "bob");
  auto who = [&] { return bob.call({{"_tag", "tool.who_is_here"}, {"room", "lobby"}})["result"]["nicknames"]; };
  alice.raw(alice.ws.encode_close(1000, "bye"));
  alice.read();
  REQUIRE(alice.close);
  CHECK(alice.close->code == 1000);
  CHECK(alice.server_closed());
  // alice created lobby and owned it; her session ended, so bob, present longest, owns it now.
  CHECK(bob.next() == json{{"_tag", "room.event"}, {"room", "lobby"}, {"kind", "role"}, {"role", "owner"}});
  CHECK(who() == json::array({"bob"}));

  peer carol = connected(h, "carol");
  h.srv.transport_closed(carol.id, h.now);  // abrupt: no close frame
  CHECK(who() == json::array({"bob", "carol"}));
  h.now += seconds(61);
  h.srv.on_timer(h.now);
  CHECK(who() == json::array({"bob"}));
}

TEST_CASE("abrupt drop then resume replays exactly what was missed") {
  harness h;
  peer alice = connected(h, "alice");
  peer bob(h);
  bob.upgrade();
  auto ok = bob.hello();
  REQUIRE(bob.call({{"_tag", "tool.join_room"}, {"room", "lobby"}, {"nickname", "bob"}})["_tag"] == "tool.ok");
  alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "one"}});
  auto first = bob.next();
  bob.send_json({{"_tag", "ack"}, {"room", "lobby"}, {"seq", first["seq"]}});
  h.srv.transport_closed(bob.id, h.now);
  alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "two"}});
  alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "three"}});

  peer again(h);
  again.upgrade();
  again.send_resume(ok["sessionId"], ok["reconnectToken"], {{"lobby", first["seq"]}});
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
  peer alice = connected(h, "alice");
  peer bob(h);
  bob.upgrade();
  auto ok = bob.hello();
  bob.call({{"_tag", "tool.join_room"}, {"room", "lobby"}});
  h.srv.transport_closed(bob.id, h.now);
  auto resume_with = [&](json session_id, json token) {
    peer c(h);
    c.upgrade();
    c.send_resume(session_id, token);
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

TEST_CASE("a resume refused for overflow while the session is live elsewhere closes that connection too") {
  hub_config hc;
  hc.rate = {1000, 1000};
  harness h({}, {}, hc);
  peer alice = connected(h, "alice");
  peer bob(h);
  bob.upgrade();
  auto ok = bob.hello();
  bob.call({{"_tag", "tool.join_room"}, {"room", "lobby"}});
  for (int i = 0; i < 65; ++i) alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "m"}});
  peer thief(h);  // bob's own token, say from a second process, acking nothing
  thief.upgrade();
  thief.send_resume(ok["sessionId"], ok["reconnectToken"], {{"lobby", 0}});
  CHECK(thief.next()["code"] == "ReplayBufferOverflowError");
  bob.read();
  REQUIRE(bob.close);
  CHECK(bob.close->code == 4003);
  CHECK(bob.server_closed());
  h.srv.transport_closed(bob.id, h.now);
  CHECK(h.h.stats().attached_sessions == 1);  // alice alone
}

TEST_CASE("a slow-consumer close keeps the handshake's answer: the 101 and hello.ok go out before the 4008") {
  server_config config;
  config.max_queue_bytes = 4096;
  harness h(config);
  peer c(h);
  // Upgrade, hello and a ping flood in one read, before the transport takes any output.
  std::string bytes =
      "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  bytes += c.ws.encode_text(json{{"_tag", "hello"}, {"clientVersion", "0.1.0"}}.dump());
  for (int i = 0; i < 100; ++i) bytes += c.ws.encode_ping(std::string(100, 'p'));
  h.srv.receive(c.id, bytes, h.now);
  h.pump();
  c.read();
  REQUIRE(c.response);
  CHECK(c.response->status == 101);
  REQUIRE_FALSE(c.frames.empty());
  CHECK(c.frames.front()["_tag"] == "hello.ok");
  REQUIRE(c.close);
  CHECK(c.close->code == 4008);
}

TEST_CASE("a resume on a new connection takes the session from the old one, which is closed with 4009") {
  harness h;
  peer first(h);
  first.upgrade();
  auto ok = first.hello();
  peer second(h);
  second.upgrade();
  second.send_resume(ok["sessionId"], ok["reconnectToken"]);
  CHECK(second.next()["_tag"] == "hello.ok");
  first.read();
  REQUIRE(first.close);
  CHECK(first.close->code == 4009);
  h.srv.transport_closed(first.id, h.now);  // the old socket closing must not detach the new owner
  CHECK(h.h.stats().attached_sessions == 1);
}

TEST_CASE("bad frames after hello: BadFrameError, InvalidArgumentError under the requestId, 1002/1007/1009") {
  harness h;
  peer c = connected(h);
  c.send("not json");
  CHECK(c.next()["code"] == "BadFrameError");
  auto bad = c.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", ""}});
  CHECK(bad["_tag"] == "tool.err");
  CHECK(bad["code"] == "InvalidArgumentError");
  CHECK(bad["requestId"] == "r");

  auto close_code_after = [&](std::string bytes) {
    peer x = connected(h);
    x.raw(bytes);
    x.read();
    REQUIRE(x.close);
    CHECK(x.server_closed());
    return x.close->code;
  };
  CHECK(close_code_after(std::string("\x81\x05hello", 7)) == 1002);  // unmasked peer frame
  websocket w(role::client, testing::seeded_random(4));
  CHECK(close_code_after(w.encode_text("\xC3\x28")) == 1007);
  CHECK(close_code_after(w.encode_text(std::string(64 * 1024 + 1, 'x'))) == 1009);
}

TEST_CASE("8192-byte bodies pass the server's 64 KiB frame limit; 8193 bytes are refused by the tool") {
  harness h;
  peer a = connected(h, "a");
  peer b = connected(h, "b");
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
  peer c = connected(h);
  c.raw(c.ws.encode_ping("are you there"));
  std::string_view in = h.inbox[c.id];
  CHECK(in.find("are you there") != std::string_view::npos);

  h.now += seconds(30);
  h.srv.on_timer(h.now);
  h.pump();
  const std::size_t before = h.inbox[c.id].size();
  CHECK(before > in.size());  // a ping went out
  c.read();                   // our peer answers it, which counts as hearing from it
  h.now += seconds(59);
  h.srv.on_timer(h.now);
  h.pump();
  CHECK_FALSE(c.server_closed());

  peer silent = connected(h);
  h.now += seconds(60);
  h.srv.on_timer(h.now);
  h.pump();
  CHECK(silent.server_closed());
}

TEST_CASE("the handshake must finish within the timeout: slow-loris connections are closed") {
  server_config config;
  config.handshake_timeout = seconds(10);
  harness h(config);
  peer partial(h);
  partial.raw("GET / HTTP/1.1\r\nHost: x\r\n");
  peer no_hello(h);
  no_hello.upgrade();
  REQUIRE(h.srv.next_deadline() == (epoch + seconds(10)).monotonic);
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

TEST_CASE("at the cap, a few loopback connections still reach /healthz and /metrics, and nothing else") {
  server_config config;
  config.max_connections = 1;
  config.monitoring_reserve = 2;
  harness h(config);
  peer full = connected(h);
  CHECK_FALSE(h.srv.accept(h.now, /*from_loopback=*/false));  // the reserve is not for strangers
  auto reserved = [&](const std::string& request) {
    auto id = h.srv.accept(h.now, /*from_loopback=*/true);
    REQUIRE(id);
    h.srv.receive(*id, request, h.now);
    h.pump();
    return std::stoi(h.inbox[*id].substr(9, 3));
  };
  CHECK(reserved("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n") == 200);
  CHECK(reserved("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n") == 200);
  // Both reserved connections are still open (their peers have not hung up): the reserve is spent.
  CHECK_FALSE(h.srv.accept(h.now, true));
  for (auto& [id, bytes] : h.inbox)
    if (id != full.id) h.srv.transport_closed(id, h.now);
  CHECK(reserved("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n") == 503);
  CHECK(h.srv.metrics_text().find("parley_connections_refused_total 3\n") != std::string::npos);
}

TEST_CASE("a slow consumer is closed with 4008; everyone else is unaffected, and it resumes or learns of the gap") {
  server_config config;
  config.max_queue_bytes = 4096;
  hub_config hc;
  hc.rate = {1000, 1000};
  harness h(config, {}, hc);
  peer sender = connected(h, "sender");
  peer fast = connected(h, "fast");
  peer slow(h);
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
  peer back(h);
  back.upgrade();
  back.send_resume(ok["sessionId"], ok["reconnectToken"], {{"lobby", 0}});
  CHECK(back.next()["_tag"] == "hello.ok");
  back.read();
  CHECK(back.frames.size() == 40);
}

TEST_CASE("a client that sends requests and never reads is a slow consumer too: replies are bounded") {
  server_config config;
  config.max_queue_bytes = 4096;
  harness h(config);
  peer c = connected(h);
  h.count_written = false;
  for (int i = 0; i < 200 && !c.server_closed(); ++i)
    c.raw(c.ws.encode_text(R"({"_tag":"tool.list_rooms","requestId":"x"})"));
  c.read();
  REQUIRE(c.close);
  CHECK(c.close->code == 4008);
  // a ping flood is no way around the bound either
  peer p = connected(h);
  for (int i = 0; i < 200 && !p.server_closed(); ++i) p.raw(p.ws.encode_ping(std::string(100, 'p')));
  CHECK(p.server_closed());
}

TEST_CASE("shutdown closes every connection with 1001, refuses new hellos, and is finished within its grace") {
  server_config config;
  config.shutdown_grace = milliseconds(1500);
  harness h(config);
  peer a = connected(h);
  peer pending(h);
  pending.upgrade();
  CHECK_FALSE(h.srv.finished());
  h.srv.shutdown(h.now);
  h.pump();
  a.read();
  REQUIRE(a.close);
  CHECK(a.close->code == 1001);
  pending.read();
  REQUIRE(pending.close);
  CHECK(pending.close->code == 1001);
  // Neither peer hangs up: the server is finished when the grace is over, not before.
  CHECK_FALSE(h.srv.finished());
  REQUIRE(h.srv.next_deadline() == (h.now + milliseconds(1500)).monotonic);
  h.now += milliseconds(1499);
  h.srv.on_timer(h.now);
  CHECK_FALSE(h.srv.finished());
  h.now += milliseconds(1);
  h.srv.on_timer(h.now);
  CHECK(h.srv.finished());
}

TEST_CASE("shutdown is finished at once when the last connection is gone") {
  harness h;
  peer a = connected(h);
  h.srv.shutdown(h.now);
  h.pump();
  CHECK_FALSE(h.srv.finished());
  h.srv.transport_closed(a.id, h.now);
  CHECK(h.srv.finished());
}

TEST_CASE("a connection we are closing is cut after the linger if the peer never hangs up") {
  server_config config;
  config.close_linger = seconds(2);
  harness h(config);
  peer a = connected(h);
  peer b = connected(h);
  h.srv.shutdown(h.now);
  h.pump();
  CHECK(h.srv.take_aborted().empty());
  h.now += milliseconds(1999);
  h.srv.on_timer(h.now);
  CHECK(h.srv.take_aborted().empty());
  h.srv.transport_closed(b.id, h.now);  // b hung up; a did not
  h.now += milliseconds(1);
  h.srv.on_timer(h.now);
  CHECK(h.srv.take_aborted() == std::vector<connection_id>{a.id});
  h.now += seconds(5);
  h.srv.on_timer(h.now);
  CHECK(h.srv.take_aborted().empty());  // cut once
}

TEST_CASE("a wall-clock step of an hour either way closes and expires nothing early or late") {
  server_config config;
  config.ping_interval = seconds(30);
  config.pong_timeout = seconds(60);
  config.handshake_timeout = seconds(10);
  hub_config hc;
  hc.session_grace = seconds(60);
  hc.rate = {1, 1};  // one send a second: a refill that followed the wall clock would show
  for (const auto step : {std::chrono::hours(1), -std::chrono::hours(1)}) {
    CAPTURE(step.count());
    harness h(config, {}, hc);
    peer alice = connected(h, "alice");
    peer bob = connected(h, "bob");
    peer handshaking(h);
    handshaking.upgrade();
    h.srv.transport_closed(bob.id, h.now);  // bob's session is in its 60 s grace
    auto send = [&](const char* body) {
      return alice.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", body}});
    };
    REQUIRE(send("before")["_tag"] == "tool.ok");  // the burst of one is spent
    const auto before = h.srv.next_deadline();

    h.now.wall += step;  // NTP, or a laptop waking up
    h.srv.on_timer(h.now);
    h.pump();
    CHECK(h.srv.next_deadline() == before);
    CHECK_FALSE(alice.server_closed());
    CHECK_FALSE(handshaking.server_closed());
    CHECK(h.h.stats().sessions == 2);
    // The bucket refills on the monotonic clock alone: an hour forward mints nothing,
    // an hour back withholds nothing.
    CHECK(send("at the step")["code"] == "RateLimitedError");
    h.now += milliseconds(1000);
    auto sent = send("a second later");
    CHECK(sent["_tag"] == "tool.ok");
    // sentAt follows the wall clock, which is what it is for.
    CHECK(sent["result"]["sentAt"] == format_rfc3339(h.now.wall));

    // Every deadline falls when the monotonic clock says, not an hour off.
    h.now += milliseconds(8999);
    h.srv.on_timer(h.now);
    h.pump();
    CHECK_FALSE(handshaking.server_closed());
    h.now += milliseconds(1);
    h.srv.on_timer(h.now);
    h.pump();
    CHECK(handshaking.server_closed());
    h.now += seconds(50) - milliseconds(1);  // 59.999 s since bob dropped
    h.srv.on_timer(h.now);
    CHECK(h.h.stats().sessions == 2);
    h.now += milliseconds(1);
    h.srv.on_timer(h.now);
    CHECK(h.h.stats().sessions == 1);
    CHECK_FALSE(alice.server_closed());  // alice answers pings: read() pongs them
  }
}

TEST_CASE("sessions of one token share its room budget; a resume keeps it; another token has its own") {
  test_hooks hooks;
  hooks.required = true;
  hooks.tokens = {{"parley_tok_a", {token_status::valid, "alice-agent"}}, {"parley_tok_b", {token_status::valid, "bob"}}};
  hub_config hc;
  hc.room_creation = {2, 1};
  harness h({}, hooks, hc);
  auto session_with = [&](const std::string& token) {
    peer c(h);
    c.upgrade();
    REQUIRE(c.hello(token)["_tag"] == "hello.ok");
    return c;
  };
  auto join = [](peer& c, const std::string& room) {
    return c.call({{"_tag", "tool.join_room"}, {"room", room}});
  };
  peer a1 = session_with("parley_tok_a");
  peer a2 = session_with("parley_tok_a");
  CHECK(join(a1, "one")["_tag"] == "tool.ok");
  CHECK(join(a2, "two")["_tag"] == "tool.ok");
  auto refused = join(a2, "three");
  CHECK(refused["code"] == "RateLimitedError");
  CHECK(refused["details"]["retryAfterMs"] == 60000);
  CHECK(h.h.rooms().count("three") == 0);
  peer b = session_with("parley_tok_b");
  CHECK(join(b, "three")["_tag"] == "tool.ok");
  CHECK(join(a1, "three")["_tag"] == "tool.ok");  // it exists now: free
  CHECK(h.srv.metrics_text().find("parley_room_creations_refused_total 1\n") != std::string::npos);
}

// ---- the web page and signing in at it ---------------------------------------

namespace {

// One request on its own connection; the whole answer.
std::string http_answer(harness& h, const std::string& request) {
  peer c(h);
  c.raw(request);
  CHECK(c.server_closed());
  return h.inbox[c.id];
}

int status_in(const std::string& answer) { return std::stoi(answer.substr(9, 3)); }

std::optional<std::string> header_in(const std::string& answer, const std::string& name) {
  const std::string head = answer.substr(0, answer.find("\r\n\r\n") + 2);
  const auto at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return std::nullopt;
  const auto start = at + name.size() + 4;
  return head.substr(start, head.find("\r\n", start) - start);
}

std::string body_in(const std::string& answer) { return answer.substr(answer.find("\r\n\r\n") + 4); }

const std::string page_html = "<!doctype html><title>parley</title><p>hello";
const std::string page_js = "document.title = 'parley';";

server_config with_page() {
  server_config config;
  config.web_assets = {{"index.html", page_html}, {"app.js", page_js}};
  return config;
}

}  // namespace

TEST_CASE("the page: index.html at / and files by name, each with its type, and only GET and HEAD") {
  harness h(with_page());
  const std::string page = http_answer(h, "GET /?room=lobby&nickname=ann HTTP/1.1\r\nHost: 127.0.0.1:7539\r\n\r\n");
  CHECK(status_in(page) == 200);
  CHECK(body_in(page) == page_html);
  CHECK(header_in(page, "Content-Type") == "text/html; charset=utf-8");
  CHECK(header_in(page, "Cache-Control") == "no-cache");
  CHECK(body_in(http_answer(h, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")) == page_html);

  const std::string script = http_answer(h, "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(header_in(script, "Content-Type") == "text/javascript; charset=utf-8");
  CHECK(body_in(script) == page_js);

  const std::string head = http_answer(h, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_in(head) == 200);
  CHECK(header_in(head, "Content-Length") == "0");
  CHECK(body_in(head).empty());

  const std::string post = http_answer(h, "POST /app.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(status_in(post) == 405);
  CHECK(header_in(post, "Allow") == "GET, HEAD");
  // Only a file's exact name matches: no traversal, no encoding, no folder.
  for (const char* target : {"/../index.html", "/%2e%2e/app.js", "/app.js/", "//app.js", "/APP.JS", "/web/app.js"})
    CHECK_MESSAGE(status_in(http_answer(h, std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n")) == 404, target);
  // The WebSocket shares "/" with the page.
  peer ws(h);
  ws.upgrade();
  CHECK(ws.hello()["_tag"] == "hello.ok");
}

TEST_CASE("every HTTP answer carries the CSP, nosniff and no-referrer; connect-src names our own ws or wss origin") {
  harness h(with_page());
  for (const char* request : {"GET / HTTP/1.1\r\nHost: 127.0.0.1:7539\r\n\r\n", "GET /nope HTTP/1.1\r\nHost: 127.0.0.1:7539\r\n\r\n",
                              "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:7539\r\n\r\n",
                              "GET /session HTTP/1.1\r\nHost: 127.0.0.1:7539\r\n\r\n"}) {
    const std::string answer = http_answer(h, request);
    const auto csp = header_in(answer, "Content-Security-Policy");
    REQUIRE_MESSAGE(csp, request);
    CHECK(csp->find("default-src 'self'") != std::string::npos);
    CHECK(csp->find("connect-src 'self' ws://127.0.0.1:7539;") != std::string::npos);
    CHECK(csp->find("frame-ancestors 'none'") != std::string::npos);
    CHECK(csp->find("unsafe") == std::string::npos);
    CHECK(header_in(answer, "X-Content-Type-Options") == "nosniff");
    CHECK(header_in(answer, "Referrer-Policy") == "no-referrer");
  }
  // A head the parser refuses has no Host to name: the CSP then allows 'self' alone.
  const std::string refused = http_answer(h, "NOT HTTP\r\n\r\n");
  CHECK(status_in(refused) == 400);
  CHECK(header_in(refused, "Content-Security-Policy")->find("connect-src 'self';") != std::string::npos);

  server_config tls = with_page();
  tls.tls = true;
  harness secure(tls);
  const auto csp = header_in(http_answer(secure, "GET / HTTP/1.1\r\nHost: chat.example\r\n\r\n"), "Content-Security-Policy");
  CHECK(csp->find("connect-src 'self' wss://chat.example:443;") != std::string::npos);

  harness bare;  // no page built in: a plain GET / is told to upgrade, as before
  CHECK(status_in(http_answer(bare, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == 426);
}

namespace {

test_hooks token_hooks() {
  test_hooks hooks;
  hooks.required = true;
  hooks.tokens = {{"parley_tok_good", {token_status::valid, "ann-laptop"}},
                  {"parley_tok_revoked", {token_status::revoked, "old"}},
                  {"parley_tok_broken", {token_status::unavailable, {}}}};
  return hooks;
}

const std::string own_origin_header = "Origin: http://localhost\r\n";

std::string sign_in_request(const std::string& method, const std::string& extra) {
  return method + " /session HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
}

// The cookie a sign-in answer set, as "name=value".
std::string cookie_from(const std::string& answer) {
  const auto set = header_in(answer, "Set-Cookie");
  REQUIRE(set);
  return set->substr(0, set->find(';'));
}

}  // namespace

TEST_CASE("signing in: POST /session from our own page with a good token sets an HttpOnly SameSite=Strict cookie") {
  harness h({}, token_hooks());
  auto post = [&](const std::string& extra) { return http_answer(h, sign_in_request("POST", extra)); };

  SUBCASE("refusals set nothing") {
    const std::string foreign = post("Origin: http://evil.example\r\nAuthorization: Bearer parley_tok_good\r\n");
    CHECK(status_in(foreign) == 403);
    CHECK(status_in(post("Authorization: Bearer parley_tok_good\r\n")) == 403);  // no Origin: not a page's fetch
    CHECK(status_in(post(own_origin_header)) == 400);
    const std::string unknown = post(own_origin_header + "Authorization: Bearer parley_tok_nope\r\n");
    CHECK(status_in(unknown) == 401);
    CHECK(json::parse(body_in(unknown)) == json{{"code", "BadTokenError"}, {"message", "unknown token"}});
    const std::string revoked = post(own_origin_header + "Authorization: Bearer parley_tok_revoked\r\n");
    CHECK(json::parse(body_in(revoked))["code"] == "TokenRevokedError");
    CHECK(status_in(post(own_origin_header + "Authorization: Bearer parley_tok_broken\r\n")) == 503);
    for (const std::string& answer : {foreign, unknown, revoked}) CHECK_FALSE(header_in(answer, "Set-Cookie"));
    CHECK(h.srv.sign_in_count() == 0);
  }

  SUBCASE("a good token") {
    const std::string ok = post(own_origin_header + "Authorization: Bearer parley_tok_good\r\n");
    CHECK(status_in(ok) == 204);
    const std::string set = *header_in(ok, "Set-Cookie");
    CHECK(set.rfind("parley_sign_in=", 0) == 0);
    for (const char* attribute : {"; Path=/", "; HttpOnly", "; SameSite=Strict", "; Max-Age=43200"})
      CHECK_MESSAGE(set.find(attribute) != std::string::npos, attribute);
    CHECK(set.find("Secure") == std::string::npos);  // plain http: a Secure cookie would never come back
    CHECK(set.find("parley_tok_good") == std::string::npos);  // the cookie names a sign-in, not the token
    CHECK(cookie_from(ok).size() >= std::string("parley_sign_in=").size() + 43);  // 256 random bits
    CHECK(h.srv.sign_in_count() == 1);

    const std::string cookie = "Cookie: theme=dark; " + cookie_from(ok) + "\r\n";
    CHECK(json::parse(body_in(http_answer(h, sign_in_request("GET", cookie)))) ==
          json{{"tokenRequired", true}, {"signedIn", true}});
    CHECK(json::parse(body_in(http_answer(h, sign_in_request("GET", "")))) ==
          json{{"tokenRequired", true}, {"signedIn", false}});
  }
}

TEST_CASE("the sign-in cookie authenticates an upgrade from our own origin only, until sign-out") {
  server_config config;
  config.allowed_origins = {*parse_web_origin("http://tools.example")};
  harness h(config, token_hooks());
  const std::string cookie =
      "Cookie: " +
      cookie_from(http_answer(h, sign_in_request("POST", own_origin_header + "Authorization: Bearer parley_tok_good\r\n"))) +
      "\r\n";

  peer page(h);
  page.upgrade(own_origin_header + cookie);
  CHECK(page.hello()["_tag"] == "hello.ok");  // no authToken: the cookie stood for it

  for (const std::string& headers : {cookie, std::string("Origin: http://tools.example\r\n") + cookie,
                                     own_origin_header + "Cookie: parley_sign_in=forged\r\n"}) {
    peer other(h);
    other.upgrade(headers);
    CHECK_MESSAGE(other.hello()["code"] == "AuthRequiredError", headers);
  }

  const std::string out = http_answer(h, sign_in_request("DELETE", own_origin_header + cookie));
  CHECK(status_in(out) == 204);
  CHECK(header_in(out, "Set-Cookie")->find("parley_sign_in=; ") == 0);
  CHECK(header_in(out, "Set-Cookie")->find("Max-Age=0") != std::string::npos);
  CHECK(h.srv.sign_in_count() == 0);
  peer after(h);
  after.upgrade(own_origin_header + cookie);
  CHECK(after.hello()["code"] == "AuthRequiredError");
  CHECK(status_in(http_answer(h, sign_in_request("DELETE", cookie))) == 403);  // sign-out too needs our own page
}

TEST_CASE("a sign-in ends with its token's revocation, closing the page with 4000, and after its lifetime") {
  server_config config;
  config.sign_in_lifetime = std::chrono::hours(1);
  harness h(config, token_hooks());
  auto sign_in = [&] {
    return "Cookie: " +
           cookie_from(http_answer(h, sign_in_request("POST", own_origin_header + "Authorization: Bearer parley_tok_good\r\n"))) +
           "\r\n";
  };

  const std::string first = sign_in();
  peer page(h);
  page.upgrade(own_origin_header + first);
  REQUIRE(page.hello()["_tag"] == "hello.ok");
  h.srv.hooks().revoked = {"ann-laptop"};
  h.now += seconds(1);
  h.srv.on_timer(h.now);
  h.pump();
  page.read();
  REQUIRE(page.close);
  CHECK(page.close->code == close_codes::token_revoked);
  CHECK(h.srv.sign_in_count() == 0);

  h.srv.hooks().revoked.clear();
  const std::string second = sign_in();
  h.now += std::chrono::minutes(59);
  peer still(h);
  still.upgrade(own_origin_header + second);
  CHECK(still.hello()["_tag"] == "hello.ok");
  h.now += std::chrono::minutes(1);
  peer expired(h);
  expired.upgrade(own_origin_header + second);
  CHECK(expired.hello()["code"] == "AuthRequiredError");
}

TEST_CASE("on a server that needs no token, POST /session says so and sets nothing") {
  harness h;
  const std::string answer = http_answer(h, sign_in_request("POST", own_origin_header + "Authorization: Bearer x\r\n"));
  CHECK(status_in(answer) == 400);
  CHECK(json::parse(body_in(answer))["code"] == "InvalidArgumentError");
  CHECK_FALSE(header_in(answer, "Set-Cookie"));
  CHECK(json::parse(body_in(http_answer(h, sign_in_request("GET", "")))) ==
        json{{"tokenRequired", false}, {"signedIn", false}});
  CHECK(status_in(http_answer(h, sign_in_request("PUT", own_origin_header))) == 405);
}

TEST_CASE("people and agents: clientKind person marks who_is_here members and the fromKind of their messages") {
  harness h;
  peer agent = connected(h, "claude");
  peer person(h);
  person.upgrade();
  person.send_json({{"_tag", "hello"}, {"clientVersion", "0.1.0"}, {"clientKind", "person"}});
  REQUIRE(person.next()["_tag"] == "hello.ok");
  REQUIRE(person.call({{"_tag", "tool.join_room"}, {"room", "lobby"}, {"nickname", "ann"}})["_tag"] == "tool.ok");

  const json who = agent.call({{"_tag", "tool.who_is_here"}, {"room", "lobby"}});
  CHECK(who["result"]["nicknames"] == json{"claude", "ann"});
  CHECK(who["result"]["members"] == json::array({{{"nickname", "claude"}, {"kind", "agent"}, {"role", "owner"}},
                                                 {{"nickname", "ann"}, {"kind", "person"}, {"role", "member"}}}));

  REQUIRE(person.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "hi"}})["_tag"] == "tool.ok");
  const json from_person = agent.next();
  CHECK(from_person["fromNickname"] == "ann");
  CHECK(from_person["fromKind"] == "person");
  REQUIRE(agent.call({{"_tag", "tool.send_message"}, {"room", "lobby"}, {"body", "hello"}})["_tag"] == "tool.ok");
  CHECK(person.next()["fromKind"] == "agent");

  peer odd(h);
  odd.upgrade();
  odd.send_json({{"_tag", "hello"}, {"clientVersion", "0.1.0"}, {"clientKind", "robot"}});
  const json refused = odd.next();
  CHECK(refused["code"] == "BadHandshakeFrameError");
  CHECK(refused["message"] == "clientKind must be \"agent\" or \"person\"");
}

TEST_CASE("a loopback server honours a presented token: its label is the principal; a bad one is refused") {
  test_hooks hooks;  // tokens not required
  hooks.tokens = {{"parley_tok_ann", {token_status::valid, "ann"}}};
  harness h({}, hooks);
  peer first(h);
  first.upgrade();
  REQUIRE(first.hello("parley_tok_ann")["_tag"] == "hello.ok");
  REQUIRE(first.call({{"_tag", "tool.create_room"}, {"room", "den"}, {"visibility", "private"}})["_tag"] == "tool.ok");
  first.raw(first.ws.encode_close(1000, "bye"));

  peer again(h);  // another session of the same token: still the owner of its private room
  again.upgrade();
  REQUIRE(again.hello("parley_tok_ann")["_tag"] == "hello.ok");
  const json joined = again.call({{"_tag", "tool.join_room"}, {"room", "den"}});
  CHECK(joined["result"]["role"] == "owner");

  peer anonymous(h);
  anonymous.upgrade();
  REQUIRE(anonymous.hello()["_tag"] == "hello.ok");
  CHECK(anonymous.call({{"_tag", "tool.join_room"}, {"room", "den"}})["code"] == "RoomPrivateError");

  peer forged(h);
  forged.upgrade();
  CHECK(forged.hello("parley_tok_forged")["code"] == "BadTokenError");
}
