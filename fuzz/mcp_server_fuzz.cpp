// SPDX-License-Identifier: MIT
// Invariant: for any input, every input line produces at most one response line (counting the bridge's answer to a
// call it surfaced), a well-formed request gets exactly one, carrying its own id, and a notification gets none; every
// output line is one line of valid JSON, an object with "jsonrpc":"2.0" that is either a response (id and exactly
// one of result/error) or a notification (method, no id); feeding the bytes in any chunking gives the same output
// as feeding them line by line; and no exception escapes.
#include <parley/mcp_server.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using nlohmann::json;

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "mcp_server invariant violated: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// Checks the shape of each output line; returns the ids of the responses among them.
std::vector<json> check_output(const std::vector<std::string>& lines) {
  std::vector<json> ids;
  for (const auto& line : lines) {
    if (line.find('\n') != std::string::npos || line.find('\r') != std::string::npos) fail("raw line break", line);
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("not a JSON object", line);
    if (j.value("jsonrpc", json()) != "2.0") fail("no jsonrpc 2.0", line);
    if (j.contains("id")) {
      if (j.contains("result") == j.contains("error")) fail("response without exactly one of result/error", line);
      if (j.contains("error")) {
        const json& e = j["error"];
        if (!e.is_object() || !e.contains("code") || !e["code"].is_number_integer() || !e.contains("message") ||
            !e["message"].is_string())
          fail("malformed error", line);
      }
      if (j.contains("method")) fail("response with a method", line);
      ids.push_back(j["id"]);
    } else if (!j.contains("method") || !j["method"].is_string()) {
      fail("neither response nor notification", line);
    }
  }
  return ids;
}

// An oracle written apart from jsonrpc::classify: what JSON-RPC 2.0 and MCP call a request.
bool is_well_formed_request(std::string_view line, json& id) {
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  const auto version = j.find("jsonrpc");
  const auto method = j.find("method");
  const auto id_it = j.find("id");
  const auto params = j.find("params");
  if (version == j.end() || *version != "2.0") return false;
  if (method == j.end() || !method->is_string()) return false;
  if (id_it == j.end() || !(id_it->is_string() || id_it->is_number_integer())) return false;
  if (params != j.end() && !params->is_object() && !params->is_array()) return false;
  id = *id_it;
  return true;
}

bool is_well_formed_notification(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.contains("id")) return false;
  const auto version = j.find("jsonrpc");
  const auto method = j.find("method");
  const auto params = j.find("params");
  return version != j.end() && *version == "2.0" && method != j.end() && method->is_string() &&
         (params == j.end() || params->is_object() || params->is_array());
}

std::vector<std::string_view> split_lines(std::string_view input) {
  std::vector<std::string_view> lines;
  while (!input.empty()) {
    const std::size_t newline = input.find('\n');
    lines.push_back(input.substr(0, newline));
    if (newline == std::string_view::npos) break;
    input.remove_prefix(newline + 1);
  }
  return lines;
}

// Line by line, with the bridge answering every call at once, alternately with a result and a failure.
void check_line_by_line(const std::vector<std::string_view>& lines) {
  parley::mcp::mcp_server server;
  std::size_t step = 0;
  for (std::string_view line : lines) {
    ++step;
    if (step % 5 == 0) server.push_channel("pushed", {{"room", "r"}, {"seq", step}});
    if (step % 7 == 0) server.log(parley::mcp::log_level::error, "logged");
    server.receive_line(line);
    std::vector<std::string> out = server.take_output();
    while (auto call = server.next_tool_call()) {
      const bool answered = step % 2 == 0 ? server.complete_tool_call(call->id, {{"ok", true}})
                                          : server.fail_tool_call(call->id, "failed", {{"why", "fuzz"}});
      if (!answered) fail("a call just surfaced could not be answered", line);
    }
    for (auto& l : server.take_output()) out.push_back(std::move(l));
    const std::vector<json> ids = check_output(out);
    if (ids.size() > 1) fail("more than one response to a line", line);
    json id;
    if (is_well_formed_request(line, id)) {
      if (ids.size() != 1) fail("a request was not answered", line);
      if (ids[0] != id) fail("a response carries another id", line);
    } else if (is_well_formed_notification(line) && !ids.empty()) {
      fail("a notification was answered", line);
    }
  }
}

// Without answering calls, so the output depends only on the lines and not on when they were cut.
std::vector<std::string> run_unanswered_by_line(const std::vector<std::string_view>& lines) {
  parley::mcp::mcp_server server;
  for (std::string_view line : lines) server.receive_line(line);
  server.receive_eof();
  return server.take_output();
}

std::vector<std::string> run_unanswered_chunked(std::string_view input, std::size_t max_line_bytes) {
  parley::mcp::server_options options;
  options.max_line_bytes = max_line_bytes;
  parley::mcp::mcp_server server(options);
  std::vector<std::string> out;
  std::size_t chunk = 1;
  while (!input.empty()) {
    const std::size_t n = std::min(chunk, input.size());
    server.receive_bytes(input.substr(0, n));
    input.remove_prefix(n);
    chunk = chunk % 13 + 1;  // 1, 2, ... 13, 1, ...: cuts land everywhere
    for (auto& l : server.take_output()) out.push_back(std::move(l));
  }
  server.receive_eof();
  for (auto& l : server.take_output()) out.push_back(std::move(l));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> lines = split_lines(input);

  check_line_by_line(lines);

  const std::vector<std::string> by_line = run_unanswered_by_line(lines);
  if (run_unanswered_chunked(input, std::size_t{1} << 20) != by_line) fail("chunking changed the output", input);

  // A tiny line limit exercises the over-long path; each line still gets at most one response.
  const std::vector<std::string> limited = run_unanswered_chunked(input, 32);
  if (check_output(limited).size() > lines.size()) fail("more responses than lines", input);
  return 0;
}
