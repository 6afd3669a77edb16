// SPDX-License-Identifier: MIT
// Origins and Host headers: parsing, normalising, and which names count as loopback.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace parley;

TEST_CASE("origins normalise case and default ports, so equal origins compare equal") {
  CHECK(parse_web_origin("http://localhost:7539")->serialized() == "http://localhost:7539");
  CHECK(parse_web_origin("HTTPS://App.Example")->serialized() == "https://app.example:443");
  CHECK(parse_web_origin("http://app.example")->serialized() == "http://app.example:80");
  CHECK(parse_web_origin("http://app.example:80") == parse_web_origin("http://app.example"));
  CHECK(parse_web_origin("http://[::1]:7539")->host == "[::1]");
  CHECK(parse_web_origin("http://127.0.0.1:07539")->port == "7539");
}

TEST_CASE("origins compare exactly on scheme, host and port") {
  const auto app = *parse_web_origin("https://app.example");
  CHECK_FALSE(*parse_web_origin("https://app.example.evil.example") == app);
  CHECK_FALSE(*parse_web_origin("https://evil.example") == app);
  CHECK_FALSE(*parse_web_origin("http://app.example") == app);
  CHECK_FALSE(*parse_web_origin("https://app.example:8443") == app);
  CHECK(*parse_web_origin("https://APP.example:443") == app);
}

TEST_CASE("what is not an origin is refused with a sentence saying why") {
  for (const char* bad : {"null", "", "app.example", "ftp://app.example", "file:///etc", "https://", "https://a/b",
                          "https://a?x", "https://u@a", "https://a:", "https://a:99999", "https://a:x",
                          "https://[::1", "https://a b", "https://[]"}) {
    const std::string text = bad;
    CAPTURE(text);
    auto r = parse_web_origin(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == error_code::invalid_argument);
    CHECK(r.error().message.find("http(s)://host[:port]") != std::string::npos);
  }
}

TEST_CASE("loopback Host headers: localhost, 127.0.0.0/8 and [::1], with or without a port") {
  for (const char* ok : {"localhost", "LOCALHOST:7539", "127.0.0.1", "127.0.0.1:7539", "127.1.2.3:80", "[::1]",
                         "[::1]:7539"})
    CHECK_MESSAGE(is_loopback_host(ok), ok);
  for (const char* no : {"evil.example", "evil.example:7539", "localhost.evil.example", "127.0.0.1.evil.example",
                         "128.0.0.1", "127.0.0", "127.0.0.256", "[::2]", "10.0.0.1", "0.0.0.0", "", ":7539",
                         "localhost:abc", "127.0.0.1:99999"})
    CHECK_FALSE_MESSAGE(is_loopback_host(no), no);
}

TEST_CASE("one authority parser serves URLs, origins and Host headers alike") {
  auto v6 = parse_authority("[::1]:7539");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->bracketed);
  CHECK(v6->host_with_brackets() == "[::1]");
  CHECK(v6->port == std::uint16_t{7539});
  CHECK_FALSE(parse_authority("example.com")->port);
  CHECK(parse_authority("my_host.example")->host == "my_host.example");
  for (const char* bad : {"", ":80", "h:", "h:0", "h:65536", "::1", "[::1", "[]", "[1.2.3.4]", "[::1]x", "h/x", "h st"}) {
    auto r = parse_authority(bad, "host");
    REQUIRE_FALSE_MESSAGE(r, bad);
    CHECK(r.error().details["field"] == "host");
  }
  // The same rules through each caller: port 0 is no port, for an origin as for a URL.
  CHECK_FALSE(parse_web_origin("http://app.example:0"));
  CHECK_FALSE(parse_server_url("ws://app.example:0"));
  CHECK_FALSE(is_loopback_host("localhost:0"));
}
