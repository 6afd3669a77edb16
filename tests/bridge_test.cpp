// SPDX-License-Identifier: MIT
// The MCP bridge against the core server, wired together in memory: every rule of issue 4 without a socket.
#include <parley/parley.hpp>

#include "in_memory_network.hpp"
#include "scripted_server.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace parley;
using parley::testing::in_memory_network;
using parley::testing::test_policy;
using parley::testing::test_random;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

using test_bridge = basic_bridge<test_policy>;
using mono_time = in_memory_network::time;

// One agent: a bridge plus what its host saw on stdout.
struct agent : in_memory_network::endpoint {
  in_memory_network& net;
  test_bridge b;
  std::vector<json> stdout_lines;
  bool write_stdout = true;  // false: the host is not reading, so stdout_written() is never called
  stdout_batch taken = stdout_batch::none;    // the last batch of lines handed out
  stdout_batch written = stdout_batch::none;  // the last one confirmed written
  int next_id = 100;

  agent(in_memory_network& n, std::uint64_t seed) : net(n), b(bridge_config{}, test_random(seed)) {}

  bool step(in_memory_network& n) override {
    auto a = b.poll(n.now());
    bool moved = record(a);
    if (write_stdout && taken != written) {
      b.stdout_written(taken);
      written = taken;
      moved = true;
    }
    return n.apply(*this, a) || moved;
  }
  void connected(mono_time now) override { b.connected(now); }
  void receive(std::string_view bytes, mono_time now) override { b.receive_socket(bytes, now); }
  void disconnected(mono_time now, std::string why) override { b.disconnected(now, std::move(why)); }

  // The host reads what poll() handed out.
  bool record(const test_bridge::actions& a) {
    for (const auto& line : a.stdout_lines) stdout_lines.push_back(json::parse(line));
    if (a.batch != stdout_batch::none) taken = a.batch;
    return !a.stdout_lines.empty();
  }

  void stdin_line(const json& j) {
    b.receive_stdin(j.dump() + "\n", net.now());
    net.settle();
  }
  void initialize() {
    stdin_line({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
                {"params", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()},
                            {"clientInfo", {{"name", "test"}, {"version", "1"}}}}}});
    stdin_line({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  }
  json call(const std::string& tool, json arguments) {
    const int id = next_id++;
    stdin_line({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
                {"params", {{"name", tool}, {"arguments", std::move(arguments)}}}});
    const json* r = response(id);
    REQUIRE_MESSAGE(r, "no answer to ", tool);
    return *r;
  }
  std::vector<json> channel_pushes() const {
    std::vector<json> out;
    for (const auto& l : stdout_lines)
      if (l.value("method", "") == "notifications/claude/channel") out.push_back(l["params"]);
    return out;
  }
  const json* response(int id) const {
    for (const auto& l : stdout_lines)
      if (l.contains("id") && l["id"] == id) return &l;
    return nullptr;
  }
};

json structured(const json& response) { return response["result"]["structuredContent"]; }
bool is_error(const json& response) { return response["result"].value("isError", false); }

}  // namespace

TEST_CASE("two bridges in one room: join, send, the channel push with its meta, no self-echo") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  CHECK(structured(alice.call("join_room", {{"room", "lobby"}, {"nickname", "alice"}}))["nickname"] == "alice");
  CHECK(structured(bob.call("join_room", {{"room", "lobby"}}))["membersCount"] == 2);
  auto sent = structured(alice.call("send_message", {{"room", "lobby"}, {"body", "hello bob"}}));
  CHECK(sent["seq"] == 1);
  auto pushes = bob.channel_pushes();
  REQUIRE(pushes.size() == 1);
  CHECK(pushes[0]["content"] == "hello bob");
  CHECK(pushes[0]["meta"] == json{{"room", "lobby"}, {"from_nickname", "alice"}, {"from_kind", "agent"}, {"seq", "1"},
                                  {"message_id", sent["messageId"]}, {"sent_at", sent["sentAt"]}});
  CHECK(alice.channel_pushes().empty());
}

TEST_CASE("a message is acked to the server only after its notification was written to stdout") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  alice.call("join_room", {{"room", "lobby"}});
  bob.call("join_room", {{"room", "lobby"}});
  bob.write_stdout = false;
  alice.call("send_message", {{"room", "lobby"}, {"body", "x"}});
  REQUIRE(bob.channel_pushes().size() == 1);         // handed out for stdout,
  CHECK(net.unacked(bob, "lobby") == 1);             // and not acked while the write is not confirmed
  bob.write_stdout = true;
  net.settle();
  CHECK(net.unacked(bob, "lobby") == 0);
}

TEST_CASE("pushes wait for notifications/initialized") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.stdin_line({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
                  {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                              {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}});
  bob.call("join_room", {{"room", "lobby"}});
  alice.call("join_room", {{"room", "lobby"}});
  alice.call("send_message", {{"room", "lobby"}, {"body", "early"}});
  CHECK(bob.channel_pushes().empty());
  bob.stdin_line({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  REQUIRE(bob.channel_pushes().size() == 1);
  CHECK(bob.channel_pushes()[0]["content"] == "early");
}

TEST_CASE("list_rooms and who_is_here page through the bridge: limit and cursor reach the server, nextCursor comes back") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  for (const char* room : {"alpha", "beta", "gamma"}) alice.call("join_room", {{"room", room}, {"nickname", "alice"}});
  bob.call("join_room", {{"room", "alpha"}, {"nickname", "bob"}});
  auto first = structured(bob.call("list_rooms", {{"limit", 2}}));
  CHECK(first["joined"].size() + first["available"].size() == 2);
  REQUIRE(first.contains("nextCursor"));
  auto rest = structured(bob.call("list_rooms", {{"limit", 2}, {"cursor", first["nextCursor"]}}));
  REQUIRE(rest["available"].size() == 1);
  CHECK(rest["available"][0]["name"] == "gamma");
  CHECK_FALSE(rest.contains("nextCursor"));

  auto who = structured(bob.call("who_is_here", {{"room", "alpha"}, {"limit", 1}}));
  CHECK(who["nicknames"] == json::array({"alice"}));
  REQUIRE(who.contains("nextCursor"));
  auto after = structured(bob.call("who_is_here", {{"room", "alpha"}, {"limit", 1}, {"cursor", who["nextCursor"]}}));
  CHECK(after["nicknames"] == json::array({"bob"}));
}

TEST_CASE("isError results the agent can act on: taken, not in room, rate limited, invalid, unreachable") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  alice.call("join_room", {{"room", "lobby"}, {"nickname", "alice"}});
  auto taken = bob.call("join_room", {{"room", "lobby"}, {"nickname", "ALICE"}});
  CHECK(is_error(taken));
  CHECK(taken["result"]["content"][0]["text"].get<std::string>().find("taken") != std::string::npos);
  auto not_in = bob.call("send_message", {{"room", "lobby"}, {"body", "x"}});
  CHECK(is_error(not_in));
  CHECK(not_in["result"]["content"][1]["text"].get<std::string>().find("NotInRoomError") != std::string::npos);
  auto bad = bob.call("join_room", {{"room", "Bad Room"}});
  CHECK(is_error(bad));
  for (int i = 0; i < 20; ++i) CHECK_FALSE(is_error(alice.call("send_message", {{"room", "lobby"}, {"body", "x"}})));
  auto limited = alice.call("send_message", {{"room", "lobby"}, {"body", "x"}});
  CHECK(is_error(limited));
  CHECK(limited["result"]["content"][0]["text"].get<std::string>().find("wait 100 ms") != std::string::npos);
  CHECK(limited["result"]["content"][1]["text"].get<std::string>().find("\"retryAfterMs\":100") != std::string::npos);

  in_memory_network down;
  down.server_up = false;
  agent& lonely = down.add<agent>(3);
  lonely.initialize();
  auto unreachable = lonely.call("list_rooms", json::object());
  CHECK(is_error(unreachable));
  CHECK(unreachable["result"]["content"][0]["text"].get<std::string>().find("unreachable") != std::string::npos);
  // ...and says why, as the transport told it, so the agent need not read the bridge's stderr.
  CHECK(unreachable["result"]["content"][0]["text"].get<std::string>().find("Connection refused") != std::string::npos);
}

TEST_CASE("a call made while the first connection is under way waits for it instead of failing") {
  in_memory_network net;
  agent& a = net.add<agent>(1);
  a.b.receive_stdin(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
                         {"params", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()},
                                     {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}}.dump() + "\n" +
                        json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}.dump() + "\n",
                    net.now());
  const auto first = a.b.poll(net.now());
  a.record(first);
  REQUIRE(first.dial);  // the tools loop has started dialing, nothing is connected yet
  a.b.receive_stdin(json{{"jsonrpc", "2.0"}, {"id", 7}, {"method", "tools/call"},
                         {"params", {{"name", "list_rooms"}, {"arguments", json::object()}}}}.dump() + "\n",
                    net.now());
  a.record(a.b.poll(net.now()));
  CHECK_FALSE(a.response(7));
  net.accept(a);
  net.settle();
  REQUIRE(a.response(7));
  CHECK_FALSE(is_error(*a.response(7)));
}

TEST_CASE("read_messages: what arrived since the last read, per room or all, and waiting for the first") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  for (const char* room : {"one", "two"}) {
    alice.call("join_room", {{"room", room}});
    bob.call("join_room", {{"room", room}});
  }
  alice.call("send_message", {{"room", "one"}, {"body", "1"}});
  alice.call("send_message", {{"room", "two"}, {"body", "2"}});
  alice.call("send_message", {{"room", "one"}, {"body", "3"}});
  auto only_one = structured(bob.call("read_messages", {{"room", "one"}}));
  REQUIRE(only_one["messages"].size() == 2);
  CHECK(only_one["messages"][0]["body"] == "1");
  CHECK(only_one["messages"][1]["body"] == "3");
  CHECK(only_one["dropped"] == false);
  auto rest = structured(bob.call("read_messages", json::object()));
  REQUIRE(rest["messages"].size() == 1);
  CHECK(rest["messages"][0]["room"] == "two");
  CHECK(structured(bob.call("read_messages", json::object()))["messages"].empty());

  // waiting: parked until a message arrives
  const int id = bob.next_id++;
  bob.stdin_line({{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
                  {"params", {{"name", "read_messages"}, {"arguments", {{"wait_ms", 5000}}}}}});
  CHECK_FALSE(bob.response(id));
  net.advance(milliseconds(1000));
  CHECK_FALSE(bob.response(id));
  alice.call("send_message", {{"room", "two"}, {"body", "late"}});
  REQUIRE(bob.response(id));
  CHECK(structured(*bob.response(id))["messages"][0]["body"] == "late");

  // waiting that times out answers with nothing
  const int id2 = bob.next_id++;
  bob.stdin_line({{"jsonrpc", "2.0"}, {"id", id2}, {"method", "tools/call"},
                  {"params", {{"name", "read_messages"}, {"arguments", {{"wait_ms", 2000}}}}}});
  net.advance(milliseconds(2000));
  REQUIRE(bob.response(id2));
  CHECK(structured(*bob.response(id2))["messages"].empty());
}

TEST_CASE("read_messages flags messages dropped from a full buffer") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  alice.call("join_room", {{"room", "lobby"}});
  bob.call("join_room", {{"room", "lobby"}});
  for (int i = 0; i < 1005; ++i) {
    alice.call("send_message", {{"room", "lobby"}, {"body", std::to_string(i)}});
    net.clock += milliseconds(100);  // stay within the rate limit
  }
  auto read = structured(bob.call("read_messages", {{"limit", 1000}}));
  CHECK(read["dropped"] == true);
  REQUIRE(read["messages"].size() == 1000);
  CHECK(read["messages"][0]["body"] == "5");
  CHECK(structured(bob.call("read_messages", json::object()))["dropped"] == false);
}

TEST_CASE("a dropped connection resumes: missed messages arrive once, in order, and nothing is pushed twice") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  alice.call("join_room", {{"room", "lobby"}});
  bob.call("join_room", {{"room", "lobby"}, {"nickname", "bob"}});
  alice.call("send_message", {{"room", "lobby"}, {"body", "before"}});
  net.cut(bob);
  alice.call("send_message", {{"room", "lobby"}, {"body", "while-away-1"}});
  alice.call("send_message", {{"room", "lobby"}, {"body", "while-away-2"}});
  net.advance(seconds(11));  // past any backoff
  REQUIRE(bob.b.session_open());
  std::vector<std::string> bodies;
  for (const auto& p : bob.channel_pushes()) bodies.push_back(p["content"]);
  CHECK(bodies == std::vector<std::string>{"before", "while-away-1", "while-away-2"});
  alice.call("send_message", {{"room", "lobby"}, {"body", "after"}});
  CHECK(bob.channel_pushes().size() == 4);
  CHECK(structured(alice.call("who_is_here", {{"room", "lobby"}}))["nicknames"].size() == 2);
}

TEST_CASE("a send whose answer was lost in a drop is retried after the resume and delivered once") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  alice.call("join_room", {{"room", "lobby"}});
  bob.call("join_room", {{"room", "lobby"}});
  // Deliver alice's send to the server, then cut her link before the answer comes back.
  const int id = alice.next_id++;
  alice.b.receive_stdin(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
                             {"params", {{"name", "send_message"}, {"arguments", {{"room", "lobby"}, {"body", "once"}}}}}}
                                .dump() + "\n",
                        net.now());
  const auto sent = alice.b.poll(net.now());
  alice.record(sent);
  net.deliver_then_cut(alice, sent.send);  // alice's answer is lost with the link
  net.settle();
  net.advance(seconds(11));
  REQUIRE(alice.response(id));
  CHECK_FALSE(is_error(*alice.response(id)));
  auto pushes = bob.channel_pushes();
  REQUIRE(pushes.size() == 1);  // the retry carried the same clientMsgId
  CHECK(pushes[0]["content"] == "once");
}

TEST_CASE("a refused resume starts a fresh session, rejoins under the same nickname and says messages may be lost") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  alice.call("join_room", {{"room", "lobby"}, {"nickname", "alice"}});
  bob.call("join_room", {{"room", "lobby"}, {"nickname", "bob"}});
  const auto seq_before = structured(alice.call("send_message", {{"room", "lobby"}, {"body", "x"}}))["seq"].get<int>();
  net.restart_server();
  net.advance(seconds(11));
  REQUIRE(alice.b.session_open());
  REQUIRE(bob.b.session_open());
  auto notices = bob.channel_pushes();
  REQUIRE(notices.size() == 2);
  CHECK(notices[1]["meta"]["event"] == "reconnected");
  CHECK(notices[1]["content"].get<std::string>().find("may have been missed") != std::string::npos);
  auto who = structured(alice.call("who_is_here", {{"room", "lobby"}}))["nicknames"];
  CHECK(who == json::array({"alice", "bob"}));
  auto sent = structured(alice.call("send_message", {{"room", "lobby"}, {"body", "after restart"}}));
  CHECK(sent["seq"].get<int>() > seq_before);
  CHECK(bob.channel_pushes().back()["content"] == "after restart");
}

TEST_CASE("a rejoin whose nickname was taken meanwhile takes the next free one") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  alice.initialize();
  alice.call("join_room", {{"room", "lobby"}, {"nickname", "alice"}});
  net.restart_server();
  agent& impostor = net.add<agent>(5);
  impostor.initialize();
  impostor.call("join_room", {{"room", "lobby"}, {"nickname", "Alice"}});
  net.advance(seconds(11));
  auto who = structured(impostor.call("who_is_here", {{"room", "lobby"}}))["nicknames"];
  CHECK(who == json::array({"Alice", "alice-2"}));
}

TEST_CASE("stdin EOF closes with 1000: the session ends at once and the bridge finishes") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  alice.initialize();
  bob.initialize();
  alice.call("join_room", {{"room", "lobby"}, {"nickname", "alice"}});
  bob.call("join_room", {{"room", "lobby"}, {"nickname", "bob"}});
  alice.b.shutdown(net.now());
  net.settle();
  CHECK(alice.b.finished());
  CHECK(structured(bob.call("who_is_here", {{"room", "lobby"}}))["nicknames"] == json::array({"bob"}));
}

TEST_CASE("shutdown finishes within its deadline even if the server never answers") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  alice.initialize();
  net.server_up = true;
  alice.b.shutdown(net.now());
  // the close request is pending but nobody carries it out
  CHECK_FALSE(alice.b.finished());
  CHECK_FALSE(alice.b.poll(net.now() + milliseconds(499)).finished);
  CHECK(alice.b.poll(net.now() + milliseconds(500)).finished);
  CHECK(alice.b.finished());
}

TEST_CASE("reconnect backoff grows from 100 ms with jitter and is capped at 10 s") {
  in_memory_network net;
  net.server_up = false;
  agent& a = net.add<agent>(9);
  std::vector<std::int64_t> waits;
  mono_time t = net.now();
  for (int i = 0; i < 12; ++i) {
    REQUIRE(a.b.poll(t).dial);
    a.b.disconnected(t);  // refused
    const auto next = *a.b.poll(t).deadline;
    waits.push_back((next - t).count());
    CHECK_FALSE(a.b.poll(next - milliseconds(1)).dial);
    t = next;
  }
  CHECK(waits[0] >= 50);
  CHECK(waits[0] <= 100);
  CHECK(waits[3] >= 400);
  CHECK(waits[3] <= 800);
  for (std::size_t i = 8; i < waits.size(); ++i) {
    CHECK(waits[i] >= 5000);
    CHECK(waits[i] <= 10000);
  }
}

namespace {

json request_line(int id, const std::string& method, json params = json::object()) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
}

json initialize_line() {
  return request_line(1, "initialize",
                      {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()},
                       {"clientInfo", {{"name", "test"}, {"version", "1"}}}});
}

}  // namespace

TEST_CASE("a tool call whose answer is over the limit every time gets an MCP error after 3 attempts") {
  parley::testing::scripted_server srv;
  srv.answer = parley::testing::oversized_tool_ok;
  test_bridge b(bridge_config{}, test_random(3));
  mono_time t = parley::simulated_epoch.monotonic;
  std::vector<json> out;
  auto receive = [&](std::string bytes, mono_time now) { b.receive_socket(bytes, now); };
  auto seen = [&](test_bridge::actions& a) {
    for (const auto& line : a.stdout_lines) out.push_back(json::parse(line));
    if (a.batch != stdout_batch::none) b.stdout_written(a.batch);
    return !a.stdout_lines.empty();
  };
  auto dials = parley::testing::run_scripted(b, srv, t, t + seconds(1), receive, seen);
  b.receive_stdin(initialize_line().dump() + "\n" +
                      json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}.dump() + "\n" +
                      request_line(2, "tools/call", {{"name", "who_is_here"}, {"arguments", {{"room", "ops"}}}}).dump() +
                      "\n",
                  t);
  const auto more = parley::testing::run_scripted(b, srv, t, t + seconds(60), receive, seen);
  dials.insert(dials.end(), more.begin(), more.end());
  const json* answer = nullptr;
  for (const auto& line : out)
    if (line.contains("id") && line["id"] == 2) {
      CHECK_FALSE(answer);  // answered once
      answer = &line;
    }
  REQUIRE(answer);
  CHECK(is_error(*answer));
  const std::string text = (*answer)["result"]["content"][0]["text"];
  CHECK(text.find("who_is_here") != std::string::npos);
  CHECK(text.find("3 times") != std::string::npos);
  CHECK(text.find("message larger than") != std::string::npos);
  const json details = json::parse((*answer)["result"]["content"][1]["text"].get<std::string>());
  CHECK(details["code"] == "RetriesExhaustedError");
  CHECK(details["attempts"] == 3);
  CHECK(srv.requests == 3);
  CHECK(dials.size() == 4);  // and then it stays connected
}

TEST_CASE("backpressure: past max_unwritten_stdout_bytes the bridge serves no more stdin and wants none") {
  bridge_config config;
  config.max_unwritten_stdout_bytes = 64 * 1024;
  test_bridge b(config, test_random(4));
  const mono_time t = parley::simulated_epoch.monotonic;
  CHECK(b.wants_input());
  std::string lines = initialize_line().dump() + "\n";
  for (int id = 2; id < 2002; ++id) lines += request_line(id, "ping").dump() + "\n";
  b.receive_stdin(lines, t);
  auto answered = [](const test_bridge::actions& a) {
    std::size_t n = 0;
    for (const auto& l : a.stdout_lines) n += json::parse(l).contains("id") ? 1 : 0;
    return n;
  };
  // The host does not read: the first batch is handed out and never confirmed written.
  auto a = b.poll(t);
  std::size_t seen = answered(a);
  CHECK(seen < 2001);
  CHECK(b.unwritten_stdout_bytes() >= config.max_unwritten_stdout_bytes);
  CHECK(b.unwritten_stdout_bytes() < config.max_unwritten_stdout_bytes + 1024);
  CHECK_FALSE(b.wants_input());
  const auto more = b.poll(t);
  CHECK(answered(more) == 0);  // nothing more is served while nothing is written
  CHECK_FALSE(b.wants_input());
  // The host reads: the rest is served, a batch at a time, and then it wants input again.
  stdout_batch last = a.batch;
  for (int round = 0; round < 100 && seen < 2001; ++round) {
    b.stdout_written(last);
    a = b.poll(t);
    seen += answered(a);
    if (a.batch != stdout_batch::none) last = a.batch;
  }
  CHECK(seen == 2001);
  b.stdout_written(last);
  CHECK(b.unwritten_stdout_bytes() == 0);
  CHECK(b.wants_input());
}

TEST_CASE("backpressure: a line split across reads is served once whole, and shutdown serves what is held") {
  bridge_config config;
  config.max_unwritten_stdout_bytes = 1;  // any unwritten output holds stdin back
  test_bridge b(config, test_random(4));
  const mono_time t = parley::simulated_epoch.monotonic;
  const std::string init = initialize_line().dump() + "\n";
  b.receive_stdin(std::string_view(init).substr(0, 10), t);
  CHECK(b.wants_input());  // a part line is handed to the MCP server: nothing is held
  b.receive_stdin(std::string_view(init).substr(10) , t);
  b.receive_stdin(request_line(2, "ping").dump() + "\n" + request_line(3, "ping").dump() + "\n", t);
  CHECK_FALSE(b.wants_input());
  auto a = b.poll(t);
  REQUIRE(a.stdout_lines.size() == 1);  // initialize's answer; the pings wait for it to be written
  b.shutdown(t);
  a = b.poll(t);
  REQUIRE(a.stdout_lines.size() == 2);
  CHECK(json::parse(a.stdout_lines[0])["id"] == 2);
  CHECK(json::parse(a.stdout_lines[1])["id"] == 3);
}

// ---- direct messages and rooms people control ------------------------------------------

namespace {

bool meta_keys_valid(const json& meta) {
  for (auto it = meta.begin(); it != meta.end(); ++it)
    if (!mcp::is_channel_meta_key(it.key()) || !it->is_string()) return false;
  return true;
}

std::vector<json> event_pushes(const agent& a, const std::string& kind) {
  std::vector<json> out;
  for (const auto& p : a.channel_pushes())
    if (p["meta"].value("event", "") == kind) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("a direct message is pushed to its recipient only, marked direct, and acked with direct only once written") {
  in_memory_network net;
  agent& alice = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  agent& carol = net.add<agent>(3);
  for (agent* a : {&alice, &bob, &carol}) a->initialize();
  alice.call("join_room", {{"room", "lobby"}, {"nickname", "alice"}});
  bob.call("join_room", {{"room", "lobby"}, {"nickname", "bob"}});
  carol.call("join_room", {{"room", "lobby"}, {"nickname", "carol"}});
  bob.write_stdout = false;
  const auto sent = structured(alice.call("send_message", {{"room", "lobby"}, {"body", "psst"}, {"to", "bob"}}));
  CHECK(sent["to"] == "bob");
  CHECK(sent["seq"] == 1);
  auto pushes = bob.channel_pushes();
  REQUIRE(pushes.size() == 1);
  CHECK(pushes[0]["content"] == "psst");
  CHECK(pushes[0]["meta"] == json{{"room", "lobby"}, {"from_nickname", "alice"}, {"from_kind", "agent"}, {"seq", "1"},
                                  {"message_id", sent["messageId"]}, {"sent_at", sent["sentAt"]}, {"direct", "true"},
                                  {"to", "bob"}});
  CHECK(carol.channel_pushes().empty());
  CHECK(net.unacked_direct(bob, "lobby") == 1);  // not acked while the write is not confirmed
  bob.write_stdout = true;
  net.settle();
  CHECK(net.unacked_direct(bob, "lobby") == 0);

  const auto refused = alice.call("send_message", {{"room", "lobby"}, {"body", "x"}, {"to", "nobody"}});
  CHECK(is_error(refused));
  CHECK(refused["result"]["content"][1]["text"].get<std::string>().find("NotFoundError") != std::string::npos);
  CHECK(is_error(alice.call("send_message", {{"room", "lobby"}, {"body", "x"}, {"to", "alice"}})));
}

TEST_CASE("knock, approve, role, kick: each event is pushed with event= and snake_case meta keys") {
  in_memory_network net;
  agent& owner = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  owner.initialize();
  bob.initialize();
  const auto made = structured(owner.call("create_room", {{"room", "den"}, {"visibility", "private"}, {"nickname", "owner"}}));
  CHECK(made["role"] == "owner");
  CHECK(made["visibility"] == "private");
  const auto kept_out = bob.call("join_room", {{"room", "den"}});
  CHECK(is_error(kept_out));
  CHECK(kept_out["result"]["content"][1]["text"].get<std::string>().find("RoomPrivateError") != std::string::npos);

  const auto knocked = structured(bob.call("knock", {{"room", "den"}, {"nickname", "bobby"}, {"note", "from ops"}}));
  CHECK(knocked["status"] == "pending");
  const std::string id = knocked["knockId"];
  auto knocks = event_pushes(owner, "knock");
  REQUIRE(knocks.size() == 1);
  CHECK(meta_keys_valid(knocks[0]["meta"]));
  CHECK(knocks[0]["meta"] == json{{"room", "den"}, {"event", "knock"}, {"knock_id", id}, {"nickname", "bobby"}});
  const std::string text = knocks[0]["content"];
  CHECK(text.find("bobby") != std::string::npos);
  CHECK(text.find("from ops") != std::string::npos);
  CHECK(text.find("Ask your user") != std::string::npos);

  CHECK(structured(owner.call("approve", {{"room", "den"}, {"knock_id", id}}))["nickname"] == "bobby");
  auto approved = event_pushes(bob, "approved");
  REQUIRE(approved.size() == 1);
  CHECK(meta_keys_valid(approved[0]["meta"]));
  CHECK(approved[0]["meta"] == json{{"room", "den"}, {"event", "approved"}, {"nickname", "bobby"}, {"members_count", "2"}});
  CHECK(bob.b.client().rooms().at("den") == "bobby");

  CHECK(structured(owner.call("set_role", {{"room", "den"}, {"nickname", "bobby"}, {"role", "watcher"}}))["role"] ==
        "watcher");
  auto role = event_pushes(bob, "role");
  REQUIRE(role.size() == 1);
  CHECK(role[0]["meta"] == json{{"room", "den"}, {"event", "role"}, {"role", "watcher"}});
  const auto muted = bob.call("send_message", {{"room", "den"}, {"body", "x"}});
  CHECK(is_error(muted));
  CHECK(muted["result"]["content"][1]["text"].get<std::string>().find("ForbiddenError") != std::string::npos);

  CHECK(structured(owner.call("kick", {{"room", "den"}, {"nickname", "bobby"}}))["nickname"] == "bobby");
  REQUIRE(event_pushes(bob, "kicked").size() == 1);
  CHECK(event_pushes(bob, "kicked")[0]["meta"] == json{{"room", "den"}, {"event", "kicked"}});
  CHECK(bob.b.client().rooms().empty());

  // a denied knock, and owner-only tools refused to a non-owner
  const auto again = structured(bob.call("knock", {{"room", "den"}}));
  owner.call("deny", {{"room", "den"}, {"knock_id", again["knockId"]}});
  REQUIRE(event_pushes(bob, "denied").size() == 1);
  CHECK(is_error(bob.call("invite", {{"room", "den"}})));
}

TEST_CASE("invite, join with it, ban and unban through the bridge") {
  in_memory_network net;
  agent& owner = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  owner.initialize();
  bob.initialize();
  owner.call("create_room", {{"room", "den"}, {"visibility", "private"}, {"nickname", "owner"}});
  const auto invite = structured(owner.call("invite", {{"room", "den"}, {"max_uses", 1}, {"role", "member"}}));
  CHECK(invite["code"].get<std::string>().size() == 32);
  CHECK(invite["maxUses"] == 1);
  CHECK(invite["role"] == "member");
  CHECK(is_error(bob.call("join_room", {{"room", "den"}, {"invite", "wrongwrongwrong"}})));
  const auto joined = structured(bob.call("join_room", {{"room", "den"}, {"nickname", "bob"}, {"invite", invite["code"]}}));
  CHECK(joined["role"] == "member");
  CHECK(joined["visibility"] == "private");
  owner.call("ban", {{"room", "den"}, {"nickname", "bob"}});
  REQUIRE(event_pushes(bob, "banned").size() == 1);
  const auto banned = bob.call("join_room", {{"room", "den"}, {"invite", invite["code"]}});
  CHECK(banned["result"]["content"][1]["text"].get<std::string>().find("BannedError") != std::string::npos);
  CHECK(structured(owner.call("unban", {{"room", "den"}, {"nickname", "bob"}}))["nickname"] == "bob");
}

TEST_CASE("read_messages hands out direct messages and events with the room's messages, in order") {
  in_memory_network net;
  agent& owner = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  owner.initialize();
  bob.initialize();
  owner.call("create_room", {{"room", "den"}, {"visibility", "private"}, {"nickname", "owner"}});
  const std::string id = structured(bob.call("knock", {{"room", "den"}, {"nickname", "bob"}}))["knockId"];
  owner.call("approve", {{"room", "den"}, {"knock_id", id}});
  owner.call("send_message", {{"room", "den"}, {"body", "to all"}});
  owner.call("send_message", {{"room", "den"}, {"body", "to you"}, {"to", "bob"}});

  const auto knocks = structured(owner.call("read_messages", json::object()))["messages"];
  REQUIRE(knocks.size() == 1);
  CHECK(knocks[0]["event"] == "knock");
  CHECK(knocks[0]["knockId"] == id);
  CHECK(knocks[0]["nickname"] == "bob");
  CHECK(knocks[0]["body"].get<std::string>().find("knocks on den") != std::string::npos);

  const auto got = structured(bob.call("read_messages", {{"room", "den"}}))["messages"];
  REQUIRE(got.size() == 3);
  CHECK(got[0]["event"] == "approved");
  CHECK(got[0]["membersCount"] == 2);
  CHECK(got[1]["body"] == "to all");
  CHECK_FALSE(got[1].contains("direct"));
  CHECK(got[1]["seq"] == 1);
  CHECK(got[2]["body"] == "to you");
  CHECK(got[2]["direct"] == true);
  CHECK(got[2]["to"] == "bob");
  CHECK(got[2]["fromNickname"] == "owner");
  CHECK(got[2]["seq"] == 1);

  // a wait ends at an event as at a message
  const int wait = bob.next_id++;
  bob.stdin_line({{"jsonrpc", "2.0"}, {"id", wait}, {"method", "tools/call"},
                  {"params", {{"name", "read_messages"}, {"arguments", {{"wait_ms", 5000}}}}}});
  CHECK_FALSE(bob.response(wait));
  owner.call("set_role", {{"room", "den"}, {"nickname", "bob"}, {"role", "owner"}});
  REQUIRE(bob.response(wait));
  CHECK(structured(*bob.response(wait))["messages"][0]["event"] == "role");
}

TEST_CASE("list_rooms hides a private room from those not admitted to it") {
  in_memory_network net;
  agent& owner = net.add<agent>(1);
  agent& other = net.add<agent>(2);
  owner.initialize();
  other.initialize();
  owner.call("create_room", {{"room", "den"}, {"visibility", "private"}});
  owner.call("join_room", {{"room", "hall"}});
  const auto mine = structured(owner.call("list_rooms", json::object()));
  REQUIRE(mine["joined"].size() == 2);
  CHECK(mine["joined"][0]["visibility"] == "private");
  CHECK(mine["joined"][0]["role"] == "owner");
  const auto theirs = structured(other.call("list_rooms", json::object()));
  REQUIRE(theirs["available"].size() == 1);
  CHECK(theirs["available"][0]["name"] == "hall");
}

TEST_CASE("a knock approved while the knocker's link is down reaches it after the resume, and the room is its own") {
  in_memory_network net;
  agent& owner = net.add<agent>(1);
  agent& bob = net.add<agent>(2);
  owner.initialize();
  bob.initialize();
  owner.call("create_room", {{"room", "den"}, {"visibility", "private"}, {"nickname", "owner"}});
  const std::string id = structured(bob.call("knock", {{"room", "den"}, {"nickname", "bob"}}))["knockId"];
  net.cut(bob);
  owner.call("approve", {{"room", "den"}, {"knock_id", id}});
  owner.call("send_message", {{"room", "den"}, {"body", "welcome"}});
  net.advance(seconds(11));
  REQUIRE(bob.b.session_open());
  REQUIRE(event_pushes(bob, "approved").size() == 1);
  CHECK(bob.b.client().rooms().at("den") == "bob");
  bool welcomed = false;
  for (const auto& p : bob.channel_pushes()) welcomed = welcomed || p["content"] == "welcome";
  CHECK(welcomed);
}
