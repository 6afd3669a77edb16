// SPDX-License-Identifier: MIT
// A Parley server by hand for client and bridge tests: it completes the upgrade and every hello, and answers each tool request as the test says, however badly.
#pragma once

#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::testing {

struct scripted_server {
  // The server's frames (already WebSocket-encoded) for a tool request; hello is answered by itself.
  std::function<std::string(const json& request)> answer;
  std::string session_id = "s-1";
  int hellos = 0;
  int requests = 0;
  bool linked = false;
  std::string to_client;

  // The old connection is gone; the next one starts with an upgrade request.
  void accept() {
    http_ = http_request_parser{};
    ws_.reset();
    to_client.clear();
    linked = true;
  }
  void drop() {
    linked = false;
    to_client.clear();
  }

  void receive(std::string_view bytes) {
    if (!linked) return;
    if (!ws_) {
      const auto r = http_.feed(bytes);
      if (r.status != http_parse_status::complete) return;
      const auto accept_key = validate_websocket_upgrade(http_.request());
      if (!accept_key) return;
      to_client += build_switching_protocols(*accept_key);
      ws_.emplace(role::server);
      bytes.remove_prefix(r.consumed);
    }
    ws_->receive(bytes);
    while (auto e = ws_->next_event()) {
      const auto* text = std::get_if<ws_text>(&*e);
      if (!text) continue;
      const json frame = json::parse(text->data, nullptr, false);
      if (!frame.is_object()) continue;
      const std::string tag = frame.value("_tag", "");
      if (tag == "hello") {
        ++hellos;
        to_client += encode_server_text_frame(encode_hello_ok({session_id, "token", "0.0.0"}));
      } else if (tag.rfind("tool.", 0) == 0) {
        ++requests;
        if (answer) to_client += answer(frame);
      }
    }
  }

 private:
  http_request_parser http_;
  std::optional<websocket> ws_;
};

// A tool.ok one byte over what any Parley peer accepts: the answer that made the bridge loop.
inline std::string oversized_tool_ok(const json& request) {
  const std::string id = request.value("requestId", "");
  std::string frame = encode_tool_ok(id, json{{"pad", ""}});
  const std::size_t pad = max_websocket_message_bytes + 1 - frame.size();
  return encode_server_text_frame(encode_tool_ok(id, json{{"pad", std::string(pad, 'x')}}));
}

}  // namespace parley::testing

namespace parley::testing {

// Runs `obj` (a client or a bridge) against `srv` until nothing is left to do before
// `until`, moving `t` from deadline to deadline. `receive` passes the server's bytes in;
// `seen` looks at each poll's actions and says whether they did anything. Returns the
// times at which it dialed.
template <class Obj, class Time, class Receive, class Seen>
std::vector<Time> run_scripted(Obj& obj, scripted_server& srv, Time& t, Time until, Receive receive, Seen seen) {
  std::vector<Time> dials;
  for (int round = 0; round < 100000; ++round) {
    auto a = obj.poll(t);
    bool moved = seen(a);
    if (!a.send.empty()) {
      srv.receive(a.send);
      moved = true;
    }
    if (a.close) {
      srv.drop();
      obj.disconnected(t);
      moved = true;
    }
    if (a.dial) {
      dials.push_back(t);
      srv.accept();
      obj.connected(t);
      moved = true;
    }
    if (!srv.to_client.empty()) {
      receive(std::exchange(srv.to_client, {}), t);
      moved = true;
    }
    if (moved) continue;
    if (!a.deadline || *a.deadline >= until) return dials;
    t = *a.deadline;
  }
  FAIL("run_scripted did not come to rest");
  return dials;
}

}  // namespace parley::testing
