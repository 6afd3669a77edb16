// SPDX-License-Identifier: MIT
// Invariant: the JSON-RPC line splitter yields the same lines and over-long reports as a plain reading of the
// stream, however it is chunked, never a line over its limit or holding a newline, and never buffers more than the
// limit plus a '\r'; classify_line sorts every line into exactly the kind JSON-RPC 2.0 and MCP give it, with a
// well-formed id; every reply built for it is one line of JSON carrying that id; and no exception escapes.
#include <parley/jsonrpc.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

using nlohmann::json;
namespace rpc = parley::jsonrpc;

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  const int shown = static_cast<int>(std::min<std::size_t>(detail.size(), 200));
  std::fprintf(stderr, "jsonrpc invariant violated: %s: %.*s\n", what, shown, detail.data());
  std::abort();
}

// A line, or std::nullopt for an over-long one.
using line_event = std::optional<std::string>;

// The splitter's contract read plainly: lines end in "\n" (one "\r" before it is part of the
// terminator); a line of more than `limit` bytes is reported once and dropped; an
// unterminated last line counts as a line, within the same limit.
std::vector<line_event> expected_lines(std::string_view input, std::size_t limit) {
  std::vector<line_event> out;
  while (!input.empty()) {
    const std::size_t newline = input.find('\n');
    std::string_view line = input.substr(0, newline);
    if (newline != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > limit) out.emplace_back(std::nullopt);
    else if (newline != std::string_view::npos || !line.empty()) out.emplace_back(std::string(line));
    if (newline == std::string_view::npos) break;
    input.remove_prefix(newline + 1);
  }
  return out;
}

void drain(rpc::line_splitter& splitter, std::vector<line_event>& out) {
  while (auto e = splitter.next()) {
    if (e->has_value()) {
      if ((*e)->size() > splitter.max_line_bytes()) fail("a line over the limit", **e);
      if ((*e)->find('\n') != std::string::npos) fail("a line holding a newline", **e);
      out.emplace_back(std::move(**e));
    } else {
      if (e->error().limit != splitter.max_line_bytes()) fail("an over-long report naming another limit");
      out.emplace_back(std::nullopt);
    }
  }
  // A line may hold the limit, and one more byte only while it is a '\r' that may end it.
  if (splitter.buffered_bytes() > splitter.max_line_bytes() + 1) fail("the splitter buffers more than a line");
}

std::vector<line_event> split_chunked(std::string_view input, std::size_t limit, std::uint32_t seed) {
  rpc::line_splitter splitter(limit);
  std::vector<line_event> out;
  while (!input.empty()) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>((seed >> 16) % 20, input.size());  // zero-sized feeds included
    splitter.feed(input.substr(0, n));
    input.remove_prefix(n);
    drain(splitter, out);
  }
  splitter.finish();
  drain(splitter, out);
  return out;
}

bool is_params(const json& j) { return j.is_object() || j.is_array(); }

// MCP's ids: strings and integers only (1.0 parses as a float, so it is refused too).
bool is_mcp_id(const json& j) { return j.is_string() || j.is_number_integer(); }

// JSON-RPC 2.0 with MCP's ids, read apart from classify(): which kind a line is.
enum class kind { parse_error, request, notification, response, invalid };

kind oracle(const json& j) {
  if (j.is_discarded()) return kind::parse_error;
  if (!j.is_object()) return kind::invalid;
  const auto version = j.find("jsonrpc");
  if (version == j.end() || *version != "2.0") return kind::invalid;
  const auto method = j.find("method");
  const auto id = j.find("id");
  const auto params = j.find("params");
  if (method == j.end()) return j.contains("result") || j.contains("error") ? kind::response : kind::invalid;
  if (!method->is_string()) return kind::invalid;
  if (params != j.end() && !is_params(*params)) return kind::invalid;
  if (id == j.end()) return kind::notification;
  return is_mcp_id(*id) ? kind::request : kind::invalid;
}

void check_reply_line(const std::string& line, const json& id) {
  if (line.find_first_of("\r\n") != std::string::npos) fail("a reply with a raw line break", line);
  const json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("jsonrpc", json()) != "2.0")
    fail("a reply that is not JSON-RPC", line);
  const auto it = j.find("id");
  if (it == j.end() || *it != id) fail("a reply that lost its id", line);
}

void check_classification(const std::string& line) {
  const json parsed = json::parse(line, nullptr, false);
  const kind expected = oracle(parsed);
  const rpc::message m = rpc::classify_line(line);
  const json* original_id = nullptr;
  if (parsed.is_object()) {
    auto it = parsed.find("id");
    if (it != parsed.end()) original_id = &*it;
  }
  if (const auto* r = std::get_if<rpc::request>(&m)) {
    if (expected != kind::request) fail("classified as a request", line);
    if (!is_mcp_id(r->id) || !original_id || r->id != *original_id) fail("a request with another id", line);
    if (!r->params.is_null() && !is_params(r->params)) fail("request params neither object nor array", line);
    if (r->method != parsed["method"]) fail("a request with another method", line);
    check_reply_line(rpc::result_line(r->id, json::object()), r->id);
    check_reply_line(rpc::error_line(r->id, rpc::method_not_found, "no such method " + r->method), r->id);
  } else if (const auto* n = std::get_if<rpc::notification>(&m)) {
    if (expected != kind::notification) fail("classified as a notification", line);
    if (!n->params.is_null() && !is_params(n->params)) fail("notification params neither object nor array", line);
    const std::string again = rpc::notification_line(n->method);
    if (again.find('\n') != std::string::npos || json::parse(again, nullptr, false).is_discarded())
      fail("a notification line that is not one line of JSON", again);
  } else if (std::holds_alternative<rpc::response>(m)) {
    if (expected != kind::response) fail("classified as a response", line);
  } else {
    const auto& invalid = std::get<rpc::invalid_message>(m);
    if (expected == kind::parse_error) {
      if (invalid.code != rpc::parse_error || !invalid.id.is_null()) fail("a parse error answered otherwise", line);
    } else if (expected != kind::invalid || invalid.code != rpc::invalid_request) {
      fail("classified as invalid", line);
    }
    if (invalid.message.empty()) fail("an invalid message without a message", line);
    // The id is echoed only when it was itself well formed.
    if (!invalid.id.is_null() && (!is_mcp_id(invalid.id) || !original_id || invalid.id != *original_id))
      fail("an invalid message answered under an id it did not carry", line);
    check_reply_line(rpc::error_line(invalid), invalid.id);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // Byte 0 picks the line limit, byte 1 the chunking; the rest is the stream.
  const std::size_t limit = data[0] & 1 ? rpc::line_splitter::default_max_line_bytes : data[0] >> 1;
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  const std::vector<line_event> expected = expected_lines(input, limit);
  rpc::line_splitter whole(limit);
  std::vector<line_event> got;
  whole.feed(input);
  drain(whole, got);
  whole.finish();
  drain(whole, got);
  if (got != expected) fail("the splitter disagrees with a plain reading of the stream", input);
  if (split_chunked(input, limit, data[1] | 0x100u) != expected) fail("chunking changed the lines", input);

  for (const auto& line : expected)
    if (line) check_classification(*line);
  return 0;
}
