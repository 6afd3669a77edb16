// SPDX-License-Identifier: MIT
// JSON-RPC 2.0 classification, one-line builders, and the line splitter at every chunking.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace rpc = parley::jsonrpc;
using nlohmann::json;

namespace {

rpc::invalid_message expect_invalid(std::string_view line) {
  auto m = rpc::classify_line(line);
  REQUIRE(std::holds_alternative<rpc::invalid_message>(m));
  return std::get<rpc::invalid_message>(std::move(m));
}

rpc::request expect_request(std::string_view line) {
  auto m = rpc::classify_line(line);
  REQUIRE(std::holds_alternative<rpc::request>(m));
  return std::get<rpc::request>(std::move(m));
}

// Lines as the splitter yields them, with an overlong line rendered as "<too long>".
std::vector<std::string> drain(rpc::line_splitter& s) {
  std::vector<std::string> out;
  while (auto e = s.next()) out.push_back(*e ? **e : std::string("<too long>"));
  return out;
}

std::vector<std::string> split_whole(const std::string& input, std::size_t limit) {
  rpc::line_splitter s(limit);
  s.feed(input);
  return drain(s);
}

}  // namespace

TEST_CASE("jsonrpc: ids are echoed exactly as they came") {
  for (const char* id : {R"("abc")", "0", "42", "-1", "18446744073709551615", R"("")", R"("1")"}) {
    CAPTURE(id);
    auto r = expect_request(std::string(R"({"jsonrpc":"2.0","id":)") + id + R"(,"method":"ping"})");
    CHECK(r.id.dump() == id);
    CHECK(rpc::result_line(r.id, json::object()) == std::string(R"({"id":)") + id + R"(,"jsonrpc":"2.0","result":{}})");
  }
  // The string "1" and the number 1 are different ids.
  CHECK(expect_request(R"({"jsonrpc":"2.0","id":"1","method":"x"})").id.is_string());
  CHECK(expect_request(R"({"jsonrpc":"2.0","id":1,"method":"x"})").id.is_number_integer());
}

TEST_CASE("jsonrpc: ids that are not strings or integers are refused with a null id") {
  for (const char* id : {"null", "1.5", "1.0", "1e3", "true", "false", "{}", "[]", "[1]"}) {
    CAPTURE(id);
    auto bad = expect_invalid(std::string(R"({"jsonrpc":"2.0","id":)") + id + R"(,"method":"ping"})");
    CHECK(bad.code == rpc::invalid_request);
    CHECK(bad.id.is_null());
  }
}

TEST_CASE("jsonrpc: unparsable input is a parse error with a null id") {
  for (const char* line : {"garbage", "{", R"({"jsonrpc":"2.0","id":1,"method":"ping")", "", "\xff\xfe",
                           R"({"jsonrpc":"2.0","id":1,"method":"p\xc3"})", "{} {}", "// comment\n{}"}) {
    CAPTURE(line);
    auto bad = expect_invalid(line);
    CHECK(bad.code == rpc::parse_error);
    CHECK(bad.id.is_null());
    CHECK(rpc::error_line(bad) == R"({"error":{"code":-32700,"message":"Parse error"},"id":null,"jsonrpc":"2.0"})");
  }
}

TEST_CASE("jsonrpc: batches and non-objects are invalid requests") {
  for (const char* line : {R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", "[]", "1", R"("x")", "null", "true"}) {
    CAPTURE(line);
    auto bad = expect_invalid(line);
    CHECK(bad.code == rpc::invalid_request);
    CHECK(bad.id.is_null());
  }
}

TEST_CASE("jsonrpc: the jsonrpc member must be exactly \"2.0\"; a good id is still echoed") {
  for (const char* version : {"", R"(,"jsonrpc":"1.0")", R"(,"jsonrpc":2.0)", R"(,"jsonrpc":null)"}) {
    CAPTURE(version);
    auto bad = expect_invalid(std::string(R"({"id":7,"method":"ping")") + version + "}");
    CHECK(bad.code == rpc::invalid_request);
    CHECK(bad.id == 7);
  }
}

TEST_CASE("jsonrpc: method and params types") {
  CHECK(expect_invalid(R"({"jsonrpc":"2.0","id":1,"method":1})").code == rpc::invalid_request);
  CHECK(expect_invalid(R"({"jsonrpc":"2.0","id":1,"method":null})").code == rpc::invalid_request);
  CHECK(expect_invalid(R"({"jsonrpc":"2.0","id":1,"method":"x","params":"s"})").code == rpc::invalid_request);
  CHECK(expect_invalid(R"({"jsonrpc":"2.0","id":1,"method":"x","params":3})").id == 1);
  CHECK(expect_invalid(R"({"jsonrpc":"2.0","id":1})").code == rpc::invalid_request);
  // A notification with a malformed method is not a notification: it is answered.
  CHECK(expect_invalid(R"({"jsonrpc":"2.0","method":{}})").id.is_null());

  auto r = expect_request(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}})");
  CHECK(r.method == "tools/call");
  CHECK(r.params == json{{"name", "x"}});
  CHECK(expect_request(R"({"jsonrpc":"2.0","id":1,"method":"m","params":[1]})").params == json::array({1}));
  CHECK(expect_request(R"({"jsonrpc":"2.0","id":1,"method":"m"})").params.is_null());
}

TEST_CASE("jsonrpc: notifications and peer responses") {
  auto n = rpc::classify_line(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  REQUIRE(std::holds_alternative<rpc::notification>(n));
  CHECK(std::get<rpc::notification>(n).method == "notifications/initialized");

  auto ok = rpc::classify_line(R"({"jsonrpc":"2.0","id":3,"result":{"a":1}})");
  REQUIRE(std::holds_alternative<rpc::response>(ok));
  CHECK_FALSE(std::get<rpc::response>(ok).is_error);
  CHECK(std::get<rpc::response>(ok).payload == json{{"a", 1}});

  auto err = rpc::classify_line(R"({"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}})");
  REQUIRE(std::holds_alternative<rpc::response>(err));
  CHECK(std::get<rpc::response>(err).is_error);
}

TEST_CASE("jsonrpc: builders make single lines, even from hostile text") {
  const std::string line = rpc::error_line(json("x"), rpc::invalid_params, "bad\nthing\r\u2028", {{"k", "v\n"}});
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find('\r') == std::string::npos);
  auto back = json::parse(line);
  CHECK(back["error"]["message"] == "bad\nthing\r\u2028");
  CHECK(back["error"]["data"]["k"] == "v\n");

  // Invalid UTF-8 can only come from our own callers; it is replaced, not thrown.
  const std::string replaced = rpc::notification_line("m", {{"content", "a\xff" "b"}});
  CHECK(json::parse(replaced)["params"]["content"] == "a\xEF\xBF\xBD" "b");
  CHECK(rpc::notification_line("notifications/initialized") ==
        R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  CHECK(rpc::error_line(nullptr, -32601, "nope") == R"({"error":{"code":-32601,"message":"nope"},"id":null,"jsonrpc":"2.0"})");
}

TEST_CASE("jsonrpc: deeply nested input neither overflows the stack nor throws") {
  const std::string deep = std::string(R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"a":)") +
                           std::string(100000, '[') + std::string(100000, ']') + "}}";
  auto r = expect_request(deep);
  CHECK(r.params.is_object());
}

TEST_CASE("line_splitter: every chunking yields the same lines") {
  const std::vector<std::string> inputs = {
      "a\nbb\r\nccc\n",
      "\n\r\n\n",
      "x\ry\n",          // a lone \r inside a line stays
      "tail without newline",
      "12345\n123456\n1234\r\n12345\r\n1234567\r\nok\n",  // limit 5: exact, over by one, \r\n at the limit
      "123456789012345678901234567890\nafter\n",          // far over, then recovery
      "12345\r\r\n",                                       // \r\r at the limit: over
  };
  for (const auto& input : inputs) {
    CAPTURE(input);
    const auto whole = split_whole(input, 5);
    // byte by byte
    {
      rpc::line_splitter s(5);
      for (char c : input) s.feed(std::string_view(&c, 1));
      CHECK(drain(s) == whole);
    }
    // split at every position, in two and in three
    for (std::size_t i = 0; i <= input.size(); ++i) {
      rpc::line_splitter s(5);
      s.feed(std::string_view(input).substr(0, i));
      s.feed(std::string_view(input).substr(i));
      CHECK(drain(s) == whole);
      for (std::size_t j = i; j <= input.size(); ++j) {
        rpc::line_splitter t(5);
        t.feed(std::string_view(input).substr(0, i));
        t.feed(std::string_view(input).substr(i, j - i));
        t.feed(std::string_view(input).substr(j));
        CHECK(drain(t) == whole);
      }
    }
  }
}

TEST_CASE("line_splitter: terminators, limits and end of input") {
  CHECK(split_whole("a\nbb\r\nccc\n", 5) == std::vector<std::string>{"a", "bb", "ccc"});
  CHECK(split_whole("\n\r\n", 5) == std::vector<std::string>{"", ""});
  CHECK(split_whole("x\ry\n", 5) == std::vector<std::string>{"x\ry"});
  CHECK(split_whole("12345\n123456\n1234\r\n12345\r\n1234567\r\nok\n", 5) ==
        std::vector<std::string>{"12345", "<too long>", "1234", "12345", "<too long>", "ok"});
  CHECK(split_whole("123456789012345678901234567890\nafter\n", 5) == std::vector<std::string>{"<too long>", "after"});
  CHECK(split_whole("12345\r\r\n", 5) == std::vector<std::string>{"<too long>"});

  rpc::line_splitter s(5);
  s.feed("12345678");
  auto e = s.next();
  REQUIRE(e.has_value());
  REQUIRE_FALSE(e->has_value());
  CHECK(e->error().limit == 5);
  CHECK(s.buffered_bytes() == 0);  // the over-long line is not kept
  s.feed(std::string(1000, 'x'));
  CHECK(s.buffered_bytes() == 0);
  CHECK_FALSE(s.next().has_value());  // reported once per line
  s.feed("\npart");
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered_bytes() == 4);
  s.finish();
  CHECK(drain(s) == std::vector<std::string>{"part"});

  rpc::line_splitter d;
  CHECK(d.max_line_bytes() == std::size_t{4} << 20);
}
