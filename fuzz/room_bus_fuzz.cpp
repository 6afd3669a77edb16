// SPDX-License-Identifier: MIT
// Invariant: for any bytes read from the bus, decode_bus_message never crashes or throws; a record it accepts
// satisfies the rules a client's send must (room slug, nickname, non-empty UTF-8 body within the bound) and
// survives encode/decode unchanged; and a cluster hub handed it under any seq never crashes, never delivers it
// to the session that sent it, delivers each room's records in strictly increasing seq order, and answers a
// pending send of its own at most once.
#include <parley/parley.hpp>

#include "splitmix_random.hpp"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace {

using namespace parley;

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // The first byte picks seqs, the rest is records separated by newlines.
  const std::uint8_t seq_step = data[0];
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  simulated_policy::room_store store;
  hub_config config;
  config.node_id = "n1";
  auto opened = basic_hub<simulated_policy>::open(store, simulation::splitmix_random(size), config);
  require(opened.has_value());
  auto& h = *opened;
  const simulated_moment now = simulated_epoch;
  const auto sender = h.open_session(now);
  const auto other = h.open_session(now);
  require(h.join_room(sender.handle, {"lobby", std::string("alice")}, now).has_value());
  require(h.join_room(other.handle, {"lobby", std::string("bob")}, now).has_value());
  require(h.send_message(sender.handle, {"lobby", "hi", std::nullopt}, now, "r1").has_value());
  std::vector<bus_message> published;
  h.take_published(published);
  require(published.size() == 1);

  std::uint64_t seq = 0;
  std::map<std::string, std::uint64_t> last_delivered;
  int answers = 0;
  auto feed = [&](const bus_message& m) {
    seq = (seq_step & 0x80) ? seq + (seq_step & 0x7f) : seq + 1 + (seq_step & 3);  // steps of 0 repeat seqs
    h.bus_delivered(m, seq, now);
    for (const auto& frame : h.drain(other.handle)) {
      const auto j = nlohmann::json::parse(*frame);
      if (j["_tag"] != "room.message") continue;
      const std::uint64_t s = j["seq"].get<std::uint64_t>();
      auto& last = last_delivered[j["room"].get<std::string>()];
      require(s > last);
      last = s;
    }
    for (const auto& frame : h.drain(sender.handle)) {
      const auto j = nlohmann::json::parse(*frame);
      require(j["_tag"] != "room.message" || j["fromNickname"] != "alice" || j["messageId"] != published[0].message_id);
      if (j["_tag"] == "tool.ok" || j["_tag"] == "tool.err") ++answers;
    }
  };

  while (!input.empty()) {
    const std::size_t nl = input.find('\n');
    const std::string_view line = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
    auto record = decode_bus_message(line);
    if (!record) {
      if (line == "own") feed(published[0]);  // the node's own pending send, at some point in the stream
      continue;
    }
    require(check_room_slug("room", record->room).has_value());
    require(check_nickname("fromNickname", record->from_nickname).has_value());
    require(check_body(record->body).has_value());
    auto again = decode_bus_message(encode_bus_message(*record));
    require(again.has_value() && *again == *record);
    feed(*record);
  }
  require(answers <= 1);
  return 0;
}
