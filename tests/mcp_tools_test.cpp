// SPDX-License-Identifier: MIT
// The MCP tool catalogue: argument validation at every boundary, and schemas that say what the validator enforces.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <string>

namespace mcp = parley::mcp;
using nlohmann::json;

namespace {

mcp::argument_error refused(std::string_view tool, const json& args) {
  auto r = mcp::parse_tool_arguments(tool, args);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(std::holds_alternative<mcp::argument_error>(r.error()));
  return std::get<mcp::argument_error>(r.error());
}

template <class T>
T accepted(std::string_view tool, const json& args) {
  auto r = mcp::parse_tool_arguments(tool, args);
  if (!r && std::holds_alternative<mcp::argument_error>(r.error())) FAIL_CHECK(std::get<mcp::argument_error>(r.error()).message);
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<T>(*r));
  CHECK(mcp::tool_name(*r) == tool);
  return std::get<T>(*r);
}

const std::string room_rule = "pattern ^[a-z0-9][a-z0-9-]{0,31}$";
const std::string nickname_rule = "pattern ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$";

json tool_named(std::string_view name) {
  for (const auto& t : mcp::tool_catalogue())
    if (t["name"] == name) return t;
  FAIL("no tool " << name);
  return nullptr;
}

}  // namespace

TEST_CASE("mcp_tools: an unknown tool is not a bad argument") {
  auto r = mcp::parse_tool_arguments("delete_everything", json::object());
  REQUIRE_FALSE(r.has_value());
  REQUIRE(std::holds_alternative<mcp::unknown_tool>(r.error()));
  CHECK(std::get<mcp::unknown_tool>(r.error()).name == "delete_everything");
  CHECK(std::holds_alternative<mcp::unknown_tool>(mcp::parse_tool_arguments("", json::object()).error()));
  CHECK(std::holds_alternative<mcp::unknown_tool>(mcp::parse_tool_arguments("Join_Room", json::object()).error()));
}

TEST_CASE("mcp_tools: room names at the pattern's edges") {
  CHECK(accepted<mcp::leave_room_request>("leave_room", {{"room", "a"}}).room == "a");
  CHECK(accepted<mcp::leave_room_request>("leave_room", {{"room", "0-x-"}}).room == "0-x-");
  CHECK(accepted<mcp::leave_room_request>("leave_room", {{"room", std::string(32, 'r')}}).room.size() == 32);
  for (const std::string& bad : {std::string(33, 'r'), std::string(""), std::string("-lead"), std::string("Upper"),
                                std::string("under_score"), std::string("sp ace"), std::string("caf\xC3\xA9")}) {
    CAPTURE(bad);
    auto e = refused("who_is_here", {{"room", bad}});
    CHECK(e.field == "room");
    CHECK(e.rule == room_rule);
    CHECK_FALSE(e.message.empty());
  }
  // The hub's sentence names only the first failed check; the plain rule follows it.
  CHECK(refused("leave_room", {{"room", "Ops"}}).message.find("lowercase") != std::string::npos);
  auto missing = refused("leave_room", json::object());
  CHECK(missing.field == "room");
  CHECK(missing.rule == "required");
  auto typed = refused("leave_room", {{"room", 5}});
  CHECK(typed.field == "room");
  CHECK(typed.rule == "type string");
  CHECK(refused("leave_room", {{"room", nullptr}}).rule == "type string");
}

TEST_CASE("mcp_tools: join_room and the nickname rules") {
  auto plain = accepted<mcp::join_room_request>("join_room", {{"room", "lobby"}});
  CHECK(plain.room == "lobby");
  CHECK_FALSE(plain.nickname.has_value());
  CHECK(accepted<mcp::join_room_request>("join_room", {{"room", "lobby"}, {"nickname", "Claude_2-x"}}).nickname ==
        "Claude_2-x");
  CHECK(accepted<mcp::join_room_request>("join_room", {{"room", "l"}, {"nickname", "9"}}).nickname == "9");
  CHECK(accepted<mcp::join_room_request>("join_room", {{"room", "l"}, {"nickname", std::string(32, 'N')}})
            .nickname->size() == 32);
  for (const std::string& bad : {std::string("_lead"), std::string("-lead"), std::string(""), std::string(33, 'N'),
                                std::string("dot.ted"), std::string("sp ace")}) {
    CAPTURE(bad);
    auto e = refused("join_room", {{"room", "lobby"}, {"nickname", bad}});
    CHECK(e.field == "nickname");
    CHECK(e.rule == nickname_rule);
  }
  CHECK(refused("join_room", {{"room", "lobby"}, {"nickname", nullptr}}).rule == "type string");
  CHECK(refused("join_room", {{"nickname", "x"}}).field == "room");
}

TEST_CASE("mcp_tools: send_message counts the body in bytes of UTF-8") {
  // 2048 four-byte emoji are 8192 bytes but only 2048 characters.
  std::string emoji;
  for (int i = 0; i < 2048; ++i) emoji += "\xF0\x9F\x98\x80";
  CHECK(accepted<mcp::send_message_request>("send_message", {{"room", "r"}, {"body", emoji}}).body == emoji);
  auto over = refused("send_message", {{"room", "r"}, {"body", emoji + "x"}});
  CHECK(over.field == "body");
  CHECK(over.rule == "maxBytes 8192");
  CHECK(over.message.find("8193") != std::string::npos);

  // Three-byte characters straddling the limit: 2730*3 = 8190, +2 ASCII = 8192.
  std::string euro;
  for (int i = 0; i < 2730; ++i) euro += "\xE2\x82\xAC";
  CHECK(accepted<mcp::send_message_request>("send_message", {{"room", "r"}, {"body", euro + "ab"}}).body.size() == 8192);
  CHECK(refused("send_message", {{"room", "r"}, {"body", euro + "\xE2\x82\xAC"}}).rule == "maxBytes 8192");

  CHECK(accepted<mcp::send_message_request>("send_message", {{"room", "r"}, {"body", "x"}}).body == "x");
  auto empty = refused("send_message", {{"room", "r"}, {"body", ""}});
  CHECK(empty.field == "body");
  CHECK(empty.rule == "minBytes 1");
  CHECK(refused("send_message", {{"room", "r"}}).rule == "required");
  CHECK(refused("send_message", {{"body", "x"}}).field == "room");
  CHECK(refused("send_message", {{"room", "r"}, {"body", json::array({"x"})}}).rule == "type string");
  // Invalid UTF-8 cannot come out of the JSON parser, but a json built in code can hold it.
  auto bad_utf8 = refused("send_message", {{"room", "r"}, {"body", "a\xC3"}});
  CHECK(bad_utf8.field == "body");
  CHECK(bad_utf8.rule == "utf8");
}

TEST_CASE("mcp_tools: read_messages bounds and defaults") {
  auto defaults = accepted<mcp::read_messages_request>("read_messages", json::object());
  CHECK_FALSE(defaults.room.has_value());
  CHECK(defaults.limit == 100);
  CHECK(defaults.wait_ms == 0);

  CHECK(accepted<mcp::read_messages_request>("read_messages", {{"limit", 1}}).limit == 1);
  CHECK(accepted<mcp::read_messages_request>("read_messages", {{"limit", 1000}}).limit == 1000);
  CHECK(accepted<mcp::read_messages_request>("read_messages", {{"limit", 5.0}}).limit == 5);  // JSON Schema integer
  CHECK(accepted<mcp::read_messages_request>("read_messages", {{"wait_ms", 0}}).wait_ms == 0);
  CHECK(accepted<mcp::read_messages_request>("read_messages", {{"wait_ms", 60000}}).wait_ms == 60000);
  CHECK(accepted<mcp::read_messages_request>("read_messages", {{"room", "ops"}}).room == "ops");

  CHECK(refused("read_messages", {{"limit", 0}}).rule == "minimum 1");
  CHECK(refused("read_messages", {{"limit", -5}}).rule == "minimum 1");
  CHECK(refused("read_messages", {{"limit", 1001}}).rule == "maximum 1000");
  CHECK(refused("read_messages", {{"limit", 18446744073709551615ULL}}).rule == "maximum 1000");
  CHECK(refused("read_messages", {{"limit", -9223372036854775807LL - 1}}).rule == "minimum 1");
  CHECK(refused("read_messages", {{"limit", 1e300}}).rule == "maximum 1000");
  CHECK(refused("read_messages", {{"limit", 2.5}}).rule == "type integer");
  CHECK(refused("read_messages", {{"limit", "10"}}).rule == "type integer");
  CHECK(refused("read_messages", {{"limit", true}}).rule == "type integer");
  CHECK(refused("read_messages", {{"wait_ms", -1}}).rule == "minimum 0");
  auto late = refused("read_messages", {{"wait_ms", 60001}});
  CHECK(late.field == "wait_ms");
  CHECK(late.rule == "maximum 60000");
  CHECK(refused("read_messages", {{"room", "Bad"}}).rule == room_rule);
}

TEST_CASE("mcp_tools: unknown properties and non-object arguments are refused") {
  auto extra = refused("leave_room", {{"room", "r"}, {"rooms", "r"}});
  CHECK(extra.field == "rooms");
  CHECK(extra.rule == "additionalProperties false");
  CHECK(refused("list_rooms", {{"verbose", true}}).field == "verbose");
  CHECK(refused("send_message", {{"room", "r"}, {"body", "x"}, {"clientMsgId", "k"}}).field == "clientMsgId");

  accepted<mcp::list_rooms_request>("list_rooms", json::object());
  accepted<mcp::list_rooms_request>("list_rooms", nullptr);  // no arguments at all
  for (const json& args : {json::array(), json("x"), json(1)}) {
    auto e = refused("list_rooms", args);
    CHECK(e.field == "arguments");
    CHECK(e.rule == "type object");
  }
}

TEST_CASE("mcp_tools: list_rooms and who_is_here page with limit and cursor, checked as the server checks them") {
  auto list = accepted<mcp::list_rooms_request>("list_rooms", {{"limit", 10}, {"cursor", "ops"}});
  CHECK(list.limit == std::uint32_t{10});
  CHECK(list.cursor == std::string("ops"));
  auto who = accepted<mcp::who_is_here_request>("who_is_here", {{"room", "r"}, {"limit", 500}, {"cursor", "42"}});
  CHECK(who.limit == std::uint32_t{500});
  CHECK(who.cursor == std::string("42"));
  CHECK_FALSE(accepted<mcp::who_is_here_request>("who_is_here", {{"room", "r"}}).limit);
  CHECK(refused("list_rooms", {{"limit", 0}}).field == "limit");
  CHECK(refused("list_rooms", {{"limit", 351}}).field == "limit");
  CHECK(refused("list_rooms", {{"limit", "5"}}).field == "limit");
  CHECK(refused("list_rooms", {{"cursor", "Not A Room"}}).field == "cursor");
  CHECK(refused("who_is_here", {{"room", "r"}, {"limit", 501}}).field == "limit");
  CHECK(refused("who_is_here", {{"room", "r"}, {"cursor", "x1"}}).field == "cursor");
  CHECK(refused("who_is_here", {{"room", "r"}, {"cursor", 5}}).field == "cursor");
}

TEST_CASE("mcp_tools: the body limit is a parameter, and the schema states the one the validator applies") {
  const json exactly = {{"room", "r"}, {"body", std::string(100, 'x')}};
  const json over = {{"room", "r"}, {"body", std::string(101, 'x')}};
  auto ok = mcp::parse_tool_arguments("send_message", exactly, 100);
  REQUIRE(ok);
  CHECK(std::get<mcp::send_message_request>(*ok).body.size() == 100);

  // The same InvalidArgumentError shape as at the default limit, with the limit it applied.
  auto refused_at_100 = mcp::parse_tool_arguments("send_message", over, 100);
  REQUIRE_FALSE(refused_at_100);
  const auto& e = std::get<mcp::argument_error>(refused_at_100.error());
  CHECK(e.field == "body");
  CHECK(e.rule == "maxBytes 100");
  CHECK(e.message == "body is 101 bytes of UTF-8; the limit is 100.");
  const auto standard = refused("send_message", {{"room", "r"}, {"body", std::string(8193, 'x')}});
  CHECK(standard.rule == "maxBytes 8192");
  CHECK(standard.message == "body is 8193 bytes of UTF-8; the limit is 8192.");
  CHECK(mcp::parse_tool_arguments("send_message", {{"room", "r"}, {"body", std::string(8193, 'x')}}, 10000));

  const json tools = mcp::tool_catalogue(100);
  json send;
  for (const auto& t : tools)
    if (t["name"] == "send_message") send = t;
  REQUIRE(send.is_object());
  const json& body = send["inputSchema"]["properties"]["body"];
  CHECK(body["maxLength"] == 100);
  CHECK(body["description"].get<std::string>().find("1 to 100 bytes") != std::string::npos);
  CHECK(send["description"].get<std::string>().find("at most 100 bytes") != std::string::npos);
  CHECK(tools.dump().find("8192") == std::string::npos);
  // Only send_message depends on the limit.
  CHECK(tools.size() == mcp::tool_catalogue().size());
  for (std::size_t i = 0; i < tools.size(); ++i)
    if (tools[i]["name"] != "send_message") CHECK(tools[i] == mcp::tool_catalogue()[i]);
}

TEST_CASE("mcp_tools: the catalogue lists every tool with schemas matching the validator") {
  const json tools = mcp::tool_catalogue();
  REQUIRE(tools.is_array());
  CHECK(tools.size() == 15);
  CHECK(tools.size() == mcp::tool_names.size());
  for (const auto& t : tools) {
    CAPTURE(t["name"]);
    CHECK(mcp::is_known_tool(t["name"].get<std::string>()));
    CHECK_FALSE(t["description"].get<std::string>().empty());
    CHECK(t["inputSchema"]["type"] == "object");
    CHECK(t["inputSchema"]["additionalProperties"] == false);
    CHECK(t["outputSchema"]["type"] == "object");
    CHECK(t["outputSchema"].contains("properties"));
  }

  const json join = tool_named("join_room");
  CHECK(join["inputSchema"]["required"] == json::array({"room"}));
  CHECK(join["inputSchema"]["properties"]["room"]["pattern"] == "^[a-z0-9][a-z0-9-]{0,31}$");
  CHECK(join["inputSchema"]["properties"]["nickname"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$");
  CHECK(join["outputSchema"]["required"] == json::array({"membersCount", "nickname", "room"}));

  const json send = tool_named("send_message");
  CHECK(send["inputSchema"]["required"] == json::array({"room", "body"}));
  CHECK(send["inputSchema"]["properties"]["body"]["minLength"] == 1);
  CHECK(send["inputSchema"]["properties"]["body"]["maxLength"] == 8192);
  CHECK(send["inputSchema"]["properties"]["body"]["description"].get<std::string>().find("8192 bytes") != std::string::npos);
  CHECK(send["description"].get<std::string>().find("small talk") != std::string::npos);
  CHECK(send["outputSchema"]["properties"].contains("messageId"));
  CHECK(send["outputSchema"]["properties"].contains("sentAt"));
  CHECK(send["outputSchema"]["properties"]["seq"]["type"] == "integer");

  const json read = tool_named("read_messages");
  CHECK_FALSE(read["inputSchema"].contains("required"));
  CHECK(read["inputSchema"]["properties"]["limit"]["minimum"] == 1);
  CHECK(read["inputSchema"]["properties"]["limit"]["maximum"] == 1000);
  CHECK(read["inputSchema"]["properties"]["wait_ms"]["maximum"] == 60000);
  CHECK(read["outputSchema"]["properties"]["dropped"]["type"] == "boolean");
  const json item = read["outputSchema"]["properties"]["messages"]["items"];
  for (const char* key : {"room", "fromNickname", "body", "seq", "messageId", "sentAt"}) CHECK(item["properties"].contains(key));

  const json list = tool_named("list_rooms");
  CHECK(list["inputSchema"]["properties"]["limit"]["maximum"] == parley::max_list_rooms_limit);
  CHECK(list["inputSchema"]["properties"]["cursor"]["type"] == "string");
  CHECK(list["outputSchema"]["properties"]["nextCursor"]["type"] == "string");
  CHECK(list["outputSchema"]["required"] == json::array({"available", "joined"}));  // nextCursor is optional
  CHECK(tool_named("who_is_here")["inputSchema"]["properties"]["limit"]["maximum"] == parley::max_who_is_here_limit);
  CHECK(list["outputSchema"]["properties"]["joined"]["items"]["properties"].contains("nickname"));
  CHECK_FALSE(list["outputSchema"]["properties"]["available"]["items"]["properties"].contains("nickname"));

  CHECK(tool_named("who_is_here")["outputSchema"]["properties"]["nicknames"]["items"]["type"] == "string");
  CHECK(tool_named("leave_room")["outputSchema"]["required"] == json::array({"room"}));
}

TEST_CASE("mcp_tools: the instructions cover what an agent must know") {
  const std::string text(mcp::server_instructions());
  for (const char* needle : {"public", "nickname", "send_message", "<channel source=\"parley\"", "from_nickname",
                             "read_messages", "small talk", "never instructions"})
    CHECK_MESSAGE(text.find(needle) != std::string::npos, needle);
}

// ---- rooms people control ------------------------------------------------------------

TEST_CASE("mcp_tools: join_room takes an invite, send_message a recipient, both checked as the wire checks them") {
  const std::string code(32, 'A');
  CHECK(accepted<mcp::join_room_request>("join_room", {{"room", "den"}, {"invite", code}}).invite == code);
  CHECK_FALSE(accepted<mcp::join_room_request>("join_room", {{"room", "den"}}).invite);
  for (const std::string& bad : {std::string(""), std::string(129, 'a'), std::string("a b"), std::string("a+b")}) {
    CAPTURE(bad);
    auto e = refused("join_room", {{"room", "den"}, {"invite", bad}});
    CHECK(e.field == "invite");
    CHECK(e.rule == "pattern ^[A-Za-z0-9_-]{1,128}$");
  }
  CHECK(refused("join_room", {{"room", "den"}, {"invite", 5}}).rule == "type string");

  CHECK(accepted<mcp::send_message_request>("send_message", {{"room", "r"}, {"body", "x"}, {"to", "bob"}}).to == "bob");
  CHECK_FALSE(accepted<mcp::send_message_request>("send_message", {{"room", "r"}, {"body", "x"}}).to);
  auto to = refused("send_message", {{"room", "r"}, {"body", "x"}, {"to", "-bob"}});
  CHECK(to.field == "to");
  CHECK(to.rule == nickname_rule);
  CHECK(refused("send_message", {{"room", "r"}, {"body", "x"}, {"to", nullptr}}).rule == "type string");
}

TEST_CASE("mcp_tools: create_room needs a visibility of public or private") {
  auto made = accepted<parley::create_room_args>("create_room", {{"room", "den"}, {"visibility", "private"}, {"nickname", "o"}});
  CHECK(made.room == "den");
  CHECK(made.visibility == parley::room_visibility::private_room);
  CHECK(made.nickname == "o");
  CHECK(accepted<parley::create_room_args>("create_room", {{"room", "den"}, {"visibility", "public"}}).visibility ==
        parley::room_visibility::public_room);
  CHECK(refused("create_room", {{"room", "den"}}).field == "visibility");
  CHECK(refused("create_room", {{"room", "den"}}).rule == "required");
  auto hidden = refused("create_room", {{"room", "den"}, {"visibility", "hidden"}});
  CHECK(hidden.field == "visibility");
  CHECK(hidden.rule == "one of public, private");
  CHECK(refused("create_room", {{"room", "Den"}, {"visibility", "public"}}).rule == room_rule);
  CHECK(refused("create_room", {{"room", "den"}, {"visibility", "public"}, {"nickname", "_x"}}).rule == nickname_rule);
  CHECK(refused("create_room", {{"room", "den"}, {"visibility", "public"}, {"invite", "x"}}).field == "invite");
}

TEST_CASE("mcp_tools: knock takes a nickname and a note of 1-500 characters") {
  auto k = accepted<parley::knock_args>("knock", {{"room", "den"}, {"nickname", "bob"}, {"note", "hi"}});
  CHECK(k.nickname == "bob");
  CHECK(k.note == "hi");
  std::string long_note;
  for (int i = 0; i < 500; ++i) long_note += "\xC3\xA9";  // 500 characters, 1000 bytes
  CHECK(accepted<parley::knock_args>("knock", {{"room", "den"}, {"note", long_note}}).note->size() == 1000);
  for (const std::string& bad : {std::string(""), std::string(501, 'x')}) {
    auto e = refused("knock", {{"room", "den"}, {"note", bad}});
    CHECK(e.field == "note");
    CHECK(e.rule == "1..500 characters");
  }
  CHECK(refused("knock", {{"room", "den"}, {"nickname", ""}}).field == "nickname");
  CHECK(refused("knock", {{"note", "x"}}).field == "room");
}

TEST_CASE("mcp_tools: invite's counts and role are bounded as the wire bounds them") {
  auto plain = accepted<parley::invite_args>("invite", {{"room", "den"}});
  CHECK_FALSE(plain.max_uses);
  CHECK_FALSE(plain.expires_in_s);
  CHECK(plain.role == parley::member_role::member);
  auto full = accepted<parley::invite_args>("invite", {{"room", "den"}, {"max_uses", 1000000}, {"expires_in_s", 2592000}, {"role", "watcher"}});
  CHECK(full.max_uses == std::uint32_t{1000000});
  CHECK(full.expires_in_s == std::uint32_t{2592000});
  CHECK(full.role == parley::member_role::watcher);
  CHECK(accepted<parley::invite_args>("invite", {{"room", "den"}, {"max_uses", 3.0}}).max_uses == std::uint32_t{3});
  for (const json& bad : {json(0), json(-1), json(1000001), json(1e300), json(18446744073709551615ULL)}) {
    CAPTURE(bad);
    auto e = refused("invite", {{"room", "den"}, {"max_uses", bad}});
    CHECK(e.field == "max_uses");
    CHECK(e.rule == "integer 1..1000000");
  }
  CHECK(refused("invite", {{"room", "den"}, {"expires_in_s", 2592001}}).rule == "integer 1..2592000");
  CHECK(refused("invite", {{"room", "den"}, {"expires_in_s", 1.5}}).rule == "type integer");
  CHECK(refused("invite", {{"room", "den"}, {"max_uses", "5"}}).rule == "type integer");
  auto owner = refused("invite", {{"room", "den"}, {"role", "owner"}});
  CHECK(owner.field == "role");
  CHECK(owner.rule == "one of member, watcher");
  CHECK(refused("invite", {{"room", "den"}, {"maxUses", 1}}).field == "maxUses");
}

TEST_CASE("mcp_tools: approve and deny take a knock_id") {
  const std::string id = "AbC_-0123456789abcdefgh";
  auto yes = accepted<parley::knock_answer_args>("approve", {{"room", "den"}, {"knock_id", id}});
  CHECK(yes.approve);
  CHECK(yes.knock_id == id);
  CHECK_FALSE(accepted<parley::knock_answer_args>("deny", {{"room", "den"}, {"knock_id", id}}).approve);
  for (const std::string& bad : {std::string(""), std::string(65, 'a'), std::string("a/b")}) {
    CAPTURE(bad);
    auto e = refused("deny", {{"room", "den"}, {"knock_id", bad}});
    CHECK(e.field == "knock_id");
  }
  CHECK(refused("approve", {{"room", "den"}}).rule == "required");
  CHECK(refused("approve", {{"room", "den"}, {"knockId", id}}).field == "knockId");
}

TEST_CASE("mcp_tools: kick, ban, unban and set_role name a member by nickname") {
  for (const char* tool : {"kick", "ban", "unban"}) {
    CAPTURE(tool);
    auto a = accepted<parley::member_action_args>(tool, {{"room", "den"}, {"nickname", "bob"}});
    CHECK(a.nickname == "bob");
    CHECK(refused(tool, {{"room", "den"}}).field == "nickname");
    CHECK(refused(tool, {{"room", "den"}}).rule == "required");
    CHECK(refused(tool, {{"room", "den"}, {"nickname", "b b"}}).rule == nickname_rule);
  }
  CHECK(accepted<parley::member_action_args>("ban", {{"room", "den"}, {"nickname", "bob"}}).action ==
        parley::member_action::ban);
  auto role = accepted<parley::set_role_args>("set_role", {{"room", "den"}, {"nickname", "bob"}, {"role", "owner"}});
  CHECK(role.role == parley::member_role::owner);
  CHECK(refused("set_role", {{"room", "den"}, {"nickname", "bob"}}).field == "role");
  CHECK(refused("set_role", {{"room", "den"}, {"nickname", "bob"}, {"role", "admin"}}).rule == "one of owner, member, watcher");
}

TEST_CASE("mcp_tools: the schemas of rooms people control state what the validator enforces") {
  const json create = tool_named("create_room");
  CHECK(create["inputSchema"]["required"] == json::array({"room", "visibility"}));
  CHECK(create["inputSchema"]["properties"]["visibility"]["enum"] == json::array({"public", "private"}));
  CHECK(create["outputSchema"]["required"] == json::array({"membersCount", "nickname", "role", "room", "visibility"}));

  const json knock = tool_named("knock");
  CHECK(knock["inputSchema"]["required"] == json::array({"room"}));
  CHECK(knock["inputSchema"]["properties"]["note"]["maxLength"] == 500);
  CHECK(knock["inputSchema"]["properties"]["nickname"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$");
  CHECK(knock["outputSchema"]["required"] == json::array({"knockId", "room", "status"}));

  const json invite = tool_named("invite");
  CHECK(invite["inputSchema"]["properties"]["max_uses"]["maximum"] == 1000000);
  CHECK(invite["inputSchema"]["properties"]["expires_in_s"]["maximum"] == 2592000);
  CHECK(invite["inputSchema"]["properties"]["expires_in_s"]["default"] == 86400);
  CHECK(invite["inputSchema"]["properties"]["role"]["enum"] == json::array({"member", "watcher"}));
  CHECK(invite["outputSchema"]["required"] == json::array({"code", "expiresAt", "role", "room"}));
  CHECK(invite["outputSchema"]["properties"].contains("maxUses"));

  for (const char* tool : {"approve", "deny"}) {
    const json t = tool_named(tool);
    CHECK(t["inputSchema"]["required"] == json::array({"room", "knock_id"}));
    CHECK(t["inputSchema"]["properties"]["knock_id"]["maxLength"] == 64);
    CHECK(t["outputSchema"]["required"] == json::array({"knockId", "nickname", "room"}));
  }
  for (const char* tool : {"kick", "ban", "unban"}) {
    const json t = tool_named(tool);
    CHECK(t["inputSchema"]["required"] == json::array({"room", "nickname"}));
    CHECK(t["outputSchema"]["required"] == json::array({"nickname", "room"}));
  }
  const json set_role = tool_named("set_role");
  CHECK(set_role["inputSchema"]["required"] == json::array({"room", "nickname", "role"}));
  CHECK(set_role["inputSchema"]["properties"]["role"]["enum"] == json::array({"owner", "member", "watcher"}));

  CHECK(tool_named("join_room")["inputSchema"]["properties"]["invite"]["maxLength"] == 128);
  const json send = tool_named("send_message");
  CHECK(send["inputSchema"]["properties"]["to"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$");
  CHECK(send["inputSchema"]["required"] == json::array({"room", "body"}));
  CHECK(send["outputSchema"]["properties"].contains("to"));
  const json item = tool_named("read_messages")["outputSchema"]["properties"]["messages"]["items"];
  CHECK(item["required"] == json::array({"body", "room"}));
  for (const char* key : {"direct", "to", "event", "knockId", "membersCount", "role"}) CHECK(item["properties"].contains(key));
  CHECK_FALSE(item["properties"]["event"].contains("enum"));  // open to kinds a later server adds
  CHECK(item["properties"]["event"]["description"].get<std::string>().find("knock, approved") != std::string::npos);
}

TEST_CASE("mcp_tools: the instructions say how to treat knocks and direct messages") {
  const std::string text(mcp::server_instructions());
  for (const char* needle : {"knock", "ask your user whether to approve", "direct=\"true\"", "never an instruction"})
    CHECK_MESSAGE(text.find(needle) != std::string::npos, needle);
}
