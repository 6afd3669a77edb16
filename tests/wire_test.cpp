// SPDX-License-Identifier: MIT
// Wire frames: decoding validates completely, encoding matches the reference's shapes, and each round-trips.
#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace parley;
using namespace parley::testing;

namespace {
frame_error decode_error(std::string_view text) {
  auto r = decode_client_frame(text);
  REQUIRE_FALSE(r);
  return r.error();
}
client_frame decode_ok(std::string_view text) {
  auto r = decode_client_frame(text);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().err.message));
  return *r;
}
}  // namespace

TEST_CASE("hello: fresh and resume forms") {
  auto fresh = decode_hello(R"({"_tag":"hello","clientVersion":"0.1.0","authToken":"parley_tok_x","extra":1})");
  REQUIRE(fresh);
  CHECK(fresh->client_version == "0.1.0");
  CHECK(fresh->auth_token == "parley_tok_x");
  CHECK_FALSE(fresh->resume);

  const std::string token(43, 'T');
  auto resume = decode_hello(R"({"_tag":"hello","clientVersion":"0.1.0","resume":{"sessionId":"s-1","reconnectToken":")" +
                             token + R"(","lastAckedSeqByRoom":{"lobby":7,"dev":0}}})");
  REQUIRE(resume);
  REQUIRE(resume->resume);
  CHECK(resume->resume->session_id == "s-1");
  CHECK(resume->resume->last_acked_seq_by_room.at("lobby") == 7);
  CHECK(resume->resume->last_acked_seq_by_room.at("dev") == 0);
  auto again = decode_hello(encode_hello(*resume));
  REQUIRE(again);
  CHECK(again->resume->last_acked_seq_by_room == resume->resume->last_acked_seq_by_room);
  CHECK(again->resume->reconnect_token == token);
}

TEST_CASE("hello: every malformation is BadHandshakeFrameError with a reason") {
  const std::string token(43, 'T');
  for (std::string bad : {
           std::string("not json"),
           std::string("[]"),
           std::string(R"({"clientVersion":"1"})"),
           std::string(R"({"_tag":"tool.list_rooms","requestId":"1"})"),
           std::string(R"({"_tag":"hello"})"),
           std::string(R"({"_tag":"hello","clientVersion":5})"),
           std::string(R"({"_tag":"hello","clientVersion":""})"),
           std::string(R"({"_tag":"hello","clientVersion":"1","authToken":7})"),
           std::string(R"({"_tag":"hello","clientVersion":"1","resume":[]})"),
           std::string(R"({"_tag":"hello","clientVersion":"1","resume":{"sessionId":"s","reconnectToken":"short","lastAckedSeqByRoom":{}}})"),
           R"({"_tag":"hello","clientVersion":"1","resume":{"sessionId":"s","reconnectToken":")" + token + R"("}})",
           R"({"_tag":"hello","clientVersion":"1","resume":{"sessionId":"s","reconnectToken":")" + token +
               R"(","lastAckedSeqByRoom":{"Bad Room":1}}})",
           R"({"_tag":"hello","clientVersion":"1","resume":{"sessionId":"s","reconnectToken":")" + token +
               R"(","lastAckedSeqByRoom":{"lobby":-1}}})",
           R"({"_tag":"hello","clientVersion":"1","resume":{"sessionId":"s","reconnectToken":")" + token +
               R"(","lastAckedSeqByRoom":{"lobby":1.5}}})",
       }) {
    CAPTURE(bad);
    auto r = decode_hello(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == error_code::bad_handshake_frame);
    CHECK_FALSE(r.error().message.empty());
  }
}

TEST_CASE("tool frames decode into typed requests and round-trip through the client encoder") {
  const std::vector<tool_request> requests{
      {"r1", join_room_args{"lobby", std::string("alice")}},
      {"r2", join_room_args{"lobby", std::nullopt}},
      {"r3", leave_room_args{"lobby"}},
      {"r4", list_rooms_args{}},
      {"r5", send_message_args{"lobby", "hi \xF0\x9F\x98\x80", std::string("key-1")}},
      {"r6", send_message_args{"lobby", "\"quoted\"\n", std::nullopt}},
      {"", who_is_here_args{"lobby"}},
  };
  for (const auto& req : requests) {
    const std::string text = encode_tool_request(req);
    CAPTURE(text);
    auto decoded = decode_client_frame(text);
    REQUIRE(decoded);
    const auto& got = std::get<tool_request>(*decoded);
    CHECK(got.request_id == req.request_id);
    CHECK(got.args.index() == req.args.index());
    CHECK(encode_tool_request(got) == text);
  }
  auto ack = decode_client_frame(encode_ack({"lobby", 42}));
  REQUIRE(ack);
  CHECK(std::get<ack_frame>(*ack).seq == 42);
}

TEST_CASE("client frames use the reference's field names") {
  auto j = json::parse(encode_tool_request({"id-9", send_message_args{"lobby", "b", std::nullopt}}));
  CHECK(j == json::parse(R"({"_tag":"tool.send_message","requestId":"id-9","room":"lobby","body":"b"})"));
  CHECK(json::parse(encode_ack({"lobby", 3})) == json::parse(R"({"_tag":"ack","room":"lobby","seq":3})"));
}

TEST_CASE("length limits count characters, not bytes: requestId 128, clientVersion 64") {
  const std::string e_acute = "\xC3\xA9";  // é: two bytes, one character
  auto repeat = [](const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  auto request = [](const std::string& id) {
    return decode_client_frame(R"({"_tag":"tool.list_rooms","requestId":")" + id + R"("})");
  };
  CHECK(request(repeat(e_acute, 128)).has_value());  // 256 bytes
  CHECK_FALSE(request(repeat(e_acute, 129)).has_value());
  CHECK_FALSE(request(std::string(129, 'r')).has_value());
  auto hello = [](const std::string& version) {
    return decode_hello(R"({"_tag":"hello","clientVersion":")" + version + R"("})");
  };
  CHECK(hello(repeat(e_acute, 64)).has_value());
  CHECK_FALSE(hello(repeat(e_acute, 65)).has_value());
}

TEST_CASE("bad arguments under a readable requestId are InvalidArgumentError under that id") {
  struct probe {
    std::string text;
    std::string field;
  };
  const std::string big_body(8193, 'x');
  for (const auto& p : std::vector<probe>{
           {R"({"_tag":"tool.join_room","requestId":"q"})", "room"},
           {R"({"_tag":"tool.join_room","requestId":"q","room":"Lobby"})", "room"},
           {R"({"_tag":"tool.join_room","requestId":"q","room":")" + std::string(33, 'a') + R"("})", "room"},
           {R"({"_tag":"tool.join_room","requestId":"q","room":"lobby","nickname":"_x"})", "nickname"},
           {R"({"_tag":"tool.join_room","requestId":"q","room":"lobby","nickname":null})", "nickname"},
           {R"({"_tag":"tool.leave_room","requestId":"q","room":7})", "room"},
           {R"({"_tag":"tool.send_message","requestId":"q","room":"lobby"})", "body"},
           {R"({"_tag":"tool.send_message","requestId":"q","room":"lobby","body":""})", "body"},
           {R"({"_tag":"tool.send_message","requestId":"q","room":"lobby","body":")" + big_body + R"("})", "body"},
           {R"({"_tag":"tool.send_message","requestId":"q","room":"lobby","body":"x","clientMsgId":"a b"})", "clientMsgId"},
           {R"({"_tag":"tool.who_is_here","requestId":"q","room":""})", "room"},
       }) {
    CAPTURE(p.text);
    auto e = decode_error(p.text);
    CHECK(e.request_id == "q");
    CHECK(e.err.code == error_code::invalid_argument);
    CHECK(e.err.details["field"] == p.field);
    CHECK(e.err.details.contains("rule"));
  }
}

TEST_CASE("the body limit is a parameter: 100 bytes pass a 100-byte limit, 101 are refused as 8193 are by default") {
  auto send = [](std::size_t bytes) {
    return R"({"_tag":"tool.send_message","requestId":"q","room":"lobby","body":")" + std::string(bytes, 'x') + R"("})";
  };
  auto body_of = [](const tl::expected<client_frame, frame_error>& r) {
    REQUIRE(r);
    return std::get<send_message_args>(std::get<tool_request>(*r).args).body;
  };
  auto refusal = [](const tl::expected<client_frame, frame_error>& r) {
    REQUIRE_FALSE(r);
    return r.error();
  };

  CHECK(body_of(decode_client_frame(send(100), 100)).size() == 100);
  const frame_error small = refusal(decode_client_frame(send(101), 100));
  CHECK(small.request_id == "q");
  CHECK(small.err.code == error_code::invalid_argument);
  CHECK(small.err.details == json{{"field", "body"}, {"rule", "maxBytes 100"}});
  CHECK(small.err.message == "body is 101 bytes of UTF-8; the limit is 100");

  // The default is unchanged, and the refusal has the same shape.
  CHECK(body_of(decode_client_frame(send(8192))).size() == 8192);
  const frame_error standard = refusal(decode_client_frame(send(8193)));
  CHECK(standard.request_id == "q");
  CHECK(standard.err.code == error_code::invalid_argument);
  CHECK(standard.err.details == json{{"field", "body"}, {"rule", "maxBytes 8192"}});
  CHECK(standard.err.message == "body is 8193 bytes of UTF-8; the limit is 8192");

  // A limit above the default admits what the default refuses.
  CHECK(body_of(decode_client_frame(send(8193), 10000)).size() == 8193);
}

TEST_CASE("frames with no usable requestId are BadFrameError") {
  for (std::string bad : {
           std::string("{"),
           std::string("\"string\""),
           std::string("[1,2]"),
           std::string(R"({"room":"lobby"})"),
           std::string(R"({"_tag":7})"),
           std::string(R"({"_tag":"nonsense"})"),
           std::string(R"({"_tag":"tool.explode","requestId":"q"})"),
           std::string(R"({"_tag":"tool.list_rooms"})"),
           std::string(R"({"_tag":"tool.list_rooms","requestId":5})"),
           R"({"_tag":"tool.list_rooms","requestId":")" + std::string(129, 'r') + R"("})",
           std::string(R"({"_tag":"ack","room":"lobby"})"),
           std::string(R"({"_tag":"ack","room":"lobby","seq":-1})"),
           std::string(R"({"_tag":"ack","room":"lobby","seq":"1"})"),
           std::string(R"({"_tag":"ack","room":"lobby","seq":9007199254740992})"),
           std::string(R"({"_tag":"ack","room":"NO","seq":1})"),
           std::string(R"({"_tag":"hello","clientVersion":"1"})"),
       }) {
    CAPTURE(bad);
    auto e = decode_error(bad);
    CHECK(e.err.code == error_code::bad_frame);
    CHECK_FALSE(e.request_id);
  }
  CHECK(decode_client_frame(R"({"_tag":"ack","room":"lobby","seq":9007199254740991})"));
}

TEST_CASE("deeply nested input is refused without exhausting the stack") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(decode_error(deep).err.code == error_code::bad_frame);
  CHECK_FALSE(decode_hello(deep));
  CHECK_FALSE(decode_server_frame(deep));
}

TEST_CASE("server frames: encoded as the reference shapes them, decoded by the client role") {
  auto ok = json::parse(encode_hello_ok({"sid", "tok", "0.1.0"}));
  CHECK(ok == json::parse(R"({"_tag":"hello.ok","sessionId":"sid","reconnectToken":"tok","serverVersion":"0.1.0"})"));
  auto err = json::parse(encode_hello_err(error{error_code::unknown_session, "gone", nullptr}));
  CHECK(err == json::parse(R"({"_tag":"hello.err","code":"UnknownSessionError","message":"gone"})"));
  auto tool_err = json::parse(
      encode_tool_err("r", error{error_code::rate_limited, "slow down", json{{"retryAfterMs", 100}}}));
  CHECK(tool_err == json::parse(R"({"_tag":"tool.err","requestId":"r","code":"RateLimitedError",
                                    "message":"slow down","details":{"retryAfterMs":100}})"));
  CHECK_FALSE(json::parse(encode_tool_err("r", error{error_code::not_in_room, "no", nullptr})).contains("details"));
  auto sys = json::parse(encode_system_error(error{error_code::bad_frame, "what", nullptr}));
  CHECK(sys == json::parse(R"({"_tag":"system.error","code":"BadFrameError","message":"what"})"));
  auto detailed = json::parse(encode_system_error(error{error_code::invalid_argument, "m", {{"field", "seq"}}}));
  CHECK(detailed["details"] == json{{"field", "seq"}});

  room_message_frame m{"lobby", 9, "0190-id", "alice", "hi", "2026-11-22T00:00:00.000Z"};
  auto decoded = decode_server_frame(encode_room_message(m));
  REQUIRE(decoded);
  const auto& got = std::get<room_message_frame>(*decoded);
  CHECK(got.room == "lobby");
  CHECK(got.seq == 9);
  CHECK(got.from_nickname == "alice");
  CHECK(got.sent_at == m.sent_at);

  CHECK(std::holds_alternative<hello_ok_frame>(*decode_server_frame(encode_hello_ok({"a", "b", "c"}))));
  auto te = decode_server_frame(encode_tool_err("r", error{error_code::rate_limited, "x", json{{"retryAfterMs", 5}}}));
  CHECK(std::get<tool_err_frame>(*te).details["retryAfterMs"] == 5);
  CHECK(std::get<tool_ok_frame>(*decode_server_frame(encode_tool_ok("r", json{{"room", "x"}}))).result["room"] == "x");
  CHECK(std::holds_alternative<system_error_frame>(*decode_server_frame(sys.dump())));
  CHECK(std::holds_alternative<hello_err_frame>(*decode_server_frame(err.dump())));
  CHECK_FALSE(decode_server_frame(R"({"_tag":"room.message","room":"x"})"));
  CHECK_FALSE(decode_server_frame(R"({"_tag":"future.frame"})"));
}

TEST_CASE("every error code has its wire name and hello failures their close codes") {
  CHECK(to_string(error_code::nickname_taken) == "NicknameTakenError");
  CHECK(to_string(error_code::invalid_argument) == "InvalidArgumentError");
  CHECK(error_code_from_string("ReplayBufferOverflowError") == error_code::replay_buffer_overflow);
  CHECK_FALSE(error_code_from_string("NoSuchError"));
  CHECK(close_code_for(error_code::auth_required) == 4000);
  CHECK(close_code_for(error_code::token_revoked) == 4000);
  CHECK(close_code_for(error_code::unknown_session) == 4001);
  CHECK(close_code_for(error_code::bad_reconnect_token) == 4002);
  CHECK(close_code_for(error_code::replay_buffer_overflow) == 4003);
  CHECK(close_code_for(error_code::version_mismatch) == 4004);
  CHECK(close_code_for(error_code::server_shutting_down) == 1001);
  CHECK(close_code_for(error_code::bad_handshake_frame) == 1002);
}

// ---- session protocol: frames served against a hub -------------------------

namespace {
struct served {
  test_store store;
  test_hub h = std::move(*test_hub::open(store, testing::seeded_random(5)));
};
}  // namespace

TEST_CASE("serve_hello: fresh, auth failure, version mismatch, resume") {
  served s;
  auto fresh = serve_hello(s.h, hello_frame{"0.1.0", std::nullopt, std::nullopt}, epoch);
  REQUIRE(fresh.session);
  CHECK_FALSE(fresh.close_code);
  auto ok = json::parse(fresh.frame);
  CHECK(ok["_tag"] == "hello.ok");
  CHECK(ok["sessionId"] == fresh.session->session_id);
  CHECK(ok["serverVersion"] == std::string(version_string));

  auto denied = serve_hello(s.h, hello_frame{"0.1.0", std::nullopt, std::nullopt}, epoch,
                            error{error_code::auth_required, "a token is required", nullptr});
  CHECK_FALSE(denied.session);
  CHECK(denied.close_code == 4000);
  CHECK(json::parse(denied.frame)["code"] == "AuthRequiredError");

  auto old = serve_hello(s.h, hello_frame{"7.0.0", std::nullopt, std::nullopt}, epoch);
  CHECK(old.close_code == 4004);
  CHECK(json::parse(old.frame)["code"] == "VersionMismatchError");
  CHECK(serve_hello(s.h, hello_frame{"v0.9.1", std::nullopt, std::nullopt}, epoch).session);
  CHECK(serve_hello(s.h, hello_frame{"parley-tools", std::nullopt, std::nullopt}, epoch).session);

  s.h.detach(fresh.session->handle, epoch);
  auto resumed = serve_hello(
      s.h, hello_frame{"0.1.0", std::nullopt, resume_block{fresh.session->session_id, fresh.session->reconnect_token, {}}},
      epoch, error{error_code::auth_required, "resume needs no bearer token", nullptr});
  REQUIRE(resumed.session);
  CHECK(resumed.session->handle == fresh.session->handle);
  auto unknown = serve_hello(s.h, hello_frame{"0.1.0", std::nullopt, resume_block{"nope", std::string(40, 'x'), {}}}, epoch);
  CHECK(unknown.close_code == 4001);
}

TEST_CASE("serve_client_text answers tool frames under their requestId and acks with nothing") {
  served s;
  auto a = s.h.open_session(epoch).handle;
  auto b = s.h.open_session(epoch).handle;
  auto joined = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.join_room","requestId":"1","room":"lobby","nickname":"alice"})", epoch));
  CHECK(joined == json::parse(R"({"_tag":"tool.ok","requestId":"1","result":{"room":"lobby","nickname":"alice","membersCount":1,"role":"owner","visibility":"public"}})"));
  auto taken = json::parse(*serve_client_text(s.h, b, R"({"_tag":"tool.join_room","requestId":"2","room":"lobby","nickname":"ALICE"})", epoch));
  CHECK(taken["_tag"] == "tool.err");
  CHECK(taken["code"] == "NicknameTakenError");
  CHECK(taken["requestId"] == "2");
  REQUIRE(serve_client_text(s.h, b, R"({"_tag":"tool.join_room","requestId":"3","room":"lobby"})", epoch));
  auto sent = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.send_message","requestId":"4","room":"lobby","body":"hey"})", epoch));
  CHECK(sent["result"]["seq"] == 1);
  CHECK(sent["result"].contains("messageId"));
  CHECK(sent["result"].contains("sentAt"));
  CHECK(s.h.drain(b).size() == 1);
  CHECK_FALSE(serve_client_text(s.h, b, R"({"_tag":"ack","room":"lobby","seq":1})", epoch));
  CHECK(s.h.session(b)->memberships.at("lobby").ring.size() == 0);
  auto bad = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.send_message","requestId":"5","room":"lobby","body":""})", epoch));
  CHECK(bad["code"] == "InvalidArgumentError");
  CHECK(bad["requestId"] == "5");
  auto garbage = json::parse(*serve_client_text(s.h, a, "garbage", epoch));
  CHECK(garbage["_tag"] == "system.error");
  CHECK(garbage["code"] == "BadFrameError");
  auto listed = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.list_rooms","requestId":"6"})", epoch));
  CHECK(listed["result"]["joined"][0]["name"] == "lobby");
  auto who = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.who_is_here","requestId":"7","room":"lobby"})", epoch));
  CHECK(who["result"]["nicknames"].size() == 2);
  auto left = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.leave_room","requestId":"8","room":"lobby"})", epoch));
  CHECK(left["result"] == json::parse(R"({"room":"lobby"})"));
}

// ---- paging (parley's addition) ---------------------------------------------

TEST_CASE("list_rooms and who_is_here take an optional limit and cursor, and encode them back") {
  auto list = decode_ok(R"({"_tag":"tool.list_rooms","requestId":"p","limit":350,"cursor":"lobby"})");
  const auto& la = std::get<list_rooms_args>(std::get<tool_request>(list).args);
  CHECK(la.limit == 350u);
  CHECK(la.cursor == "lobby");
  auto bare = decode_ok(R"({"_tag":"tool.list_rooms","requestId":"p"})");
  CHECK_FALSE(std::get<list_rooms_args>(std::get<tool_request>(bare).args).limit);
  auto who = decode_ok(R"({"_tag":"tool.who_is_here","requestId":"w","room":"ops","limit":1,"cursor":"17"})");
  const auto& wa = std::get<who_is_here_args>(std::get<tool_request>(who).args);
  CHECK(wa.limit == 1u);
  CHECK(wa.cursor == "17");
  CHECK(json::parse(encode_tool_request({"p", la})) ==
        json::parse(R"({"_tag":"tool.list_rooms","requestId":"p","limit":350,"cursor":"lobby"})"));
  CHECK(json::parse(encode_tool_request({"w", wa})) ==
        json::parse(R"({"_tag":"tool.who_is_here","requestId":"w","room":"ops","limit":1,"cursor":"17"})"));
  CHECK(json::parse(encode_tool_request({"p", list_rooms_args{}})) == json::parse(R"({"_tag":"tool.list_rooms","requestId":"p"})"));
}

TEST_CASE("a bad limit or cursor is InvalidArgumentError naming the field and rule") {
  struct probe {
    std::string text;
    std::string field;
    std::string rule;
  };
  const std::string lr = R"({"_tag":"tool.list_rooms","requestId":"q",)";
  const std::string wh = R"({"_tag":"tool.who_is_here","requestId":"q","room":"ops",)";
  for (const auto& p : std::vector<probe>{
           {lr + R"("limit":0})", "limit", "integer 1..350"},
           {lr + R"("limit":351})", "limit", "integer 1..350"},
           {lr + R"("limit":-1})", "limit", "integer 1..350"},
           {lr + R"("limit":2.0})", "limit", "integer 1..350"},
           {lr + R"("limit":"5"})", "limit", "integer 1..350"},
           {lr + R"("limit":null})", "limit", "integer 1..350"},
           {lr + R"("limit":18446744073709551616})", "limit", "integer 1..350"},
           {lr + R"("cursor":5})", "cursor", "type string"},
           {lr + R"("cursor":"Lobby"})", "cursor", "a nextCursor from a previous answer"},
           {lr + R"("cursor":""})", "cursor", "a nextCursor from a previous answer"},
           {wh + R"("limit":501})", "limit", "integer 1..500"},
           {wh + R"("limit":0})", "limit", "integer 1..500"},
           {wh + R"("cursor":"abc"})", "cursor", "a nextCursor from a previous answer"},
           {wh + R"("cursor":"12345678901234567890"})", "cursor", "a nextCursor from a previous answer"},
           {wh + R"("cursor":[]})", "cursor", "type string"},
       }) {
    CAPTURE(p.text);
    auto e = decode_error(p.text);
    CHECK(e.request_id == "q");
    CHECK(e.err.code == error_code::invalid_argument);
    CHECK(e.err.details == json{{"field", p.field}, {"rule", p.rule}});
  }
}

namespace {

// The largest tool.ok a page can make: every name and nickname 32 characters, every
// count as wide as a size_t prints, a requestId of the longest allowed.
std::size_t worst_list_rooms_answer(std::size_t rooms) {
  list_rooms_result r;
  for (std::size_t i = 0; i < rooms; ++i)
    r.joined.push_back(joined_room{std::string(32, 'r'), std::string(32, 'N'), std::numeric_limits<std::size_t>::max(),
                                   member_role::watcher, room_visibility::private_room});
  r.next_cursor = std::string(32, 'r');
  return encode_server_text_frame(encode_tool_ok(std::string(max_request_id_length, 'q'), json(r))).size();
}

std::size_t worst_who_is_here_answer(std::size_t members) {
  who_is_here_result r{std::string(32, 'r'), std::vector<std::string>(members, std::string(32, 'N')),
                       std::string(19, '9'), std::vector<member_entry>(members, {std::string(32, 'N'), member_kind::person, member_role::watcher})};
  return encode_server_text_frame(encode_tool_ok(std::string(max_request_id_length, 'q'), json(r))).size();
}

}  // namespace

TEST_CASE("the worst-case page, with or without a limit, fits in one WebSocket message of the default limit") {
  const std::size_t limit = websocket_limits{}.max_message_bytes;
  CHECK(worst_list_rooms_answer(default_list_rooms_page) < limit / 2);  // the default page: well under
  CHECK(worst_list_rooms_answer(max_list_rooms_limit) < limit);
  CHECK(worst_who_is_here_answer(default_who_is_here_page) < limit / 3 * 2);
  CHECK(worst_who_is_here_answer(max_who_is_here_limit) < limit);
  // The check can fail: twice the largest page would not fit.
  CHECK(worst_list_rooms_answer(2 * max_list_rooms_limit) > limit);
  CHECK(worst_who_is_here_answer(2 * max_who_is_here_limit) > limit);
}

TEST_CASE("serve_client_text pages list_rooms, and a bad limit answers under the requestId and changes nothing") {
  served s;
  auto a = s.h.open_session(epoch).handle;
  for (const char* r : {"a", "b", "c"})
    REQUIRE(serve_client_text(s.h, a, std::string(R"({"_tag":"tool.join_room","requestId":"j","room":")") + r + "\"}", epoch));
  auto page = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.list_rooms","requestId":"1","limit":2})", epoch));
  CHECK(page["result"]["nextCursor"] == "b");
  CHECK(page["result"]["joined"].size() == 2);
  auto last = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.list_rooms","requestId":"2","limit":2,"cursor":"b"})", epoch));
  CHECK(last["result"] == json::parse(R"({"joined":[{"name":"c","nickname":")" +
                                      s.h.session(a)->memberships.at("c").nickname +
                                      R"(","membersCount":1,"role":"owner"}],"available":[]})"));
  auto bad = json::parse(*serve_client_text(s.h, a, R"({"_tag":"tool.list_rooms","requestId":"3","limit":0})", epoch));
  CHECK(bad["code"] == "InvalidArgumentError");
  CHECK(bad["requestId"] == "3");
  CHECK(s.h.rooms().size() == 3);
}

TEST_CASE("RoomLimitError is a tool error with its maxRooms") {
  CHECK(error_code_from_string("RoomLimitError") == error_code::room_limit);
  auto j = json::parse(encode_tool_err("r", error{error_code::room_limit, "full", json{{"maxRooms", 3}}}));
  CHECK(j["code"] == "RoomLimitError");
  CHECK(j["details"]["maxRooms"] == 3);
}

TEST_CASE("member kinds on the wire: clientKind in hello, fromKind in room.message, absent means agent") {
  auto person = decode_hello(R"({"_tag":"hello","clientVersion":"0.1.0","clientKind":"person"})");
  REQUIRE(person);
  CHECK(person->client_kind == member_kind::person);
  CHECK(decode_hello(R"({"_tag":"hello","clientVersion":"0.1.0"})")->client_kind == member_kind::agent);
  CHECK(decode_hello(R"({"_tag":"hello","clientVersion":"0.1.0","clientKind":"agent"})")->client_kind == member_kind::agent);
  CHECK_FALSE(decode_hello(R"({"_tag":"hello","clientVersion":"0.1.0","clientKind":"Person"})"));
  CHECK_FALSE(decode_hello(R"({"_tag":"hello","clientVersion":"0.1.0","clientKind":1})"));
  // An agent's hello is unchanged for a reference server; a person's says so.
  CHECK(json::parse(encode_hello(hello_frame{"0.1.0", std::nullopt, std::nullopt})).count("clientKind") == 0);
  hello_frame h{"0.1.0", std::nullopt, std::nullopt};
  h.client_kind = member_kind::person;
  CHECK(decode_hello(encode_hello(h))->client_kind == member_kind::person);

  room_message_frame m{"lobby", 3, "id", "ann", "hi", "2026-11-29T00:00:00.000Z", member_kind::person};
  auto back = decode_server_frame(encode_room_message(m));
  REQUIRE(back);
  CHECK(std::get<room_message_frame>(*back).from_kind == member_kind::person);
  auto reference = decode_server_frame(
      R"({"_tag":"room.message","room":"lobby","seq":1,"messageId":"m","fromNickname":"x","body":"b","sentAt":"s"})");
  REQUIRE(reference);
  CHECK(std::get<room_message_frame>(*reference).from_kind == member_kind::agent);
}

namespace {
// What the full decoder (nlohmann alone) makes of an ack-like text, as the fast path would say it.
std::optional<ack_frame> full_ack(std::string_view text) {
  auto r = detail::decode_client_frame_parsed(text, default_max_body_bytes);
  if (!r) return std::nullopt;
  if (const auto* a = std::get_if<ack_frame>(&*r)) return *a;
  return std::nullopt;
}
}  // namespace

TEST_CASE("the canonical-ack fast path reads what clients write, and the same as the full decoder") {
  const auto a = decode_canonical_ack(R"({"_tag":"ack","room":"lobby","seq":42})");
  REQUIRE(a);
  CHECK(a->room == "lobby");
  CHECK(a->seq == 42);
  CHECK_FALSE(a->direct);
  const auto d = decode_canonical_ack(R"({"_tag":"ack","direct":true,"room":"r-2","seq":0})");
  REQUIRE(d);
  CHECK(d->direct);
  CHECK(d->seq == 0);
  // What our own clients send is read by the fast path.
  CHECK(decode_canonical_ack(encode_ack(ack_frame{"lobby", 7, false})));
  CHECK(decode_canonical_ack(encode_ack(ack_frame{"lobby", 7, true})));
  CHECK(decode_canonical_ack(R"({"_tag":"ack","room":"lobby","seq":9007199254740991})")->seq == 9007199254740991u);
  // Left to the full decoder, which accepts or refuses them itself.
  for (std::string_view other : {R"({"_tag":"ack","room":"lobby","seq":9007199254740992})",
                                 R"({"_tag":"ack","room":"lobby","seq":01})", R"({"_tag":"ack","room":"lobby","seq":-1})",
                                 R"({"_tag":"ack","room":"lobby","seq":1.0})", R"({"_tag":"ack","room":"Lobby","seq":1})",
                                 R"({ "_tag":"ack","room":"lobby","seq":1})", R"({"_tag":"ack","room":"lobby","seq":1} )",
                                 R"({"_tag":"ack","room":"lo\u0062by","seq":1})", R"({"_tag":"ack","seq":1})",
                                 R"({"_tag":"ack","room":"lobby","seq":1,"seq":2})", R"({"_tag":"ack","room":"lobby","seq":1,"x":0})",
                                 R"({"_tag":"ack","room":"lobby","seq":1,"direct":1})"})
    CHECK_MESSAGE(!decode_canonical_ack(other), other);
  CHECK(full_ack(R"({ "_tag":"ack","room":"lobby","seq":1})"));  // valid, just not compact
  CHECK_FALSE(full_ack(R"({"_tag":"ack","room":"lobby","seq":01})"));
}

// A property test: many texts near the canonical form — valid, mutated byte by byte,
// with boundary numbers — and wherever the fast path answers, the full decoder answers
// the same ack. Every one of them also decodes through decode_client_frame to what the
// full decoder says, accepted or refused.
TEST_CASE("property: the canonical-ack fast path agrees with the full decoder on ack-like texts") {
  std::uint64_t state = 0x9E3779B97F4A7C15u;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const std::vector<std::string> rooms = {"lobby", "a", "r-2", "0", std::string(32, 'z'), std::string(33, 'z'),
                                          "-x", "Lobby", "", "lo\\u0062by", "l\"", "ünï"};
  const std::vector<std::string> seqs = {"0", "1", "42", "9007199254740991", "9007199254740992", "18446744073709551615",
                                         "18446744073709551616", "00", "01", "-1", "-0", "1.0", "1e3", "1E3", "",
                                         "99999999999999999999", "\"5\"", "null", "true", "0009007199254740991"};
  const std::vector<std::string> directs = {"", "true", "false", "1", "null", "\"true\"", "tru"};
  const std::string alphabet = "{}[]\",:_-.0123456789abcdefghijklmnopqrstuvwxyz \\\t\n\xC3\xA9";
  std::size_t fast_answers = 0;
  for (int i = 0; i < 20000; ++i) {
    // Half the time each part is drawn from its valid values (listed first), so that
    // whole valid acks, and valid acks with one flaw, are common.
    auto pick = [&](const std::vector<std::string>& from, std::size_t valid) {
      return from[next() % 2 ? next() % valid : next() % from.size()];
    };
    std::vector<std::string> fields = {R"("_tag":"ack")", "\"room\":\"" + pick(rooms, 5) + "\"",
                                       "\"seq\":" + pick(seqs, 4)};
    if (const std::string& d = pick(directs, 3); !d.empty()) fields.push_back("\"direct\":" + d);
    if (next() % 8 == 0) fields.push_back(fields[next() % fields.size()]);  // a duplicate key
    if (next() % 8 == 0) fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(next() % fields.size()));
    for (std::size_t k = fields.size(); k > 1; --k) std::swap(fields[k - 1], fields[next() % k]);  // any order
    std::string text = "{";
    for (std::size_t k = 0; k < fields.size(); ++k) text += (k ? "," : "") + fields[k];
    text += "}";
    for (std::uint64_t m = next() % 4; m > 0 && m < 3; --m) {  // mutate: replace, insert or delete a byte
      const std::size_t at = next() % (text.size() + 1);
      const char c = alphabet[next() % alphabet.size()];
      switch (next() % 3) {
        case 0: if (at < text.size()) text[at] = c; break;
        case 1: text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        default: if (at < text.size()) text.erase(at, 1); break;
      }
    }
    const auto fast = decode_canonical_ack(text);
    const auto full = full_ack(text);
    if (fast) {
      ++fast_answers;
      REQUIRE_MESSAGE(full, text);
      CHECK_MESSAGE((full->room == fast->room && full->seq == fast->seq && full->direct == fast->direct), text);
    }
    const auto combined = decode_client_frame(text);
    const auto reference = detail::decode_client_frame_parsed(text, default_max_body_bytes);
    REQUIRE_MESSAGE(combined.has_value() == reference.has_value(), text);
    if (!combined) {
      CHECK_MESSAGE(combined.error().err.message == reference.error().err.message, text);
    } else if (const auto* got = std::get_if<ack_frame>(&*combined)) {
      const auto* want = std::get_if<ack_frame>(&*reference);
      REQUIRE_MESSAGE(want, text);
      CHECK_MESSAGE((got->room == want->room && got->seq == want->seq && got->direct == want->direct), text);
    }
  }
  CHECK(fast_answers > 1000);  // the generator does reach the fast path, often
}
