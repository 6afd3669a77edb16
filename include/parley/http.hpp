// SPDX-License-Identifier: MIT
// HTTP/1.1 heads, sans-I/O: incremental request/response head parsers and the RFC 6455 opening handshake for both roles.
#pragma once

#include "base64.hpp"
#include "random_source.hpp"
#include "sha1.hpp"

#include <tl/expected.hpp>

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley {

namespace detail {

[[nodiscard]] constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// RFC 9110 §5.6.2 tchar.
[[nodiscard]] constexpr bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

[[nodiscard]] constexpr bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// field-value characters: VCHAR, obs-text, SP and HTAB; every other control byte (NUL, bare CR, LF) is refused.
[[nodiscard]] constexpr bool is_field_value_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7F);
}

[[nodiscard]] constexpr bool is_field_value(std::string_view s) noexcept {
  for (char c : s)
    if (!is_field_value_char(c)) return false;
  return true;
}

[[nodiscard]] constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace detail

struct http_header {
  std::string name;  // as received; compare with iequals
  std::string value;  // surrounding whitespace removed

  friend bool operator==(const http_header& a, const http_header& b) {
    return a.name == b.name && a.value == b.value;
  }
};

// Fields in arrival order; repeated names are kept, since list-valued headers
// (Connection, Upgrade) may legally be split across several lines.
class http_headers {
 public:
  http_headers() = default;
  http_headers(std::initializer_list<http_header> fields) : fields_(fields) {}

  void add(std::string name, std::string value) { fields_.push_back({std::move(name), std::move(value)}); }

  // The first field with this name, case-insensitively.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const {
    for (const auto& f : fields_)
      if (detail::iequals(f.name, name)) return std::string_view(f.value);
    return std::nullopt;
  }

  [[nodiscard]] std::vector<std::string_view> get_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& f : fields_)
      if (detail::iequals(f.name, name)) out.emplace_back(f.value);
    return out;
  }

  [[nodiscard]] std::size_t count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& f : fields_)
      if (detail::iequals(f.name, name)) ++n;
    return n;
  }

  // Whether any field with this name lists `token` in its comma-separated value, case-insensitively.
  [[nodiscard]] bool has_token(std::string_view name, std::string_view token) const {
    for (const auto& f : fields_) {
      if (!detail::iequals(f.name, name)) continue;
      std::string_view rest = f.value;
      while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        if (detail::iequals(detail::trim_ows(rest.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
    return false;
  }

  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }
  [[nodiscard]] bool empty() const noexcept { return fields_.empty(); }
  [[nodiscard]] auto begin() const noexcept { return fields_.begin(); }
  [[nodiscard]] auto end() const noexcept { return fields_.end(); }

  friend bool operator==(const http_headers& a, const http_headers& b) { return a.fields_ == b.fields_; }
  friend bool operator!=(const http_headers& a, const http_headers& b) { return !(a == b); }

 private:
  std::vector<http_header> fields_;
};

struct http_request {
  std::string method;  // case-sensitive, as RFC 9110 defines it
  std::string target;
  int version_major = 1;
  int version_minor = 1;
  http_headers headers;
};

struct http_response {
  int version_major = 1;
  int version_minor = 1;
  int status = 0;
  std::string reason;
  http_headers headers;
};

// What a server answers when it cannot accept a head or an upgrade.
struct http_error {
  int status = 400;
  std::string reason;
  http_headers headers;  // extra fields the answer must carry, e.g. Sec-WebSocket-Version on a 426

  friend bool operator==(const http_error& a, const http_error& b) {
    return a.status == b.status && a.reason == b.reason && a.headers == b.headers;
  }
};

struct http_limits {
  std::size_t max_head_bytes = 8 * 1024;  // start line, fields and the blank line; more is 431
  std::size_t max_header_count = 100;     // more is 431 too
};

enum class http_parse_status { need_more, complete, failed };

struct http_parse_result {
  http_parse_status status = http_parse_status::need_more;
  // On complete: how many bytes of THIS feed()'s input belong to the head. The rest
  // (e.g. a WebSocket frame the peer sent without waiting) belongs to the caller.
  std::size_t consumed = 0;
  http_error error;  // on failed
};

namespace detail {

// Shared by both parsers: accumulates bytes until the blank line, bounded by the limits,
// then hands the complete head to a start-line parser. Lines end in CRLF; a bare LF is
// accepted as RFC 9112 §2.2 allows, a bare CR anywhere is refused.
class head_parser_base {
 public:
  explicit head_parser_base(http_limits limits) : limits_(limits) {}

 protected:
  template <class ParseHead>
  http_parse_result feed_with(std::string_view bytes, ParseHead&& parse_head) {
    if (result_.status != http_parse_status::need_more) {
      http_parse_result again = result_;
      again.consumed = 0;
      return again;
    }
    // Take no more than the limit allows, so memory stays bounded whatever the peer sends.
    const std::size_t old_size = buffer_.size();
    const std::size_t room = limits_.max_head_bytes - old_size;
    buffer_.append(bytes.data(), bytes.size() < room ? bytes.size() : room);

    const std::size_t end = find_head_end(old_size);
    if (end == std::string::npos) {
      if (buffer_.size() >= limits_.max_head_bytes) return fail(431, "head too large");
      return result_;
    }
    buffer_.resize(end);
    std::vector<std::string_view> lines = split_lines(std::string_view(buffer_));
    if (lines.empty()) return fail(400, "empty head");
    if (lines.size() - 1 > limits_.max_header_count) return fail(431, "too many header fields");
    if (auto err = parse_head(lines.front())) return fail(err->first, err->second);
    if (auto err = parse_fields(lines)) return fail(400, *err);
    result_.status = http_parse_status::complete;
    http_parse_result done = result_;
    done.consumed = end - old_size;
    return done;
  }

  // Whether the head is still incomplete: only the feed that completes it hands the
  // headers over; a later feed reports the same outcome and must not move them again.
  [[nodiscard]] bool pending() const noexcept { return result_.status == http_parse_status::need_more; }

  http_headers headers_;

 private:
  // Index one past the blank line that ends the head, searching only bytes not yet searched.
  [[nodiscard]] std::size_t find_head_end(std::size_t old_size) const {
    std::size_t i = scanned_from(old_size);
    for (; i < buffer_.size(); ++i) {
      if (buffer_[i] != '\n') continue;
      // "\n\n" or "\n\r\n" ends the head; the first line may not be blank.
      if (i + 1 < buffer_.size() && buffer_[i + 1] == '\n') return i + 2;
      if (i + 2 < buffer_.size() && buffer_[i + 1] == '\r' && buffer_[i + 2] == '\n') return i + 3;
    }
    return std::string::npos;
  }

  [[nodiscard]] static std::size_t scanned_from(std::size_t old_size) noexcept {
    return old_size >= 2 ? old_size - 2 : 0;
  }

  static std::vector<std::string_view> split_lines(std::string_view head) {
    std::vector<std::string_view> lines;
    while (!head.empty()) {
      const std::size_t lf = head.find('\n');
      std::string_view line = head.substr(0, lf);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      lines.push_back(line);
      head.remove_prefix(lf + 1);
    }
    if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the blank line
    return lines;
  }

  std::optional<std::string> parse_fields(const std::vector<std::string_view>& lines) {
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const std::string_view line = lines[i];
      // obs-fold (a line starting with whitespace) is refused, as RFC 9112 §5.2 permits.
      if (line.empty() || line.front() == ' ' || line.front() == '\t') return "folded or empty header line";
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) return "header line without a colon";
      const std::string_view name = line.substr(0, colon);
      // Whitespace before the colon is refused (RFC 9112 §5.1): it has been used for request smuggling.
      if (!is_token(name)) return "invalid header name";
      const std::string_view value = line.substr(colon + 1);
      if (!is_field_value(value)) return "invalid character in header value";
      headers_.add(std::string(name), std::string(trim_ows(value)));
    }
    return std::nullopt;
  }

  http_parse_result fail(int status, std::string reason) {
    result_.status = http_parse_status::failed;
    result_.error = http_error{status, std::move(reason), {}};
    buffer_.clear();
    buffer_.shrink_to_fit();
    return result_;
  }

  http_limits limits_;
  std::string buffer_;
  http_parse_result result_;
};

// "HTTP/" DIGIT "." DIGIT
[[nodiscard]] inline bool parse_http_version(std::string_view s, int& major, int& minor) noexcept {
  if (s.size() != 8 || s.substr(0, 5) != "HTTP/" || s[6] != '.') return false;
  if (s[5] < '0' || s[5] > '9' || s[7] < '0' || s[7] > '9') return false;
  major = s[5] - '0';
  minor = s[7] - '0';
  return true;
}

using start_line_error = std::optional<std::pair<int, std::string>>;

}  // namespace detail

// The server side: feed() bytes as they arrive until it reports complete or failed;
// after that it keeps reporting the same outcome (with consumed == 0). The parser
// reads the head only: a body, if any, is the caller's business.
class http_request_parser : detail::head_parser_base {
 public:
  explicit http_request_parser(http_limits limits = {}) : head_parser_base(limits) {}

  http_parse_result feed(std::string_view bytes) {
    const bool was_pending = pending();
    http_parse_result r = feed_with(bytes, [this](std::string_view line) { return parse_request_line(line); });
    if (was_pending && r.status == http_parse_status::complete) request_.headers = std::move(headers_);
    return r;
  }

  // Valid once feed() has reported complete.
  [[nodiscard]] const http_request& request() const noexcept { return request_; }
  [[nodiscard]] http_request take_request() noexcept { return std::move(request_); }

 private:
  detail::start_line_error parse_request_line(std::string_view line) {
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return {{400, "malformed request line"}};
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return {{400, "malformed request line"}};
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!detail::is_token(method)) return {{400, "invalid method"}};
    if (target.empty()) return {{400, "empty request target"}};
    for (char c : target) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7F) return {{400, "invalid character in request target"}};
    }
    if (!detail::parse_http_version(version, request_.version_major, request_.version_minor))
      return {{400, "malformed HTTP version"}};
    if (request_.version_major != 1) return {{505, "HTTP version not supported"}};
    request_.method = std::string(method);
    request_.target = std::string(target);
    return std::nullopt;
  }

  http_request request_;
};

// The client side, for the server's answer to an upgrade request.
class http_response_parser : detail::head_parser_base {
 public:
  explicit http_response_parser(http_limits limits = {}) : head_parser_base(limits) {}

  http_parse_result feed(std::string_view bytes) {
    const bool was_pending = pending();
    http_parse_result r = feed_with(bytes, [this](std::string_view line) { return parse_status_line(line); });
    if (was_pending && r.status == http_parse_status::complete) response_.headers = std::move(headers_);
    return r;
  }

  [[nodiscard]] const http_response& response() const noexcept { return response_; }
  [[nodiscard]] http_response take_response() noexcept { return std::move(response_); }

 private:
  detail::start_line_error parse_status_line(std::string_view line) {
    // HTTP-version SP 3DIGIT [SP reason]; a missing SP before an empty reason is tolerated.
    if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' '))
      return {{400, "malformed status line"}};
    if (!detail::parse_http_version(line.substr(0, 8), response_.version_major, response_.version_minor))
      return {{400, "malformed HTTP version"}};
    int status = 0;
    for (char c : line.substr(9, 3)) {
      if (c < '0' || c > '9') return {{400, "malformed status code"}};
      status = status * 10 + (c - '0');
    }
    if (status < 100) return {{400, "malformed status code"}};
    const std::string_view reason = line.size() > 12 ? line.substr(13) : std::string_view{};
    if (!detail::is_field_value(reason)) return {{400, "invalid character in reason phrase"}};
    response_.status = status;
    response_.reason = std::string(reason);
    return std::nullopt;
  }

  http_response response_;
};

// ---- Building heads -------------------------------------------------------------------------

// Whether a name/value pair can go on the wire without breaking the head (no CR, LF or NUL).
[[nodiscard]] inline bool is_valid_header(std::string_view name, std::string_view value) noexcept {
  return detail::is_token(name) && detail::is_field_value(value);
}

// A complete response with Content-Length and Connection: close. parley's server answers
// one request per connection (an error, /healthz, /metrics) and hangs up; saying so keeps a
// keep-alive client (node's agent, Prometheus's) from sending a second request into a
// socket that is closing.
// Precondition: the reason and headers satisfy is_valid_header (they are the server's own).
[[nodiscard]] inline std::string build_http_response(int status, std::string_view reason,
                                                     const http_headers& headers = {},
                                                     std::string_view body = {}) {
  std::string out;
  out.reserve(128 + body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason;
  out += "\r\n";
  for (const auto& h : headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

// The answer to a refused head or upgrade: its headers, and the reason as a text body.
[[nodiscard]] inline std::string build_http_response(const http_error& error) {
  http_headers headers = error.headers;
  headers.add("Content-Type", "text/plain; charset=utf-8");
  return build_http_response(error.status, error.reason, headers, error.reason + "\n");
}

// ---- The WebSocket opening handshake (RFC 6455 §4) --------------------------------------------

inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

[[nodiscard]] inline std::string websocket_accept(std::string_view key_base64) {
  std::string input;
  input.reserve(key_base64.size() + websocket_guid.size());
  input += key_base64;
  input += websocket_guid;
  const auto digest = sha1(input);
  return base64_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

// A request that asks for a WebSocket at all; one that does not gets 426 on the WebSocket path.
// The credentials of an `Authorization: Bearer <token>` header (scheme case-insensitive), if any.
[[nodiscard]] inline std::optional<std::string> bearer_token(const http_request& request) {
  constexpr std::string_view scheme = "Bearer ";
  const auto value = request.headers.get("Authorization");
  if (!value || value->size() <= scheme.size() || !detail::iequals(value->substr(0, scheme.size()), scheme))
    return std::nullopt;
  const std::string_view token = detail::trim_ows(value->substr(scheme.size()));
  if (token.empty()) return std::nullopt;
  return std::string(token);
}

[[nodiscard]] inline bool is_upgrade_request(const http_request& request) {
  return request.headers.has_token("Upgrade", "websocket");
}

// Either the Sec-WebSocket-Accept value to answer with, or the refusal to send.
[[nodiscard]] inline tl::expected<std::string, http_error> validate_websocket_upgrade(const http_request& request) {
  using fail = tl::unexpected<http_error>;
  if (!is_upgrade_request(request))
    return fail(http_error{426, "Upgrade Required", {{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}}});
  if (request.method != "GET") return fail(http_error{405, "Method Not Allowed", {{"Allow", "GET"}}});
  if (request.version_major != 1 || request.version_minor < 1)
    return fail(http_error{400, "WebSocket needs HTTP/1.1", {}});
  // RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is answered with 400.
  if (request.headers.count("Host") != 1) return fail(http_error{400, "exactly one Host header required", {}});
  if (!request.headers.has_token("Connection", "upgrade"))
    return fail(http_error{400, "Connection header must include upgrade", {}});
  const auto versions = request.headers.get_all("Sec-WebSocket-Version");
  if (versions.size() != 1 || versions.front() != "13")
    return fail(http_error{426, "Upgrade Required", {{"Sec-WebSocket-Version", "13"}}});
  const auto keys = request.headers.get_all("Sec-WebSocket-Key");
  if (keys.size() != 1) return fail(http_error{400, "exactly one Sec-WebSocket-Key required", {}});
  const auto key = base64_decode(keys.front());
  if (!key || key->size() != 16) return fail(http_error{400, "Sec-WebSocket-Key must be 16 bytes in base64", {}});
  return websocket_accept(keys.front());
}

// Extensions and subprotocols are never negotiated: parley speaks plain RFC 6455 with JSON text frames.
[[nodiscard]] inline std::string build_switching_protocols(std::string_view accept_key) {
  std::string out;
  out.reserve(160);
  out += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
  out += accept_key;
  out += "\r\n\r\n";
  return out;
}

// 16 bytes from the injected source, base64'd, as §4.1 requires of a client.
template <class Random>
[[nodiscard]] std::string make_websocket_key(Random&& random) {
  unsigned char nonce[16];
  random(nonce, sizeof nonce);
  return base64_encode(std::string_view(reinterpret_cast<const char*>(nonce), sizeof nonce));
}

// The client's upgrade request; nullopt when host, path or an extra header (say an
// Authorization token from the environment) would break the head or inject fields.
[[nodiscard]] inline std::optional<std::string> build_upgrade_request(std::string_view host, std::string_view path,
                                                                      std::string_view key_base64,
                                                                      const http_headers& extra_headers = {}) {
  if (host.empty() || !detail::is_field_value(host) || host.find_first_of(" \t") != std::string_view::npos)
    return std::nullopt;
  if (path.empty() || path.front() != '/') return std::nullopt;
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return std::nullopt;
  }
  if (!is_valid_header("Sec-WebSocket-Key", key_base64)) return std::nullopt;
  for (const auto& h : extra_headers)
    if (!is_valid_header(h.name, h.value)) return std::nullopt;

  std::string out;
  out.reserve(256);
  out += "GET ";
  out += path;
  out += " HTTP/1.1\r\nHost: ";
  out += host;
  out += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
  out += key_base64;
  out += "\r\nSec-WebSocket-Version: 13\r\n";
  for (const auto& h : extra_headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

// The client's check of the server's answer (§4.1, the five "fail the connection" rules).
// On error the string says why, for a log line.
[[nodiscard]] inline tl::expected<void, std::string> check_upgrade_response(const http_response& response,
                                                                            std::string_view key_base64) {
  using fail = tl::unexpected<std::string>;
  if (response.status != 101) return fail("server answered " + std::to_string(response.status) + " " + response.reason);
  if (!response.headers.has_token("Upgrade", "websocket")) return fail("101 without Upgrade: websocket");
  if (!response.headers.has_token("Connection", "upgrade")) return fail("101 without Connection: upgrade");
  const auto accepts = response.headers.get_all("Sec-WebSocket-Accept");
  if (accepts.size() != 1 || accepts.front() != websocket_accept(key_base64))
    return fail("wrong Sec-WebSocket-Accept");
  if (response.headers.count("Sec-WebSocket-Extensions") != 0) return fail("server chose an extension we did not offer");
  if (response.headers.count("Sec-WebSocket-Protocol") != 0) return fail("server chose a subprotocol we did not offer");
  return {};
}

}  // namespace parley
