// SPDX-License-Identifier: MIT
// The MCP server state machine: lifecycle, tools/call round trips, cancellation, logging, and held channel pushes.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace mcp = parley::mcp;
using nlohmann::json;

namespace {

std::vector<json> parse_all(const std::vector<std::string>& lines) {
  std::vector<json> out;
  for (const auto& line : lines) {
    CHECK(line.find('\n') == std::string::npos);
    auto j = json::parse(line, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    CHECK(j["jsonrpc"] == "2.0");
    out.push_back(std::move(j));
  }
  return out;
}

// Sends one line and returns everything it caused.
std::vector<json> send(mcp::mcp_server& s, const json& message) {
  s.receive_line(message.dump());
  return parse_all(s.take_output());
}

std::vector<json> send_raw(mcp::mcp_server& s, std::string_view line) {
  s.receive_line(line);
  return parse_all(s.take_output());
}

json request(json id, std::string method, json params = nullptr) {
  json r = {{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"method", std::move(method)}};
  if (!params.is_null()) r["params"] = std::move(params);
  return r;
}

json notification(std::string method, json params = nullptr) {
  json n = {{"jsonrpc", "2.0"}, {"method", std::move(method)}};
  if (!params.is_null()) n["params"] = std::move(params);
  return n;
}

json initialize_params(std::string version = "2025-06-18") {
  return {{"protocolVersion", std::move(version)},
          {"capabilities", {{"roots", json::object()}}},
          {"clientInfo", {{"name", "test-host"}, {"version", "1"}}}};
}

json only(const std::vector<json>& out) {
  REQUIRE(out.size() == 1);
  return out[0];
}

int error_code(const std::vector<json>& out) {
  const json r = only(out);
  REQUIRE(r.contains("error"));
  CHECK_FALSE(r.contains("result"));
  return r["error"]["code"].get<int>();
}

void start(mcp::mcp_server& s) {
  only(send(s, request(0, "initialize", initialize_params())));
  CHECK(send(s, notification("notifications/initialized")).empty());
  REQUIRE(s.ready());
}

json call(std::string name, json arguments) {
  return {{"name", std::move(name)}, {"arguments", std::move(arguments)}};
}

}  // namespace

TEST_CASE("mcp_server: initialize echoes a supported protocol version and offers the newest otherwise") {
  for (const char* v : {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}) {
    mcp::mcp_server s;
    CHECK(only(send(s, request(1, "initialize", initialize_params(v))))["result"]["protocolVersion"] == v);
    CHECK(s.protocol_version() == v);
  }
  for (const char* v : {"2099-01-01", "", "2024-10-07"}) {
    mcp::mcp_server s;
    CHECK(only(send(s, request(1, "initialize", initialize_params(v))))["result"]["protocolVersion"] == "2025-11-25");
  }
}

TEST_CASE("mcp_server: the initialize result") {
  mcp::mcp_server s(mcp::server_options{"9.9.9"});
  CHECK(s.state() == mcp::mcp_server::session_state::awaiting_initialize);
  const json r = only(send(s, request("init", "initialize", initialize_params())));
  CHECK(r["id"] == "init");
  const json& result = r["result"];
  CHECK(result["capabilities"] ==
        json{{"tools", json::object()}, {"experimental", {{"claude/channel", json::object()}}}, {"logging", json::object()}});
  CHECK(result["serverInfo"] == json{{"name", "parley"}, {"version", "9.9.9"}});
  CHECK(result["instructions"] == std::string(mcp::server_instructions()));
  CHECK(s.client_info()["name"] == "test-host");
  CHECK(s.client_capabilities().contains("roots"));
  CHECK(s.state() == mcp::mcp_server::session_state::awaiting_initialized);
  CHECK_FALSE(s.ready());
  CHECK(send(s, notification("notifications/initialized")).empty());
  CHECK(s.ready());

  // A second initialize is a confused client, not a new session.
  CHECK(error_code(send(s, request(2, "initialize", initialize_params()))) == -32600);
  CHECK(s.ready());
}

TEST_CASE("mcp_server: malformed initialize params") {
  mcp::mcp_server s;
  CHECK(error_code(send(s, request(1, "initialize"))) == -32602);
  CHECK(error_code(send(s, request(1, "initialize", {{"capabilities", json::object()}}))) == -32602);
  CHECK(error_code(send(s, request(1, "initialize", {{"protocolVersion", 20250618}}))) == -32602);
  CHECK(s.state() == mcp::mcp_server::session_state::awaiting_initialize);
  CHECK(only(send(s, request(1, "initialize", {{"protocolVersion", "2025-03-26"}})))["result"]["protocolVersion"] ==
        "2025-03-26");
}

TEST_CASE("mcp_server: ids of every allowed kind are echoed exactly") {
  mcp::mcp_server s;
  for (const char* id : {R"("abc")", "0", "42", "-1", "9007199254740993", R"("")"}) {
    CAPTURE(id);
    const auto out = send_raw(s, std::string(R"({"jsonrpc":"2.0","method":"ping","id":)") + id + "}");
    REQUIRE(out.size() == 1);
    CHECK(out[0]["id"].dump() == id);
    CHECK(out[0]["result"] == json::object());
  }
  for (const char* id : {"null", "1.5", "true", "{}", "[]"}) {
    CAPTURE(id);
    const auto out = send_raw(s, std::string(R"({"jsonrpc":"2.0","method":"ping","id":)") + id + "}");
    CHECK(error_code(out) == -32600);
    CHECK(out[0]["id"].is_null());
  }
}

TEST_CASE("mcp_server: framing errors") {
  mcp::mcp_server s;
  auto garbage = send_raw(s, "this is not json");
  CHECK(error_code(garbage) == -32700);
  CHECK(garbage[0]["id"].is_null());
  CHECK(error_code(send_raw(s, R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])")) == -32600);
  CHECK(error_code(send_raw(s, R"({"id":1,"method":"ping"})")) == -32600);
  // Blank lines carry nothing and cause nothing.
  CHECK(send_raw(s, "").empty());
  CHECK(send_raw(s, " \t\r").empty());
  // Answers to requests we never sent are ignored.
  CHECK(send_raw(s, R"({"jsonrpc":"2.0","id":5,"result":{}})").empty());
  CHECK(send_raw(s, R"({"jsonrpc":"2.0","id":5,"error":{"code":1,"message":"x"}})").empty());
}

TEST_CASE("mcp_server: before initialize only ping and initialize are served") {
  mcp::mcp_server s;
  CHECK(only(send(s, request(1, "ping")))["result"] == json::object());
  const auto early = send(s, request(2, "tools/list"));
  CHECK(error_code(early) == -32600);
  CHECK(early[0]["id"] == 2);
  CHECK(error_code(send(s, request(3, "tools/call", call("list_rooms", json::object())))) == -32600);
  CHECK(error_code(send(s, request(4, "logging/setLevel", {{"level", "debug"}}))) == -32600);
  // Unknown methods are unknown in any state; server/discover must say so for newer clients to fall back.
  CHECK(error_code(send(s, request(5, "server/discover"))) == -32601);
  CHECK(error_code(send(s, request(6, "resources/list"))) == -32601);
  CHECK(send(s, notification("notifications/initialized")).empty());  // out of order: ignored
  CHECK_FALSE(s.ready());
}

TEST_CASE("mcp_server: after initialize, requests are served even before notifications/initialized") {
  mcp::mcp_server s;
  only(send(s, request(1, "initialize", initialize_params())));
  const json tools = only(send(s, request(2, "tools/list", {{"cursor", "ignored"}})))["result"];
  CHECK(tools["tools"] == mcp::tool_catalogue());
  CHECK_FALSE(tools.contains("nextCursor"));
  CHECK(only(send(s, request(3, "ping")))["result"] == json::object());
  CHECK(error_code(send(s, request(4, "server/discover"))) == -32601);
  CHECK(error_code(send(s, request(5, "prompts/get"))) == -32601);
  CHECK(send(s, notification("notifications/whatever")).empty());  // unknown notifications get nothing
}

TEST_CASE("mcp_server: tools/call protocol errors") {
  mcp::mcp_server s;
  start(s);
  auto unknown = send(s, request(1, "tools/call", call("rm_rf", json::object())));
  CHECK(error_code(unknown) == -32602);
  CHECK(unknown[0]["error"]["message"].get<std::string>().find("rm_rf") != std::string::npos);
  CHECK(error_code(send(s, request(2, "tools/call"))) == -32602);
  CHECK(error_code(send(s, request(3, "tools/call", {{"name", 7}}))) == -32602);
  CHECK(error_code(send(s, request(4, "tools/call", {{"arguments", json::object()}}))) == -32602);
  CHECK(error_code(send(s, request(5, "tools/call", call("list_rooms", json::array())))) == -32602);
  CHECK(error_code(send(s, request(6, "tools/call", call("list_rooms", "x")))) == -32602);
  CHECK(error_code(send(s, request(7, "tools/call", json::array({"list_rooms"})))) == -32602);
  CHECK_FALSE(s.next_tool_call().has_value());
}

TEST_CASE("mcp_server: bad arguments for a known tool are a tool error the agent can read") {
  mcp::mcp_server s;
  start(s);
  const json r = only(send(s, request(9, "tools/call", call("join_room", {{"room", "Bad Room"}}))));
  CHECK(r["id"] == 9);
  const json& result = r["result"];
  CHECK(result["isError"] == true);
  CHECK_FALSE(result.contains("structuredContent"));  // it would not match the outputSchema
  const std::string text = result["content"][0]["text"];
  CHECK(result["content"][0]["type"] == "text");
  CHECK(text.find("join_room") != std::string::npos);
  CHECK(text.find("room") != std::string::npos);
  CHECK(json::parse(result["content"][1]["text"].get<std::string>()) ==
        json{{"field", "room"}, {"rule", "pattern ^[a-z0-9][a-z0-9-]{0,31}$"}});
  CHECK_FALSE(s.next_tool_call().has_value());
}

TEST_CASE("mcp_server: a valid call is surfaced and completed under its id") {
  mcp::mcp_server s;
  start(s);
  CHECK(send(s, request("c-1", "tools/call", call("send_message", {{"room", "ops"}, {"body", "deploy done"}}))).empty());
  CHECK(send(s, request(0, "tools/call", {{"name", "list_rooms"}})).empty());  // arguments may be left out
  CHECK(s.pending_call_count() == 2);

  auto first = s.next_tool_call();
  REQUIRE(first.has_value());
  CHECK(first->id == "c-1");
  REQUIRE(std::holds_alternative<mcp::send_message_request>(first->request));
  CHECK(std::get<mcp::send_message_request>(first->request).body == "deploy done");
  auto second = s.next_tool_call();
  REQUIRE(second.has_value());
  CHECK(second->id == 0);
  CHECK(std::holds_alternative<mcp::list_rooms_request>(second->request));
  CHECK_FALSE(s.next_tool_call().has_value());

  // Answers go out in the order the bridge gives them, not the order of the calls.
  const json listing = {{"joined", json::array()}, {"available", json::array()}};
  CHECK(s.complete_tool_call(0, listing));
  const json sent = {{"room", "ops"}, {"seq", 12}, {"messageId", "m-1"}, {"sentAt", "2025-01-01T00:00:00Z"}};
  CHECK(s.complete_tool_call("c-1", sent));
  const auto out = parse_all(s.take_output());
  REQUIRE(out.size() == 2);
  CHECK(out[0]["id"] == 0);
  CHECK(out[0]["result"]["structuredContent"] == listing);
  CHECK(out[1]["id"] == "c-1");
  CHECK(out[1]["result"]["structuredContent"] == sent);
  CHECK(out[1]["result"]["content"] == json::array({{{"type", "text"}, {"text", sent.dump()}}}));
  CHECK_FALSE(out[1]["result"].contains("isError"));

  // Each call is answered once.
  CHECK_FALSE(s.complete_tool_call("c-1", sent));
  CHECK_FALSE(s.fail_tool_call(0, "again"));
  CHECK_FALSE(s.complete_tool_call(77, sent));
  CHECK(s.take_output().empty());
  CHECK(s.pending_call_count() == 0);
}

TEST_CASE("mcp_server: the string id \"1\" and the number 1 are different calls") {
  mcp::mcp_server s;
  start(s);
  CHECK(send(s, request(1, "tools/call", call("list_rooms", json::object()))).empty());
  CHECK(send(s, request("1", "tools/call", call("list_rooms", json::object()))).empty());
  CHECK(s.pending_call_count() == 2);
  CHECK(s.complete_tool_call("1", json::object()));
  CHECK(only(parse_all(s.take_output()))["id"] == "1");
  CHECK(s.pending_call_count() == 1);
}

TEST_CASE("mcp_server: failed calls") {
  mcp::mcp_server s;
  start(s);
  send(s, request(3, "tools/call", call("who_is_here", {{"room", "ops"}})));
  send(s, request(4, "tools/call", call("who_is_here", {{"room", "ops"}})));
  CHECK(s.fail_tool_call(3, "You are not in room ops; join it first.", {{"code", "NotInRoomError"}}));
  CHECK(s.fail_tool_call(4, "The server is unreachable."));
  const auto out = parse_all(s.take_output());
  REQUIRE(out.size() == 2);
  CHECK(out[0]["result"]["isError"] == true);
  CHECK(out[0]["result"]["content"][0]["text"] == "You are not in room ops; join it first.");
  CHECK(json::parse(out[0]["result"]["content"][1]["text"].get<std::string>())["code"] == "NotInRoomError");
  CHECK_FALSE(out[0]["result"].contains("structuredContent"));
  CHECK(out[1]["result"]["content"].size() == 1);
}

TEST_CASE("mcp_server: a call reusing the id of a call in progress is refused") {
  mcp::mcp_server s;
  start(s);
  CHECK(send(s, request(5, "tools/call", call("list_rooms", json::object()))).empty());
  CHECK(error_code(send(s, request(5, "tools/call", call("list_rooms", json::object())))) == -32600);
  CHECK(s.pending_call_count() == 1);
  // Once answered, the id may be used again.
  CHECK(s.complete_tool_call(5, json::object()));
  (void)s.take_output();
  CHECK(send(s, request(5, "tools/call", call("list_rooms", json::object()))).empty());
}

TEST_CASE("mcp_server: too many calls in flight are answered with a tool error") {
  mcp::server_options options;
  options.max_pending_calls = 2;
  mcp::mcp_server s(options);
  start(s);
  CHECK(send(s, request(1, "tools/call", call("list_rooms", json::object()))).empty());
  CHECK(send(s, request(2, "tools/call", call("list_rooms", json::object()))).empty());
  const json third = only(send(s, request(3, "tools/call", call("list_rooms", json::object()))));
  CHECK(third["result"]["isError"] == true);
  CHECK(s.pending_call_count() == 2);
}

TEST_CASE("mcp_server: cancelled calls are never answered") {
  mcp::mcp_server s;
  start(s);
  send(s, request(1, "tools/call", call("read_messages", {{"wait_ms", 60000}})));
  send(s, request("two", "tools/call", call("list_rooms", json::object())));
  send(s, request(3, "tools/call", call("list_rooms", json::object())));

  auto taken = s.next_tool_call();  // the bridge is already running call 1
  REQUIRE(taken.has_value());
  CHECK(send(s, notification("notifications/cancelled", {{"requestId", 1}, {"reason", "user"}})).empty());
  CHECK_FALSE(s.complete_tool_call(taken->id, {{"messages", json::array()}, {"dropped", false}}));

  // A call the bridge has not taken yet is withdrawn, so it never runs.
  CHECK(send(s, notification("notifications/cancelled", {{"requestId", "two"}})).empty());
  auto next = s.next_tool_call();
  REQUIRE(next.has_value());
  CHECK(next->id == 3);
  CHECK_FALSE(s.fail_tool_call("two", "too late"));

  // Cancelling what is unknown, already done, or malformed changes nothing.
  CHECK(send(s, notification("notifications/cancelled", {{"requestId", 99}})).empty());
  CHECK(send(s, notification("notifications/cancelled", {{"requestId", "3"}})).empty());
  CHECK(send(s, notification("notifications/cancelled", {{"requestId", nullptr}})).empty());
  CHECK(send(s, notification("notifications/cancelled")).empty());
  CHECK(s.complete_tool_call(3, json::object()));
  CHECK(only(parse_all(s.take_output()))["id"] == 3);
}

TEST_CASE("mcp_server: channel pushes are held until initialized, then flushed in order") {
  mcp::mcp_server s;
  s.push_channel("before initialize", {{"room", "ops"}});
  only(send(s, request(1, "initialize", initialize_params())));
  s.push_channel("before initialized", {{"room", "ops"}, {"seq", "2"}});
  s.log(mcp::log_level::warning, "held log");
  CHECK(s.take_output().empty());
  const auto flushed = send(s, notification("notifications/initialized"));
  REQUIRE(flushed.size() == 3);
  CHECK(flushed[0]["method"] == "notifications/claude/channel");
  CHECK(flushed[0]["params"] == json{{"content", "before initialize"}, {"meta", {{"room", "ops"}}}});
  CHECK(flushed[1]["params"]["content"] == "before initialized");
  CHECK(flushed[2]["method"] == "notifications/message");
  CHECK_FALSE(flushed[0].contains("id"));

  s.push_channel("live", {{"room", "ops"}});
  CHECK(only(parse_all(s.take_output()))["params"]["content"] == "live");
}

TEST_CASE("mcp_server: pushes and responses share one ordered stream") {
  mcp::mcp_server s;
  start(s);
  send(s, request(1, "tools/call", call("list_rooms", json::object())));
  s.push_channel("a", json::object());
  s.complete_tool_call(1, json::object());
  s.push_channel("b", json::object());
  const auto out = parse_all(s.take_output());
  REQUIRE(out.size() == 3);
  CHECK(out[0]["params"]["content"] == "a");
  CHECK(out[1]["id"] == 1);
  CHECK(out[2]["params"]["content"] == "b");
}

TEST_CASE("mcp_server: held notifications are bounded, oldest dropped, and the loss is reported") {
  mcp::server_options options;
  options.max_held_notifications = 3;
  mcp::mcp_server s(options);
  for (int i = 0; i < 5; ++i) s.push_channel(std::to_string(i), json::object());
  only(send(s, request(1, "initialize", initialize_params())));
  const auto out = send(s, notification("notifications/initialized"));
  REQUIRE(out.size() == 4);
  CHECK(out[0]["params"]["content"] == "2");
  CHECK(out[2]["params"]["content"] == "4");
  CHECK(out[3]["params"]["level"] == "warning");
  CHECK(out[3]["params"]["data"].get<std::string>().find('2') != std::string::npos);
}

TEST_CASE("mcp_server: channel meta keys and values are sanitised") {
  mcp::mcp_server s;
  start(s);
  const std::size_t dropped = s.push_channel(
      "hi", {{"room", "ops"}, {"from_nickname", "bob"}, {"seq", 42}, {"urgent", true}, {"bad key", "x"},
             {"quote\"", "x"}, {"", "x"}, {"nested", {{"a", 1}}}, {"nothing", nullptr}, {"sent_at", "2025-01-01T00:00:00Z"}});
  CHECK(dropped == 5);
  const json params = only(parse_all(s.take_output()))["params"];
  CHECK(params["meta"] == json{{"room", "ops"}, {"from_nickname", "bob"}, {"seq", "42"}, {"urgent", "true"},
                               {"sent_at", "2025-01-01T00:00:00Z"}});
  CHECK(s.push_channel("x", "not an object") == 1);
  CHECK(only(parse_all(s.take_output()))["params"]["meta"] == json::object());
  CHECK(s.push_channel("x", nullptr) == 0);
  CHECK(only(parse_all(s.take_output()))["params"]["meta"] == json::object());
  // Text that is not valid UTF-8 is replaced rather than breaking the line.
  s.push_channel("bad \xff byte\nsecond line", json::object());
  CHECK(only(parse_all(s.take_output()))["params"]["content"] == "bad \xEF\xBF\xBD byte\nsecond line");
}

TEST_CASE("mcp_server: logging follows the level the host sets") {
  mcp::mcp_server s;
  start(s);
  CHECK(s.log_threshold() == mcp::log_level::info);
  s.log(mcp::log_level::debug, "hidden");
  s.log(mcp::log_level::info, "shown");
  const json shown = only(parse_all(s.take_output()));
  CHECK(shown["method"] == "notifications/message");
  CHECK(shown["params"] == json{{"level", "info"}, {"logger", "parley"}, {"data", "shown"}});

  CHECK(only(send(s, request(1, "logging/setLevel", {{"level", "error"}})))["result"] == json::object());
  s.log(mcp::log_level::warning, "below");
  s.log(mcp::log_level::error, "at");
  s.log(mcp::log_level::emergency, "above");
  const auto out = parse_all(s.take_output());
  REQUIRE(out.size() == 2);
  CHECK(out[0]["params"]["data"] == "at");
  CHECK(out[1]["params"]["level"] == "emergency");

  for (const json& bad : {json{{"level", "verbose"}}, json{{"level", 3}}, json::object(), json{{"level", "DEBUG"}}})
    CHECK(error_code(send(s, request(2, "logging/setLevel", bad))) == -32602);
  CHECK(error_code(send(s, request(2, "logging/setLevel"))) == -32602);
  CHECK(s.log_threshold() == mcp::log_level::error);

  for (const char* name : {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}) {
    auto level = mcp::log_level_from_string(name);
    REQUIRE(level.has_value());
    CHECK(mcp::to_string(*level) == name);
    CHECK(only(send(s, request(3, "logging/setLevel", {{"level", name}})))["result"] == json::object());
  }
}

TEST_CASE("mcp_server: raw bytes in any chunking give the same answers") {
  const std::string input = std::string(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":)") +
                            initialize_params().dump() + "}\r\n" +
                            R"({"jsonrpc":"2.0","method":"notifications/initialized"})" "\n"
                            "\n"
                            R"({"jsonrpc":"2.0","id":"p","method":"ping"})" "\n"
                            "nonsense\n" +
                            R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})";  // no final newline
  mcp::mcp_server whole;
  whole.receive_bytes(input);
  whole.receive_eof();
  const auto expected = whole.take_output();
  REQUIRE(expected.size() == 4);
  CHECK(json::parse(expected[3])["id"] == 2);

  for (std::size_t cut = 0; cut <= input.size(); cut += 7) {
    mcp::mcp_server s;
    s.receive_bytes(std::string_view(input).substr(0, cut));
    s.receive_bytes(std::string_view(input).substr(cut));
    s.receive_eof();
    CHECK(s.take_output() == expected);
  }
  mcp::mcp_server bytewise;
  for (char c : input) bytewise.receive_bytes(std::string_view(&c, 1));
  bytewise.receive_eof();
  CHECK(bytewise.take_output() == expected);
}

TEST_CASE("mcp_server: an over-long line is refused and the stream recovers") {
  mcp::server_options options;
  options.max_line_bytes = 64;
  mcp::mcp_server s(options);
  s.receive_bytes(std::string(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":")") + std::string(100, 'x') +
                  "\"}}\n" + R"({"jsonrpc":"2.0","id":2,"method":"ping"})" + "\n");
  const auto out = parse_all(s.take_output());
  REQUIRE(out.size() == 2);
  CHECK(out[0]["error"]["code"] == -32600);
  CHECK(out[0]["id"].is_null());
  CHECK(out[1]["id"] == 2);
}
