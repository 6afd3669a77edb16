// SPDX-License-Identifier: MIT
// Invariant: for any interleaving of stdin bytes, server bytes (raw, or frames a server could send: hello answers,
// tool answers including ones over the WebSocket limit, room messages, closes), transport drops, time passing,
// the host reading stdout or not, and shutdown, the bridge never crashes or throws; every stdout line is one
// line of valid JSON, an object with "jsonrpc":"2.0" that is a response (id and exactly one of result/error) or a
// notification (method, no id); no id is answered more often than requests with that id were written to stdin;
// a message is acked to the server only after the stdout line pushing it was confirmed written; memory stays
// bounded: fed only while wants_input() (as the loop feeds it), unwritten stdout stays within its bound plus the
// output of one input; and once shut down, the bridge finishes by the close deadline.
#include <parley/parley.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using nlohmann::json;

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "bridge invariant violated: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

class fuzz_random {
 public:
  explicit fuzz_random(std::uint64_t seed) : gen_(seed) {}
  void operator()(unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(gen_());
  }

 private:
  std::mt19937_64 gen_;
};

struct fuzz_policy {
  using monotonic_clock = parley::simulated_monotonic_clock;
  using wall_clock = parley::simulated_wall_clock;
  using random = fuzz_random;
};

using fuzz_bridge = parley::basic_bridge<fuzz_policy>;
using mono_time = fuzz_bridge::time;

constexpr std::size_t stdout_bound = 4096;  // small, so backpressure is reached
constexpr std::size_t max_output_per_input = std::size_t{1} << 20;

// Reads the fuzz input front to back; past the end every read is zero.
struct reader {
  std::string_view data;
  [[nodiscard]] bool done() const { return data.empty(); }
  std::uint8_t byte() {
    if (data.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(data.front());
    data.remove_prefix(1);
    return b;
  }
  std::string_view bytes(std::size_t n) {
    n = std::min(n, data.size());
    const std::string_view out = data.substr(0, n);
    data.remove_prefix(n);
    return out;
  }
};

// The server's end of the connection, with the handshake done for the fuzzer.
struct fake_server {
  bool linked = false;
  bool restart_pending = false;  // the next resuming hello is refused, as after a server restart
  int session = 0;
  parley::http_request_parser http;
  std::optional<parley::websocket> ws;
  std::string to_client;
  std::deque<std::string> outstanding;  // request ids of tool requests not answered yet

  void accept() {
    linked = true;
    http = parley::http_request_parser{};
    ws.reset();
    to_client.clear();
    outstanding.clear();
  }

  void frame(const std::string& text) {
    if (ws) to_client += parley::encode_server_text_frame(text);
  }

  // Client bytes; returns the acks among them.
  std::vector<std::pair<std::string, std::uint64_t>> receive(std::string_view bytes) {
    std::vector<std::pair<std::string, std::uint64_t>> acks;
    if (!linked) return acks;
    if (!ws) {
      const auto r = http.feed(bytes);
      if (r.status != parley::http_parse_status::complete) return acks;
      const auto key = parley::validate_websocket_upgrade(http.request());
      if (!key) fail("the client's upgrade request is not valid", bytes);
      to_client += parley::build_switching_protocols(*key);
      ws.emplace(parley::role::server);
      bytes.remove_prefix(r.consumed);
    }
    ws->receive(bytes);
    while (auto e = ws->next_event()) {
      if (auto* failure = std::get_if<parley::ws_failure>(&*e)) fail("the client broke WebSocket framing", failure->reason);
      const auto* text = std::get_if<parley::ws_text>(&*e);
      if (!text) continue;
      const json j = json::parse(text->data, nullptr, false);
      const std::string tag = j.is_object() ? j.value("_tag", "") : "";
      const bool decodes = tag == "hello" ? parley::decode_hello(text->data).has_value()
                                          : parley::decode_client_frame(text->data).has_value();
      if (!decodes) fail("the client sent a frame the server cannot decode", text->data);
      if (tag == "hello") {
        if (restart_pending && j.contains("resume")) {
          restart_pending = false;
          this->frame(R"({"_tag":"hello.err","code":"UnknownSessionError","message":"no such session"})");
          to_client += ws->encode_close(4002, "");
        } else {
          if (!j.contains("resume")) ++session;
          this->frame(parley::encode_hello_ok({"s-" + std::to_string(session), std::string(43, 't'), "0.0.0"}));
        }
      } else if (tag == "ack") {
        acks.emplace_back(j.value("room", ""), j.value("seq", std::uint64_t{0}));
      } else if (tag.rfind("tool.", 0) == 0) {
        outstanding.push_back(j.value("requestId", ""));
      }
    }
    return acks;
  }
};

struct harness {
  fuzz_bridge bridge;
  fake_server server;
  mono_time now{std::chrono::milliseconds(1'000'000)};
  std::map<std::string, int> requests_by_id;  // id (its JSON) → requests written with it
  std::map<std::string, int> answers_by_id;
  std::string stdin_line;  // the part line written so far, to count requests as the bridge sees them
  parley::stdout_batch handed = parley::stdout_batch::none;
  std::map<std::uint64_t, std::vector<std::pair<std::string, std::uint64_t>>> pushes_by_batch;
  std::set<std::pair<std::string, std::uint64_t>> written_pushes;
  bool host_reads = true;
  bool shut_down = false;
  std::optional<mono_time> shutdown_at;

  explicit harness(std::uint64_t seed) : bridge(config(), fuzz_random(seed)) {}

  static parley::bridge_config config() {
    parley::bridge_config c;
    c.max_unwritten_stdout_bytes = stdout_bound;
    c.read_buffer_messages = 16;
    return c;
  }

  void count_stdin(std::string_view bytes) {
    for (char c : bytes) {
      if (c != '\n') {
        stdin_line.push_back(c);
        continue;
      }
      const json j = json::parse(stdin_line, nullptr, false);
      if (j.is_object() && j.contains("id")) ++requests_by_id[j["id"].dump()];  // an upper bound: enough
      stdin_line.clear();
    }
  }

  void check_lines(const std::vector<std::string>& lines, parley::stdout_batch batch) {
    for (const auto& line : lines) {
      if (line.find('\n') != std::string::npos) fail("raw line break", line);
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) fail("not a JSON object", line);
      if (j.value("jsonrpc", json()) != "2.0") fail("no jsonrpc 2.0", line);
      if (j.contains("id")) {
        if (j.contains("result") == j.contains("error")) fail("response without exactly one of result/error", line);
        if (j.contains("method")) fail("response with a method", line);
        if (j["id"].is_null()) continue;
        const std::string id = j["id"].dump();
        if (++answers_by_id[id] > requests_by_id[id]) fail("an id answered more often than it was asked", line);
      } else if (!j.contains("method") || !j["method"].is_string()) {
        fail("neither response nor notification", line);
      } else if (j["method"] == "notifications/claude/channel") {
        const json& meta = j["params"]["meta"];
        if (meta.contains("seq") && meta.contains("room") && meta.contains("message_id"))
          pushes_by_batch[static_cast<std::uint64_t>(batch)].emplace_back(
              meta["room"].get<std::string>(), std::stoull(meta["seq"].get<std::string>()));
      }
    }
  }

  void written() {
    bridge.stdout_written(handed);
    for (auto it = pushes_by_batch.begin();
         it != pushes_by_batch.end() && it->first <= static_cast<std::uint64_t>(handed);) {
      written_pushes.insert(it->second.begin(), it->second.end());
      it = pushes_by_batch.erase(it);
    }
  }

  // What the loop does after every input.
  void pump() {
    for (int round = 0; round < 64; ++round) {
      auto a = bridge.poll(now);
      check_lines(a.stdout_lines, a.batch);
      if (a.batch != parley::stdout_batch::none) handed = a.batch;
      if (host_reads && !a.stdout_lines.empty()) written();
      if (bridge.unwritten_stdout_bytes() > stdout_bound + max_output_per_input)
        fail("unwritten stdout past its bound", std::to_string(bridge.unwritten_stdout_bytes()));
      bool moved = !a.stdout_lines.empty() && host_reads;
      if (!a.send.empty()) {
        for (const auto& ack : server.receive(a.send))
          if (!written_pushes.count(ack)) fail("acked a message whose push was not written", ack.first);
        moved = true;
      }
      if (a.close) {
        server.linked = false;
        bridge.disconnected(now);
        moved = true;
      }
      if (a.dial) {
        server.accept();
        bridge.connected(now);
        moved = true;
      }
      if (server.linked && !server.to_client.empty()) {
        bridge.receive_socket(std::exchange(server.to_client, {}), now);
        moved = true;
      }
      if (!moved) return;
    }
  }

  void stdin(std::string_view bytes) {
    if (shut_down || !bridge.wants_input()) return;  // the loop reads only while the bridge wants input
    count_stdin(bytes);
    bridge.receive_stdin(bytes, now);
  }

  std::string templated_request(reader& in) {
    const int id = in.byte() % 8;
    static const char* const rooms[] = {"ops", "lobby", "a-b"};
    const std::string room = rooms[in.byte() % 3];
    json params;
    switch (in.byte() % 10) {
      case 0:
        return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "initialize"},
                    {"params", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()}}}}
            .dump();
      case 1: return R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
      case 2: return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "ping"}}.dump();
      case 3: return json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", id}}}}.dump();
      case 4: params = {{"name", "join_room"}, {"arguments", {{"room", room}}}}; break;
      case 5: params = {{"name", "send_message"}, {"arguments", {{"room", room}, {"body", "hi"}}}}; break;
      case 6: params = {{"name", "leave_room"}, {"arguments", {{"room", room}}}}; break;
      case 7: params = {{"name", "read_messages"}, {"arguments", {{"wait_ms", in.byte() * 100}}}}; break;
      case 8: params = {{"name", "who_is_here"}, {"arguments", {{"room", room}}}}; break;
      default: return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/list"}}.dump();
    }
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", std::move(params)}}.dump();
  }

  void answer(reader& in) {
    if (server.outstanding.empty() || !server.ws) return;
    const std::string id = server.outstanding.front();
    server.outstanding.pop_front();
    switch (in.byte() % 4) {
      case 0: server.frame(parley::encode_tool_ok(id, {{"room", "ops"}, {"nickname", "n"}, {"membersCount", 1}})); break;
      case 1:
        server.frame(json{{"_tag", "tool.err"}, {"requestId", id}, {"code", in.byte() % 2 ? "NicknameTakenError" : "NotInRoomError"},
                          {"message", "no"}}
                         .dump());
        break;
      case 2: {  // one byte over every Parley peer's limit: the bridge closes with 1009
        const std::size_t pad = parley::max_websocket_message_bytes + 1 - parley::encode_tool_ok(id, {{"p", ""}}).size();
        server.frame(parley::encode_tool_ok(id, {{"p", std::string(pad, 'x')}}));
        break;
      }
      default: server.frame(parley::encode_tool_ok(id, {{"seq", in.byte()}, {"messageId", "m"}, {"sentAt", "t"}}));
    }
  }

  void run(reader& in) {
    pump();  // the loop polls before it reads anything: the first dial is under way
    while (!in.done()) {
      const std::uint8_t op = in.byte();
      switch (op % 12) {
        case 0: stdin(in.bytes(in.byte())); break;
        case 1: stdin(templated_request(in) + "\n"); break;
        case 2:
          if (server.linked) bridge.receive_socket(in.bytes(in.byte()), now);
          break;
        case 3: server.frame(std::string(in.bytes(in.byte()))); break;
        case 4: answer(in); break;
        case 5: {
          parley::room_message_frame m{"ops", in.byte() % 16u, "m", "alice", "body", "2025-01-01T00:00:00Z"};
          if (in.byte() % 2) m.room = "lobby";
          server.frame(parley::encode_room_message(m));
          break;
        }
        case 6:
          if (server.ws) server.to_client += server.ws->encode_close(static_cast<std::uint16_t>(1000 + in.byte()), "");
          break;
        case 7:
          if (server.linked) {
            server.linked = false;
            bridge.disconnected(now);
          }
          break;
        case 8: now += std::chrono::milliseconds(in.byte() * 97); break;
        case 9: now += std::chrono::seconds(in.byte()); break;
        case 10:
          host_reads = !host_reads;
          if (host_reads) written();
          break;
        default:
          if (op & 0x80) server.restart_pending = true;
          else if (!shut_down) {
            shut_down = true;
            shutdown_at = now;
            bridge.shutdown(now);
          }
      }
      pump();
    }
    // The end: the host reads everything, stdin ends, and the bridge must finish by its close deadline.
    host_reads = true;
    written();
    if (!shut_down) {
      shut_down = true;
      shutdown_at = now;
      bridge.shutdown(now);
    }
    pump();
    now += std::chrono::milliseconds(500);
    pump();
    if (!bridge.finished()) fail("not finished 500 ms after shutdown", "");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reader in{std::string_view(reinterpret_cast<const char*>(data), size)};
  harness h(in.byte());
  h.run(in);
  return 0;
}
