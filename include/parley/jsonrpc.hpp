// SPDX-License-Identifier: MIT
// JSON-RPC 2.0 over newline-delimited text (MCP's stdio transport): classify one line, build one-line replies, split a byte stream into lines.
#pragma once

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace parley::jsonrpc {

// The reserved codes of JSON-RPC 2.0 section 5.1.
inline constexpr int parse_error = -32700;
inline constexpr int invalid_request = -32600;
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;
inline constexpr int internal_error = -32603;

// A call that wants an answer. `id` is kept as the JSON value it arrived as, so
// that "1" and 1 stay different and large integers survive the round trip.
struct request {
  nlohmann::json id;
  std::string method;
  nlohmann::json params;  // null when absent, otherwise an object or an array
};

// A call that wants no answer, not even an error.
struct notification {
  std::string method;
  nlohmann::json params;  // null when absent, otherwise an object or an array
};

// The peer answering a request of ours. Not validated further: we never send
// requests, and answering a malformed answer invites two peers to ping-pong errors.
struct response {
  nlohmann::json id;
  nlohmann::json payload;  // the "result" member, or the "error" member when is_error
  bool is_error = false;
};

// Something that must be answered with an error: `id` is the offending message's
// id when that id was itself well formed, otherwise null (JSON-RPC 2.0 section 5).
struct invalid_message {
  nlohmann::json id;
  int code = invalid_request;
  std::string message;
};

using message = std::variant<request, notification, response, invalid_message>;

// MCP narrows JSON-RPC's ids to strings and integers: null, fractions, booleans
// and structures are refused. A number written 1.0 is parsed as a float, so it is refused too.
[[nodiscard]] inline bool is_valid_id(const nlohmann::json& id) noexcept {
  return id.is_string() || id.is_number_integer();  // is_number_integer covers unsigned
}

// Takes the value by value and moves its members out: copying or comparing an
// untrusted json recurses once per nesting level, moving it does not.
[[nodiscard]] inline message classify(nlohmann::json value) {
  if (value.is_array()) return invalid_message{nullptr, invalid_request, "Invalid Request: batches are not supported"};
  if (!value.is_object()) return invalid_message{nullptr, invalid_request, "Invalid Request: a message must be a JSON object"};

  nlohmann::json id = nullptr;
  const auto id_it = value.find("id");
  const bool has_id = id_it != value.end();
  if (has_id && is_valid_id(*id_it)) id = std::move(*id_it);

  const auto version = value.find("jsonrpc");
  if (version == value.end() || !version->is_string() || version->get_ref<const std::string&>() != "2.0")
    return invalid_message{std::move(id), invalid_request, "Invalid Request: \"jsonrpc\" must be \"2.0\""};

  const auto method = value.find("method");
  if (method == value.end()) {
    const auto result = value.find("result");
    if (result != value.end()) return response{std::move(id), std::move(*result), false};
    const auto error = value.find("error");
    if (error != value.end()) return response{std::move(id), std::move(*error), true};
    return invalid_message{std::move(id), invalid_request, "Invalid Request: no \"method\", \"result\" or \"error\""};
  }
  if (!method->is_string())
    return invalid_message{std::move(id), invalid_request, "Invalid Request: \"method\" must be a string"};
  if (has_id && id.is_null())
    return invalid_message{nullptr, invalid_request, "Invalid Request: \"id\" must be a string or an integer"};

  nlohmann::json params = nullptr;
  const auto params_it = value.find("params");
  if (params_it != value.end()) {
    if (!params_it->is_object() && !params_it->is_array())
      return invalid_message{std::move(id), invalid_request, "Invalid Request: \"params\" must be an object or an array"};
    params = std::move(*params_it);
  }
  std::string name = std::move(method->get_ref<std::string&>());
  if (!has_id) return notification{std::move(name), std::move(params)};
  return request{std::move(id), std::move(name), std::move(params)};
}

[[nodiscard]] inline message classify_line(std::string_view line) {
  nlohmann::json value = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return invalid_message{nullptr, parse_error, "Parse error"};
  return classify(std::move(value));
}

// One line, no trailing newline. dump() without indentation escapes every control
// character, so the text never contains a raw newline; `replace` turns invalid
// UTF-8 (which only our own callers can hand us) into U+FFFD instead of throwing.
[[nodiscard]] inline std::string to_line(const nlohmann::json& message) {
  return message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

[[nodiscard]] inline nlohmann::json make_result(nlohmann::json id, nlohmann::json result) {
  return {{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"result", std::move(result)}};
}

// `data` is left out when null.
[[nodiscard]] inline nlohmann::json make_error(nlohmann::json id, int code, std::string message,
                                               nlohmann::json data = nullptr) {
  nlohmann::json error = {{"code", code}, {"message", std::move(message)}};
  if (!data.is_null()) error["data"] = std::move(data);
  return {{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"error", std::move(error)}};
}

// `params` is left out when null.
[[nodiscard]] inline nlohmann::json make_notification(std::string method, nlohmann::json params = nullptr) {
  nlohmann::json message = {{"jsonrpc", "2.0"}, {"method", std::move(method)}};
  if (!params.is_null()) message["params"] = std::move(params);
  return message;
}

[[nodiscard]] inline std::string result_line(nlohmann::json id, nlohmann::json result) {
  return to_line(make_result(std::move(id), std::move(result)));
}

[[nodiscard]] inline std::string error_line(nlohmann::json id, int code, std::string message,
                                            nlohmann::json data = nullptr) {
  return to_line(make_error(std::move(id), code, std::move(message), std::move(data)));
}

[[nodiscard]] inline std::string error_line(const invalid_message& invalid) {
  return error_line(invalid.id, invalid.code, invalid.message);
}

[[nodiscard]] inline std::string notification_line(std::string method, nlohmann::json params = nullptr) {
  return to_line(make_notification(std::move(method), std::move(params)));
}

// Reported once per over-long line; the rest of that line, up to its newline, is skipped.
struct line_too_long {
  std::size_t limit = 0;
};

// Cuts an arbitrary split of a byte stream into lines ending in "\n" or "\r\n"
// (terminator removed). Memory stays within the line limit plus the bytes fed
// and not yet taken: an over-long line is reported as soon as it passes the limit,
// at the same byte however the input was chunked, and then discarded.
class line_splitter {
 public:
  static constexpr std::size_t default_max_line_bytes = std::size_t{4} << 20;

  using event = tl::expected<std::string, line_too_long>;

  explicit line_splitter(std::size_t max_line_bytes = default_max_line_bytes) noexcept
      : max_line_bytes_(max_line_bytes) {}

  void feed(std::string_view bytes) {
    while (!bytes.empty()) {
      const std::size_t newline = bytes.find('\n');
      const std::string_view segment = bytes.substr(0, newline);
      if (!discarding_) append(segment);
      if (newline == std::string_view::npos) return;
      bytes.remove_prefix(newline + 1);
      if (discarding_) {
        discarding_ = false;
        continue;
      }
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      events_.emplace_back(std::move(partial_));
      partial_.clear();
    }
  }

  // End of input: an unterminated last line still counts as a line. Its trailing '\r'
  // was let past the limit as half of a terminator that never came: over the limit
  // with it, the line is too long.
  void finish() {
    if (!discarding_ && !partial_.empty()) {
      if (partial_.size() > max_line_bytes_)
        events_.emplace_back(tl::unexpected<line_too_long>(line_too_long{max_line_bytes_}));
      else
        events_.emplace_back(std::move(partial_));
    }
    partial_.clear();
    discarding_ = false;
  }

  [[nodiscard]] std::optional<event> next() {
    if (events_.empty()) return std::nullopt;
    event e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

  [[nodiscard]] std::size_t max_line_bytes() const noexcept { return max_line_bytes_; }
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return partial_.size(); }

 private:
  // A line may hold max_line_bytes_ bytes of content; one more is allowed only
  // while it is a '\r' that may turn out to be half of the "\r\n" terminator.
  void append(std::string_view segment) {
    if (segment.empty()) return;
    const std::size_t size = partial_.size() + segment.size();
    const bool ends_in_cr = segment.back() == '\r';
    if (size > max_line_bytes_ && !(size == max_line_bytes_ + 1 && ends_in_cr)) {
      partial_.clear();
      partial_.shrink_to_fit();
      discarding_ = true;
      events_.emplace_back(tl::unexpected<line_too_long>(line_too_long{max_line_bytes_}));
      return;
    }
    partial_.append(segment);
  }

  std::size_t max_line_bytes_;
  std::string partial_;
  bool discarding_ = false;
  std::deque<event> events_;
};

}  // namespace parley::jsonrpc
