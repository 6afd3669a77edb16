// SPDX-License-Identifier: MIT
// HTTP/1.1 head parsing and the RFC 6455 opening handshake; every parser input is replayed whole, bytewise and split at every position.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using parley::http_parse_status;

namespace {

template <class Message>
struct outcome {
  http_parse_status status = http_parse_status::need_more;
  parley::http_error error;
  Message message;
  std::string leftover;  // bytes after the head, which the parser must leave to the caller
};

bool same_message(const parley::http_request& a, const parley::http_request& b) {
  return a.method == b.method && a.target == b.target && a.version_major == b.version_major &&
         a.version_minor == b.version_minor && a.headers == b.headers;
}
bool same_message(const parley::http_response& a, const parley::http_response& b) {
  return a.status == b.status && a.reason == b.reason && a.version_major == b.version_major &&
         a.version_minor == b.version_minor && a.headers == b.headers;
}

template <class Parser, class Message>
outcome<Message> parse_chunks(const std::vector<std::string_view>& chunks, parley::http_limits limits) {
  Parser parser(limits);
  outcome<Message> out;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const auto r = parser.feed(chunks[i]);
    out.status = r.status;
    if (r.status == http_parse_status::failed) {
      out.error = r.error;
      return out;
    }
    if (r.status == http_parse_status::complete) {
      if constexpr (std::is_same_v<Message, parley::http_request>)
        out.message = parser.request();
      else
        out.message = parser.response();
      out.leftover = std::string(chunks[i].substr(r.consumed));
      for (std::size_t j = i + 1; j < chunks.size(); ++j) out.leftover += chunks[j];
      return out;
    }
  }
  return out;
}

// llparse-test-fixture's rule: whole, one byte at a time, and every two-way split agree.
template <class Parser, class Message>
outcome<Message> parse_every_way(std::string_view input, parley::http_limits limits) {
  const auto whole = parse_chunks<Parser, Message>({input}, limits);
  auto agrees = [&](const outcome<Message>& o) {
    return o.status == whole.status && o.error == whole.error && same_message(o.message, whole.message) &&
           o.leftover == whole.leftover;
  };
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  CHECK(agrees(parse_chunks<Parser, Message>(bytes, limits)));
  std::size_t disagreements = 0;
  for (std::size_t cut = 0; cut <= input.size(); ++cut)
    if (!agrees(parse_chunks<Parser, Message>({input.substr(0, cut), input.substr(cut)}, limits))) ++disagreements;
  CHECK(disagreements == 0);
  return whole;
}

outcome<parley::http_request> parse_request(std::string_view input, parley::http_limits limits = {}) {
  return parse_every_way<parley::http_request_parser, parley::http_request>(input, limits);
}
outcome<parley::http_response> parse_response(std::string_view input, parley::http_limits limits = {}) {
  return parse_every_way<parley::http_response_parser, parley::http_response>(input, limits);
}

const std::string rfc_request =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

parley::http_request request_of(const std::string& text) {
  const auto o = parse_chunks<parley::http_request_parser, parley::http_request>({text}, {});
  REQUIRE(o.status == http_parse_status::complete);
  return o.message;
}

// The RFC request with one line replaced (or removed when `with` is empty).
std::string rfc_request_with(std::string_view line_prefix, std::string_view with) {
  std::string out;
  std::string_view rest = rfc_request;
  while (!rest.empty()) {
    const std::size_t eol = rest.find("\r\n") + 2;
    const std::string_view line = rest.substr(0, eol);
    if (line.substr(0, line_prefix.size()) == line_prefix) {
      if (!with.empty()) out.append(with).append("\r\n");
    } else {
      out += line;
    }
    rest.remove_prefix(eol);
  }
  return out;
}

int upgrade_status(const std::string& text) {
  const auto r = parley::validate_websocket_upgrade(request_of(text));
  return r ? 101 : r.error().status;
}

std::string head_of_size(std::size_t total) {
  const std::string start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  const std::string end = "\r\n\r\n";
  return start + std::string(total - start.size() - end.size(), 'p') + end;
}

}  // namespace

TEST_CASE("http: RFC 6455 §1.3 request parses, with the next bytes left to the caller") {
  const std::string frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";  // §5.7 masked "Hello"
  const auto o = parse_request(rfc_request + frame);
  REQUIRE(o.status == http_parse_status::complete);
  CHECK(o.message.method == "GET");
  CHECK(o.message.target == "/chat");
  CHECK(o.message.version_major == 1);
  CHECK(o.message.version_minor == 1);
  CHECK(o.message.headers.size() == 6);
  CHECK(o.message.headers.get("host") == "server.example.com");
  CHECK(o.message.headers.get("SEC-WEBSOCKET-KEY") == "dGhlIHNhbXBsZSBub25jZQ==");
  CHECK_FALSE(o.message.headers.get("Cookie").has_value());
  CHECK(o.leftover == frame);
}

TEST_CASE("http: repeated headers are kept in order, values trimmed, tokens matched case-insensitively") {
  const auto o = parse_request(
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nX-A:1\r\nconnection:  Upgrade \t\r\n\r\n");
  REQUIRE(o.status == http_parse_status::complete);
  const auto all = o.message.headers.get_all("Connection");
  REQUIRE(all.size() == 2);
  CHECK(all[0] == "keep-alive");
  CHECK(all[1] == "Upgrade");
  CHECK(o.message.headers.get("x-a") == "1");
  CHECK(o.message.headers.has_token("CONNECTION", "upgrade"));
  CHECK_FALSE(o.message.headers.has_token("Connection", "upgra"));
  CHECK(o.message.headers.count("connection") == 2);
  CHECK(o.leftover.empty());
}

TEST_CASE("http: bare LF line endings are accepted (RFC 9112 §2.2)") {
  const auto o = parse_request("GET /x HTTP/1.0\nHost: h\n\nrest");
  REQUIRE(o.status == http_parse_status::complete);
  CHECK(o.message.version_minor == 0);
  CHECK(o.message.headers.get("Host") == "h");
  CHECK(o.leftover == "rest");
}

TEST_CASE("http: an incomplete head asks for more") {
  CHECK(parse_request("GET / HTTP/1.1\r\nHost: x\r\n").status == http_parse_status::need_more);
  CHECK(parse_request("GET / HTTP/1.1\r\nHost: x\r\n\r").status == http_parse_status::need_more);
  CHECK(parse_request("").status == http_parse_status::need_more);
}

TEST_CASE("http: malformed heads are 400") {
  const char* bad[] = {
      "\r\n\r\n",                                         // blank first line
      "GET\r\n\r\n",                                      // no target, no version
      "GET /\r\n\r\n",                                    // no version
      "GET  / HTTP/1.1\r\n\r\n",                          // empty target between two spaces
      "G(T / HTTP/1.1\r\n\r\n",                           // method not a token
      "GET /a\x01 HTTP/1.1\r\n\r\n",                      // control byte in the target
      "GET / HTTP/1.1 \r\n\r\n",                          // trailing space after the version
      "GET / HTTP/1.10\r\n\r\n",
      "GET / http/1.1\r\n\r\n",
      "GET / HTTP/x.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : x\r\n\r\n",               // whitespace before the colon (smuggling vector)
      "GET / HTTP/1.1\r\nHost x\r\n\r\n",                 // no colon
      "GET / HTTP/1.1\r\n: x\r\n\r\n",                    // empty name
      "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",     // obs-fold
      "GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n",             // bare CR in a value
      "GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",              // bare CR at the end of a line
  };
  for (const char* text : bad) {
    CAPTURE(text);
    const auto o = parse_request(text);
    CHECK(o.status == http_parse_status::failed);
    CHECK(o.error.status == 400);
  }
  const auto nul = parse_request(std::string("GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n", 30));
  CHECK(nul.error.status == 400);
}

TEST_CASE("http: another major version is 505") {
  const auto o = parse_request("GET / HTTP/2.0\r\nHost: x\r\n\r\n");
  CHECK(o.status == http_parse_status::failed);
  CHECK(o.error.status == 505);
}

TEST_CASE("http: a head of exactly the limit parses, one byte more is 431") {
  const std::string at_limit = head_of_size(8192);
  REQUIRE(at_limit.size() == 8192);
  CHECK(parse_request(at_limit + "tail").status == http_parse_status::complete);
  CHECK(parse_request(at_limit).leftover.empty());

  const auto over = parse_request(head_of_size(8193));
  CHECK(over.status == http_parse_status::failed);
  CHECK(over.error.status == 431);

  // An endless head is refused once it passes the limit, without waiting for a blank line.
  const auto endless = parse_request("GET / HTTP/1.1\r\nX: " + std::string(9000, 'a'));
  CHECK(endless.status == http_parse_status::failed);
  CHECK(endless.error.status == 431);
  CHECK(parse_request("GET / HTTP/1.1\r\nX: " + std::string(8000, 'a')).status == http_parse_status::need_more);
}

TEST_CASE("http: the head limit is configurable") {
  parley::http_limits small;
  small.max_head_bytes = 64;
  CHECK(parse_request(head_of_size(64), small).status == http_parse_status::complete);
  CHECK(parse_request(head_of_size(65), small).error.status == 431);
}

TEST_CASE("http: more header fields than the limit is 431") {
  auto with_fields = [](int n) {
    std::string s = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < n; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  };
  parley::http_limits limits;
  limits.max_header_count = 10;
  CHECK(parse_request(with_fields(10), limits).status == http_parse_status::complete);
  CHECK(parse_request(with_fields(11), limits).error.status == 431);
  CHECK(parse_chunks<parley::http_request_parser, parley::http_request>({with_fields(100)}, {}).status ==
        http_parse_status::complete);
  CHECK(parse_chunks<parley::http_request_parser, parley::http_request>({with_fields(101)}, {}).error.status ==
        431);
}

TEST_CASE("http: the outcome sticks once reached") {
  parley::http_request_parser ok;
  const auto r = ok.feed(rfc_request);
  CHECK(r.status == http_parse_status::complete);
  CHECK(r.consumed == rfc_request.size());
  const auto again = ok.feed("more");
  CHECK(again.status == http_parse_status::complete);
  CHECK(again.consumed == 0);
  CHECK(ok.request().target == "/chat");

  parley::http_request_parser bad;
  CHECK(bad.feed("BAD\r\n\r\n").status == http_parse_status::failed);
  CHECK(bad.feed(rfc_request).status == http_parse_status::failed);
}

TEST_CASE("http: response heads") {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  const auto o = parse_response(head + "\x81\x02hi");
  REQUIRE(o.status == http_parse_status::complete);
  CHECK(o.message.status == 101);
  CHECK(o.message.reason == "Switching Protocols");
  CHECK(o.message.headers.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(o.leftover == "\x81\x02hi");

  CHECK(parse_response("HTTP/1.1 204\r\n\r\n").message.status == 204);  // no reason, no space
  CHECK(parse_response("HTTP/1.1 404 \r\n\r\n").message.reason.empty());
  for (const char* bad : {"HTTP/1.1 1O1 Switching\r\n\r\n", "HTTP/1.1 99 Low\r\n\r\n", "HTTP/1.1 1010 X\r\n\r\n",
                          "HTTP/1.1  101 X\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1\r\n\r\n"}) {
    CAPTURE(bad);
    CHECK(parse_response(bad).status == http_parse_status::failed);
  }
}

TEST_CASE("handshake: the RFC 6455 example is accepted with the RFC's accept value") {
  CHECK(parley::websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const auto accept = parley::validate_websocket_upgrade(request_of(rfc_request));
  REQUIRE(accept.has_value());
  CHECK(*accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("handshake: tokens are matched case-insensitively inside comma lists") {
  CHECK(upgrade_status(rfc_request_with("Connection:", "Connection: keep-alive, UPGRADE")) == 101);
  CHECK(upgrade_status(rfc_request_with("Upgrade:", "upgrade: WebSocket")) == 101);
  CHECK(upgrade_status(rfc_request_with("Upgrade:", "Upgrade: h2c, websocket")) == 101);
  CHECK(upgrade_status(rfc_request_with("Connection:", "Connection: keep-alive\r\nConnection: Upgrade")) == 101);
}

TEST_CASE("handshake: a plain request is not an upgrade and gets 426") {
  const auto plain = request_of("GET /chat HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_FALSE(parley::is_upgrade_request(plain));
  CHECK(parley::is_upgrade_request(request_of(rfc_request)));
  const auto r = parley::validate_websocket_upgrade(plain);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().status == 426);
  CHECK(r.error().headers.get("Upgrade") == "websocket");
  CHECK(upgrade_status(rfc_request_with("Upgrade:", "Upgrade: h2c")) == 426);
  CHECK(upgrade_status(rfc_request_with("Upgrade:", "Upgrade: websockets")) == 426);
}

TEST_CASE("handshake: each requirement refuses with its own status") {
  std::string post = rfc_request;
  post.replace(0, 3, "POST");
  CHECK(upgrade_status(post) == 405);
  const auto r405 = parley::validate_websocket_upgrade(request_of(post));
  CHECK(r405.error().headers.get("Allow") == "GET");

  std::string http10 = rfc_request;
  http10.replace(rfc_request.find("HTTP/1.1"), 8, "HTTP/1.0");
  CHECK(upgrade_status(http10) == 400);

  CHECK(upgrade_status(rfc_request_with("Host:", "")) == 400);
  CHECK(upgrade_status(rfc_request_with("Host:", "Host: a\r\nHost: b")) == 400);
  CHECK(upgrade_status(rfc_request_with("Connection:", "")) == 400);
  CHECK(upgrade_status(rfc_request_with("Connection:", "Connection: keep-alive")) == 400);
  CHECK(upgrade_status(rfc_request_with("Connection:", "Connection: upgraded")) == 400);

  for (const char* version : {"", "Sec-WebSocket-Version: 8", "Sec-WebSocket-Version: 13, 8",
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13"}) {
    CAPTURE(version);
    const auto r = parley::validate_websocket_upgrade(request_of(rfc_request_with("Sec-WebSocket-Version:", version)));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().status == 426);
    CHECK(r.error().headers.get("Sec-WebSocket-Version") == "13");
  }

  for (const char* key : {"", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA",  // 15 bytes
                          "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAA==",  // 19 bytes
                          "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=",       // bad padding
                          "Sec-WebSocket-Key: not base64 at all!!!!",
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}) {
    CAPTURE(key);
    CHECK(upgrade_status(rfc_request_with("Sec-WebSocket-Key:", key)) == 400);
  }
  CHECK(upgrade_status(rfc_request_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==")) == 101);
}

TEST_CASE("responses: Content-Length and Connection: close always, and they parse back") {
  const std::string ok = parley::build_http_response(200, "OK", {{"Content-Type", "text/plain"}}, "hello");
  const auto o = parse_response(ok);
  REQUIRE(o.status == http_parse_status::complete);
  CHECK(o.message.status == 200);
  CHECK(o.message.headers.get("Content-Length") == "5");
  CHECK(o.message.headers.get("Content-Type") == "text/plain");
  CHECK(o.message.headers.get("Connection") == "close");
  CHECK(o.leftover == "hello");

  const auto refusal = parley::validate_websocket_upgrade(request_of(rfc_request_with("Sec-WebSocket-Version:", "")));
  REQUIRE_FALSE(refusal.has_value());
  const auto e = parse_response(parley::build_http_response(refusal.error()));
  REQUIRE(e.status == http_parse_status::complete);
  CHECK(e.message.status == 426);
  CHECK(e.message.reason == "Upgrade Required");
  CHECK(e.message.headers.get("Sec-WebSocket-Version") == "13");
  CHECK(e.message.headers.get("Connection") == "close");
  CHECK(e.message.headers.get("Content-Length") == std::to_string(e.leftover.size()));
}

TEST_CASE("client: key, request, the server's 101 and its check, end to end") {
  unsigned char next = 0;
  const parley::random_source counting = [&](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = next++;
  };
  const std::string key = parley::make_websocket_key(counting);
  CHECK(key.size() == 24);
  const auto raw = parley::base64_decode(key);
  REQUIRE(raw.has_value());
  CHECK(*raw == std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16));
  CHECK(parley::make_websocket_key(counting) != key);  // fresh bytes every time

  const auto request = parley::build_upgrade_request("chat.example:8443", "/ws?room=lobby", key,
                                                     {{"Authorization", "Bearer abc.def"}});
  REQUIRE(request.has_value());
  const auto parsed = parse_request(*request);
  REQUIRE(parsed.status == http_parse_status::complete);
  CHECK(parsed.message.target == "/ws?room=lobby");
  CHECK(parsed.message.headers.get("Host") == "chat.example:8443");
  CHECK(parsed.message.headers.get("Authorization") == "Bearer abc.def");
  const auto accept = parley::validate_websocket_upgrade(parsed.message);
  REQUIRE(accept.has_value());
  CHECK(*accept == parley::websocket_accept(key));

  const auto answer = parse_response(parley::build_switching_protocols(*accept));
  REQUIRE(answer.status == http_parse_status::complete);
  CHECK(answer.message.status == 101);
  CHECK(parley::check_upgrade_response(answer.message, key).has_value());
  CHECK_FALSE(parley::check_upgrade_response(answer.message, "dGhlIHNhbXBsZSBub25jZQ==").has_value());
}

TEST_CASE("client: header injection through host, path or extra headers is refused") {
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
  CHECK(parley::build_upgrade_request("h", "/", key).has_value());
  CHECK_FALSE(parley::build_upgrade_request("h\r\nX: y", "/", key).has_value());
  CHECK_FALSE(parley::build_upgrade_request("", "/", key).has_value());
  CHECK_FALSE(parley::build_upgrade_request("h", "/a b", key).has_value());
  CHECK_FALSE(parley::build_upgrade_request("h", "relative", key).has_value());
  CHECK_FALSE(parley::build_upgrade_request("h", "/", "k\r\n").has_value());
  CHECK_FALSE(parley::build_upgrade_request("h", "/", key, {{"Authorization", "Bearer x\r\nEvil: 1"}}).has_value());
  CHECK_FALSE(parley::build_upgrade_request("h", "/", key, {{"Bad Name", "v"}}).has_value());
}

TEST_CASE("client: a wrong 101 is refused with a reason") {
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
  const std::string good_accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
  auto check = [&](const std::string& head) {
    const auto o = parse_chunks<parley::http_response_parser, parley::http_response>({head}, {});
    REQUIRE(o.status == http_parse_status::complete);
    return parley::check_upgrade_response(o.message, key);
  };
  const std::string up = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  CHECK(check("HTTP/1.1 101 OK\r\n" + up + good_accept + "\r\n").has_value());
  CHECK_FALSE(check("HTTP/1.1 200 OK\r\n" + up + good_accept + "\r\n").has_value());
  CHECK_FALSE(check("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n" + good_accept + "\r\n").has_value());
  CHECK_FALSE(check("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n" + good_accept + "\r\n").has_value());
  CHECK_FALSE(check("HTTP/1.1 101 OK\r\n" + up + "\r\n").has_value());
  CHECK_FALSE(check("HTTP/1.1 101 OK\r\n" + up + "Sec-WebSocket-Accept: AAAA\r\n\r\n").has_value());
  CHECK_FALSE(check("HTTP/1.1 101 OK\r\n" + up + good_accept + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
                  .has_value());
  CHECK_FALSE(check("HTTP/1.1 101 OK\r\n" + up + good_accept + "Sec-WebSocket-Protocol: chat\r\n\r\n").has_value());
  const auto why = check("HTTP/1.1 403 Forbidden\r\n\r\n");
  REQUIRE_FALSE(why.has_value());
  CHECK(why.error().find("403") != std::string::npos);
}
