// SPDX-License-Identifier: MIT
// parse_server_url: what --server and PARLEY_SERVER accept, and the sentence for each thing they refuse.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <string>

using parley::parse_server_url;

namespace {

// The part the error names, or "" when the URL parsed.
std::string refused_part(std::string_view url) {
  auto parsed = parse_server_url(url);
  if (parsed) return "";
  CHECK(parsed.error().code == parley::error_code::invalid_argument);
  CHECK_FALSE(parsed.error().message.empty());
  CHECK(parsed.error().details["field"] == "url");
  return parsed.error().details["part"].get<std::string>();
}

}  // namespace

TEST_CASE("server_url: ws and wss with their default ports, the Host header as written") {
  auto plain = parse_server_url("ws://127.0.0.1");
  REQUIRE(plain);
  CHECK_FALSE(plain->tls);
  CHECK(plain->host == "127.0.0.1");
  CHECK(plain->port == 80);
  CHECK(plain->path == "/");
  CHECK(plain->host_header == "127.0.0.1");

  auto secure = parse_server_url("wss://chat.example.com/");
  REQUIRE(secure);
  CHECK(secure->tls);
  CHECK(secure->host == "chat.example.com");
  CHECK(secure->port == 443);
  CHECK(secure->path == "/");
  CHECK(secure->host_header == "chat.example.com");

  auto local = parse_server_url("ws://127.0.0.1:7539");
  REQUIRE(local);
  CHECK(local->port == 7539);
  CHECK(local->host_header == "127.0.0.1:7539");

  auto upper = parse_server_url("WSS://Chat.Example.com:8443");  // schemes are case-insensitive
  REQUIRE(upper);
  CHECK(upper->tls);
  CHECK(upper->host == "Chat.Example.com");
  CHECK(upper->port == 8443);
}

TEST_CASE("server_url: IPv6 in brackets, with and without a port") {
  auto loopback = parse_server_url("ws://[::1]:7539");
  REQUIRE(loopback);
  CHECK(loopback->host == "::1");
  CHECK(loopback->port == 7539);
  CHECK(loopback->host_header == "[::1]:7539");
  CHECK(loopback->path == "/");

  auto full = parse_server_url("wss://[2001:db8::7]/parley");
  REQUIRE(full);
  CHECK(full->host == "2001:db8::7");
  CHECK(full->port == 443);
  CHECK(full->path == "/parley");
  CHECK(full->host_header == "[2001:db8::7]");

  auto mapped = parse_server_url("ws://[::ffff:192.0.2.1]:80");
  REQUIRE(mapped);
  CHECK(mapped->host == "::ffff:192.0.2.1");
}

TEST_CASE("server_url: paths and queries are the request target") {
  CHECK(parse_server_url("ws://h/")->path == "/");
  CHECK(parse_server_url("ws://h/a/b")->path == "/a/b");
  CHECK(parse_server_url("ws://h:1/a?x=1&y=2")->path == "/a?x=1&y=2");
  CHECK(parse_server_url("ws://h?x=1")->path == "/?x=1");
  CHECK(parse_server_url("ws://h?x=1")->host == "h");
}

TEST_CASE("server_url: ports from 1 to 65535") {
  CHECK(parse_server_url("ws://h:1")->port == 1);
  CHECK(parse_server_url("ws://h:65535")->port == 65535);
  CHECK(parse_server_url("ws://h:007539")->port == 7539);
  CHECK(refused_part("ws://h:0") == "port");
  CHECK(refused_part("ws://h:65536") == "port");
  CHECK(refused_part("ws://h:99999999999999999999") == "port");
  CHECK(refused_part("ws://h:") == "port");
  CHECK(refused_part("ws://h:/") == "port");
  CHECK(refused_part("ws://h:80x") == "port");
  CHECK(refused_part("ws://h:-1") == "port");
  CHECK(refused_part("ws://[::1]:") == "port");
  CHECK(refused_part("ws://[::1]:http") == "port");
}

TEST_CASE("server_url: refused schemes") {
  for (const char* url : {"http://127.0.0.1:7539", "https://h", "127.0.0.1:7539", "", "ws:/h", "ws:h", "wss:", "ws",
                          "ftp://h", " ws://h"}) {
    CAPTURE(url);
    CHECK(refused_part(url) == "scheme");
  }
  CHECK(parse_server_url("http://h").error().message == "the server URL must start with ws:// or wss://");
}

TEST_CASE("server_url: refused hosts") {
  for (const char* url : {"ws://", "wss://", "ws:///path", "ws://:7539", "ws://?x", "ws://[]", "ws://[]:80",
                          "ws://[::1", "ws://[::1:7539", "ws://[::1]x", "ws://[::1]7539", "ws://[127.0.0.1]",
                          "ws://[::g]", "ws://::1", "ws://::1:7539", "ws://fe80::1", "ws://ho%st", "ws://h!st",
                          "ws://h,st:80"}) {
    CAPTURE(url);
    CHECK(refused_part(url) == "host");
  }
  CHECK(parse_server_url("ws://[::1").error().message == "the IPv6 address has no closing ']'");
  CHECK(parse_server_url("ws://::1").error().message == "an IPv6 address must be in brackets, as in [::1]:7539");
  CHECK(parse_server_url("ws://").error().message == "the server URL has no host");
}

TEST_CASE("server_url: no credentials, fragments, spaces or control characters") {
  CHECK(refused_part("ws://user:secret@h") == "userinfo");
  CHECK(refused_part("ws://@h") == "userinfo");
  CHECK(refused_part("ws://h/#top") == "fragment");
  CHECK(refused_part("ws://h#") == "fragment");
  CHECK(refused_part("ws://h /x") == "characters");
  CHECK(refused_part("ws://h/a b") == "characters");
  CHECK(refused_part("ws://h/\r\nX-Injected: 1") == "characters");
  CHECK(refused_part(std::string_view("ws://h/\0", 8)) == "characters");
  CHECK(refused_part("ws://h/\x7f") == "characters");
}

TEST_CASE("server_url: what it accepts builds a valid upgrade request") {
  for (const char* url : {"ws://127.0.0.1:7539", "wss://[::1]/p?q=1", "ws://a-b.c_d:9/x/y"}) {
    CAPTURE(url);
    auto parsed = parse_server_url(url);
    REQUIRE(parsed);
    CHECK(parley::build_upgrade_request(parsed->host_header, parsed->path, "dGhlIHNhbXBsZSBub25jZQ=="));
  }
}
