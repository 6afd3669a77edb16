// SPDX-License-Identifier: MIT
// The MCP side of parley's stdio bridge as a sans-I/O state machine: host lines in, one ordered stream of reply lines out, tool calls surfaced as events.
#pragma once

#include "jsonrpc.hpp"
#include "mcp_tools.hpp"
#include "version.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace parley::mcp {

// RFC 5424 severities in increasing order, as MCP's logging capability names them.
enum class log_level { debug, info, notice, warning, error, critical, alert, emergency };

namespace detail {
inline constexpr std::array<std::string_view, 8> log_level_names{"debug",    "info",  "notice", "warning",
                                                                 "error",    "critical", "alert", "emergency"};
}  // namespace detail

[[nodiscard]] constexpr std::string_view to_string(log_level level) noexcept {
  return detail::log_level_names[static_cast<std::size_t>(level)];
}

[[nodiscard]] inline std::optional<log_level> log_level_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < detail::log_level_names.size(); ++i)
    if (detail::log_level_names[i] == name) return static_cast<log_level>(i);
  return std::nullopt;
}

// Newest first; a client asking for anything else is offered the newest.
inline constexpr std::array<std::string_view, 4> supported_protocol_versions{"2025-11-25", "2025-06-18", "2025-03-26",
                                                                             "2024-11-05"};
inline constexpr std::string_view latest_protocol_version = supported_protocol_versions[0];

[[nodiscard]] inline std::string_view negotiate_protocol_version(std::string_view requested) noexcept {
  for (std::string_view v : supported_protocol_versions)
    if (v == requested) return v;
  return latest_protocol_version;
}

// Channel meta keys become XML-ish attributes in the host's <channel ...> tag,
// so anything beyond [A-Za-z0-9_]+ could break out of it.
[[nodiscard]] inline bool is_channel_meta_key(std::string_view key) noexcept {
  if (key.empty()) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// A validated tools/call the bridge must execute and then answer with
// complete_tool_call or fail_tool_call under the same id.
struct tool_call {
  nlohmann::json id;
  tool_request request;
};

struct server_options {
  std::string version = std::string(version_string);  // serverInfo.version
  std::size_t max_line_bytes = jsonrpc::line_splitter::default_max_line_bytes;
  log_level min_log_level = log_level::info;  // until the host sends logging/setLevel
  // Channel pushes and logs queued before notifications/initialized; past this the oldest are dropped.
  std::size_t max_held_notifications = 1024;
  // Calls surfaced and not yet answered; past this a call is answered with a tool error at once.
  std::size_t max_pending_calls = 64;
};

class mcp_server {
 public:
  enum class session_state {
    awaiting_initialize,   // only ping and initialize are served
    awaiting_initialized,  // initialize answered; requests are served, pushes are held
    ready,                 // notifications/initialized arrived; pushes flow
  };

  explicit mcp_server(server_options options = {})
      : options_(std::move(options)), splitter_(options_.max_line_bytes), level_(options_.min_log_level) {}

  // One line from the host, without its terminator. Blank lines are skipped:
  // they carry no message and a parse error for them would only be noise.
  void receive_line(std::string_view line) {
    if (line.find_first_not_of(" \t\r\n") == std::string_view::npos) return;
    jsonrpc::message message = jsonrpc::classify_line(line);
    std::visit([this](auto& m) { handle(m); }, message);
  }

  // Raw stdin bytes in any chunking.
  void receive_bytes(std::string_view bytes) {
    splitter_.feed(bytes);
    drain_splitter();
  }

  // stdin closed: a last line without a newline is still served.
  void receive_eof() {
    splitter_.finish();
    drain_splitter();
  }

  // Complete JSON-RPC lines without the trailing newline, in the order they must be written.
  [[nodiscard]] std::vector<std::string> take_output() { return std::exchange(outbox_, {}); }
  [[nodiscard]] bool has_output() const noexcept { return !outbox_.empty(); }

  [[nodiscard]] std::optional<tool_call> next_tool_call() {
    if (calls_.empty()) return std::nullopt;
    tool_call call = std::move(calls_.front());
    calls_.pop_front();
    return call;
  }

  // Answers a surfaced call with its structured result; the text content carries
  // the same JSON for hosts that ignore structuredContent. structuredContent must
  // be an object in MCP, so any other value is sent as text only.
  // Returns false, sending nothing, when the call was cancelled or is unknown.
  bool complete_tool_call(const nlohmann::json& id, nlohmann::json structured_result) {
    if (!take_pending(id)) return false;
    nlohmann::json result = {{"content", nlohmann::json::array({text_content(jsonrpc::to_line(structured_result))})}};
    if (structured_result.is_object()) result["structuredContent"] = std::move(structured_result);
    outbox_.push_back(jsonrpc::result_line(id, std::move(result)));
    return true;
  }

  // Answers a surfaced call with a failure the agent can read and act on. No
  // structuredContent: hosts validate it against the tool's outputSchema, which
  // an error would not match. Non-null details follow as a second text item.
  // Returns false, sending nothing, when the call was cancelled or is unknown.
  bool fail_tool_call(const nlohmann::json& id, std::string sentence, nlohmann::json details = nullptr) {
    if (!take_pending(id)) return false;
    outbox_.push_back(jsonrpc::result_line(id, tool_error_result(std::move(sentence), details)));
    return true;
  }

  // Queues notifications/claude/channel {content, meta}. Meta keys that are not
  // [A-Za-z0-9_]+ are dropped, numbers and booleans become their JSON text, and
  // other non-string values are dropped. Returns how many meta entries were dropped.
  std::size_t push_channel(std::string content, const nlohmann::json& meta) {
    nlohmann::json clean = nlohmann::json::object();
    std::size_t dropped = 0;
    if (meta.is_object()) {
      for (auto it = meta.begin(); it != meta.end(); ++it) {
        if (!is_channel_meta_key(it.key())) {
          ++dropped;
        } else if (it->is_string()) {
          clean[it.key()] = *it;
        } else if (it->is_number() || it->is_boolean()) {
          clean[it.key()] = it->dump();
        } else {
          ++dropped;
        }
      }
    } else if (!meta.is_null()) {
      ++dropped;
    }
    send_or_hold(jsonrpc::notification_line("notifications/claude/channel",
                                            {{"content", std::move(content)}, {"meta", std::move(clean)}}));
    return dropped;
  }

  // notifications/message when `level` is at or above the host's chosen threshold.
  void log(log_level level, std::string message) {
    if (level < level_) return;
    send_or_hold(jsonrpc::notification_line(
        "notifications/message", {{"level", to_string(level)}, {"logger", "parley"}, {"data", std::move(message)}}));
  }

  [[nodiscard]] bool ready() const noexcept { return state_ == session_state::ready; }
  [[nodiscard]] session_state state() const noexcept { return state_; }
  // Empty until initialize has been answered.
  [[nodiscard]] const std::string& protocol_version() const noexcept { return protocol_version_; }
  // As the host sent them in initialize ({} when absent), e.g. to look for channel support.
  [[nodiscard]] const nlohmann::json& client_capabilities() const noexcept { return client_capabilities_; }
  [[nodiscard]] const nlohmann::json& client_info() const noexcept { return client_info_; }
  [[nodiscard]] log_level log_threshold() const noexcept { return level_; }
  [[nodiscard]] std::size_t pending_call_count() const noexcept { return pending_.size(); }

 private:
  static nlohmann::json text_content(std::string text) { return {{"type", "text"}, {"text", std::move(text)}}; }

  static nlohmann::json tool_error_result(std::string sentence, const nlohmann::json& details) {
    nlohmann::json content = nlohmann::json::array({text_content(std::move(sentence))});
    if (!details.is_null()) content.push_back(text_content(jsonrpc::to_line(details)));
    return {{"content", std::move(content)}, {"isError", true}};
  }

  // Ids are compared by their JSON text, so the string "1" and the number 1 stay distinct.
  static std::string id_key(const nlohmann::json& id) { return jsonrpc::to_line(id); }

  bool take_pending(const nlohmann::json& id) { return pending_.erase(id_key(id)) > 0; }

  void drain_splitter() {
    while (auto event = splitter_.next()) {
      if (*event) {
        receive_line(**event);
      } else {
        // No id can be recovered from a line we refused to buffer.
        outbox_.push_back(jsonrpc::error_line(nullptr, jsonrpc::invalid_request,
                                              "Invalid Request: message longer than " +
                                                  std::to_string(event->error().limit) + " bytes"));
      }
    }
  }

  void send_or_hold(std::string line) {
    if (state_ == session_state::ready) {
      outbox_.push_back(std::move(line));
      return;
    }
    held_.push_back(std::move(line));
    if (held_.size() > options_.max_held_notifications) {
      held_.pop_front();
      ++held_dropped_;
    }
  }

  void send_error(const nlohmann::json& id, int code, std::string message) {
    outbox_.push_back(jsonrpc::error_line(id, code, std::move(message)));
  }

  void handle(jsonrpc::invalid_message& invalid) { outbox_.push_back(jsonrpc::error_line(invalid)); }

  // We send no requests, so there is nothing to match an answer against.
  void handle(jsonrpc::response&) {}

  void handle(jsonrpc::notification& n) {
    if (n.method == "notifications/initialized") {
      if (state_ != session_state::awaiting_initialized) return;
      state_ = session_state::ready;
      for (auto& line : held_) outbox_.push_back(std::move(line));
      held_.clear();
      if (held_dropped_ > 0) {
        log(log_level::warning, std::to_string(held_dropped_) +
                                    " notifications were dropped while waiting for the host to finish initializing");
        held_dropped_ = 0;
      }
    } else if (n.method == "notifications/cancelled") {
      // MCP: the cancelled request gets no response at all, even if the work completes.
      if (!n.params.is_object()) return;
      const auto it = n.params.find("requestId");
      if (it == n.params.end() || !jsonrpc::is_valid_id(*it)) return;
      const std::string key = id_key(*it);
      if (pending_.erase(key) == 0) return;
      // A call the bridge has not taken yet need not run at all.
      calls_.erase(std::remove_if(calls_.begin(), calls_.end(),
                                  [&](const tool_call& call) { return id_key(call.id) == key; }),
                   calls_.end());
    }
    // Other notifications (roots/list_changed, progress, ...) need nothing from us.
  }

  void handle(jsonrpc::request& r) {
    if (r.method == "ping") return outbox_.push_back(jsonrpc::result_line(r.id, nlohmann::json::object()));
    if (r.method == "initialize") return handle_initialize(r);
    const bool known = r.method == "tools/list" || r.method == "tools/call" || r.method == "logging/setLevel";
    // Checked before the lifecycle so that server/discover gets -32601 and the client falls back to initialize.
    if (!known) {
      std::string message = "Method not found";
      if (r.method.size() <= 64) message += ": " + r.method;
      return send_error(r.id, jsonrpc::method_not_found, std::move(message));
    }
    if (state_ == session_state::awaiting_initialize)
      return send_error(r.id, jsonrpc::invalid_request, "Invalid Request: server not initialized; send initialize first");
    if (r.method == "tools/list")
      return outbox_.push_back(jsonrpc::result_line(r.id, {{"tools", tool_catalogue()}}));
    if (r.method == "logging/setLevel") return handle_set_level(r);
    return handle_tool_call(r);
  }

  void handle_initialize(jsonrpc::request& r) {
    if (state_ != session_state::awaiting_initialize)
      return send_error(r.id, jsonrpc::invalid_request, "Invalid Request: already initialized");
    if (!r.params.is_object())
      return send_error(r.id, jsonrpc::invalid_params, "initialize needs params {protocolVersion, capabilities, clientInfo}");
    const auto version = r.params.find("protocolVersion");
    if (version == r.params.end() || !version->is_string())
      return send_error(r.id, jsonrpc::invalid_params, "initialize needs params.protocolVersion as a string");
    protocol_version_ = std::string(negotiate_protocol_version(version->get_ref<const std::string&>()));
    if (auto caps = r.params.find("capabilities"); caps != r.params.end() && caps->is_object())
      client_capabilities_ = std::move(*caps);
    if (auto info = r.params.find("clientInfo"); info != r.params.end() && info->is_object())
      client_info_ = std::move(*info);
    state_ = session_state::awaiting_initialized;
    nlohmann::json result = {
        {"protocolVersion", protocol_version_},
        {"capabilities",
         {{"tools", nlohmann::json::object()},
          {"experimental", {{"claude/channel", nlohmann::json::object()}}},
          {"logging", nlohmann::json::object()}}},
        {"serverInfo", {{"name", "parley"}, {"version", options_.version}}},
        {"instructions", server_instructions()},
    };
    outbox_.push_back(jsonrpc::result_line(r.id, std::move(result)));
  }

  void handle_set_level(jsonrpc::request& r) {
    std::optional<log_level> level;
    if (r.params.is_object()) {
      const auto it = r.params.find("level");
      if (it != r.params.end() && it->is_string()) level = log_level_from_string(it->get_ref<const std::string&>());
    }
    if (!level)
      return send_error(r.id, jsonrpc::invalid_params,
                        "params.level must be one of debug, info, notice, warning, error, critical, alert, emergency");
    level_ = *level;
    outbox_.push_back(jsonrpc::result_line(r.id, nlohmann::json::object()));
  }

  void handle_tool_call(jsonrpc::request& r) {
    if (!r.params.is_object()) return send_error(r.id, jsonrpc::invalid_params, "tools/call needs params {name, arguments}");
    const auto name_it = r.params.find("name");
    if (name_it == r.params.end() || !name_it->is_string())
      return send_error(r.id, jsonrpc::invalid_params, "tools/call needs params.name as a string");
    const std::string& name = name_it->get_ref<const std::string&>();
    const auto args_it = r.params.find("arguments");
    const nlohmann::json no_arguments = nullptr;
    const nlohmann::json& arguments = args_it == r.params.end() ? no_arguments : *args_it;
    if (!arguments.is_null() && !arguments.is_object())
      return send_error(r.id, jsonrpc::invalid_params, "tools/call params.arguments must be an object");

    auto parsed = parse_tool_arguments(name, arguments);
    if (!parsed) {
      if (std::holds_alternative<unknown_tool>(parsed.error())) {
        std::string message = "Unknown tool";
        if (name.size() <= 64) message += ": " + name;
        return send_error(r.id, jsonrpc::invalid_params, std::move(message));
      }
      const auto& bad = std::get<argument_error>(parsed.error());
      return outbox_.push_back(jsonrpc::result_line(
          r.id, tool_error_result("Invalid arguments for " + name + ": " + bad.message,
                                  {{"field", bad.field}, {"rule", bad.rule}})));
    }
    const std::string key = id_key(r.id);
    // A second call under a live id would make the two answers indistinguishable.
    if (pending_.count(key) != 0)
      return send_error(r.id, jsonrpc::invalid_request, "Invalid Request: id is already used by a call in progress");
    if (pending_.size() >= options_.max_pending_calls) {
      return outbox_.push_back(jsonrpc::result_line(
          r.id, tool_error_result("Too many Parley tool calls are in progress (limit " +
                                      std::to_string(options_.max_pending_calls) + "); wait for some to finish.",
                                  nullptr)));
    }
    pending_.insert(key);
    calls_.push_back(tool_call{std::move(r.id), std::move(*parsed)});
  }

  server_options options_;
  jsonrpc::line_splitter splitter_;
  session_state state_ = session_state::awaiting_initialize;
  log_level level_;
  std::string protocol_version_;
  nlohmann::json client_capabilities_ = nlohmann::json::object();
  nlohmann::json client_info_ = nlohmann::json::object();
  std::vector<std::string> outbox_;  // the one ordered stream for stdout
  std::deque<std::string> held_;     // notifications waiting for notifications/initialized
  std::size_t held_dropped_ = 0;
  std::deque<tool_call> calls_;  // surfaced, not yet taken by the bridge
  std::set<std::string> pending_;  // id keys of calls not yet answered or cancelled
};

}  // namespace parley::mcp
