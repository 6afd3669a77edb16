// SPDX-License-Identifier: MIT
// Cluster nodes whose room messages a shared log orders: two hubs and an in-memory log standing in for JetStream.
#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

using namespace parley;
using namespace parley::testing;

namespace {

// One hub configured as a cluster node.
struct node {
  test_store store;
  test_hub h;
  node(std::string id, std::uint64_t seed)
      : h(std::move(*test_hub::open(store, testing::seeded_random(seed), config(std::move(id))))) {}

  static hub_config config(std::string id) {
    hub_config c;
    c.node_id = std::move(id);
    return c;
  }

  session_handle member_of(const std::string& room, const std::string& nickname) {
    const session_handle s = h.open_session(epoch).handle;
    REQUIRE(h.join_room(s, {room, nickname}, epoch));
    return s;
  }

  result<std::optional<send_message_result>> send(session_handle s, const std::string& room, std::string body,
                                                  const std::string& request_id,
                                                  std::optional<std::string> key = std::nullopt) {
    return h.send_message(s, {room, std::move(body), std::move(key)}, epoch, request_id);
  }

  std::vector<json> received(session_handle s) {
    std::vector<json> out;
    for (const auto& f : h.drain(s)) out.push_back(json::parse(*f));
    return out;
  }
};

// The stream: one sequence for every room, records kept as bytes, and a copy with a
// message id already in the log dropped, as JetStream's de-duplication window does.
struct log_of_messages {
  std::vector<std::pair<std::uint64_t, std::string>> records;
  std::set<std::string> ids;
  std::uint64_t next_seq = 1;

  void append(const bus_message& m) {
    if (!ids.insert(m.message_id).second) return;
    records.emplace_back(next_seq++, encode_bus_message(m));
  }

  // Takes what each node published, in the order given, then delivers the log from
  // `from` on to every node, as each node's ordered consumer would.
  void pump(std::initializer_list<node*> nodes, std::size_t from = 0) {
    std::vector<bus_message> out;
    for (node* n : nodes) {
      n->h.take_published(out);
      for (const auto& m : out) append(m);
    }
    for (node* n : nodes)
      for (std::size_t i = from; i < records.size(); ++i) {
        auto m = decode_bus_message(records[i].second);
        REQUIRE(m);
        n->h.bus_delivered(*m, records[i].first, epoch);
      }
  }
};

}  // namespace

TEST_CASE("cluster nodes deliver each other's messages in the log's order, answer the sender with its seq, never echo") {
  node one("n1", 1), two("n2", 2);
  log_of_messages log;
  const auto alice = one.member_of("lobby", "alice");
  const auto bob = two.member_of("lobby", "bob");
  const auto carol = two.member_of("lobby", "carol");

  auto sent = one.send(alice, "lobby", "hello from one", "r1");
  REQUIRE(sent);
  CHECK_FALSE(*sent);  // answered once the log has ordered it
  CHECK(one.received(alice).empty());
  auto sent_too = two.send(bob, "lobby", "hello from two", "r2");
  REQUIRE(sent_too);
  CHECK_FALSE(*sent_too);

  log.pump({&two, &one});  // two's send reached the log first

  auto to_alice = one.received(alice);
  REQUIRE(to_alice.size() == 2);
  CHECK(to_alice[0]["_tag"] == "room.message");
  CHECK(to_alice[0]["seq"] == 1);
  CHECK(to_alice[0]["fromNickname"] == "bob");
  CHECK(to_alice[0]["body"] == "hello from two");
  CHECK(to_alice[1]["_tag"] == "tool.ok");  // her own message: the answer, not an echo
  CHECK(to_alice[1]["requestId"] == "r1");
  CHECK(to_alice[1]["result"]["seq"] == 2);

  auto to_bob = two.received(bob);
  REQUIRE(to_bob.size() == 2);
  CHECK(to_bob[0]["_tag"] == "tool.ok");
  CHECK(to_bob[0]["result"]["seq"] == 1);
  CHECK(to_bob[1]["seq"] == 2);
  CHECK(to_bob[1]["fromNickname"] == "alice");
  CHECK(to_bob[1]["messageId"] == to_alice[1]["result"]["messageId"]);

  auto to_carol = two.received(carol);
  REQUIRE(to_carol.size() == 2);
  CHECK(to_carol[0]["body"] == "hello from two");
  CHECK(to_carol[1]["body"] == "hello from one");
  CHECK(one.h.stats().messages_total == 2);
  CHECK(one.h.pending_sends() == 0);
  CHECK(two.h.pending_sends() == 0);
}

TEST_CASE("a room's seqs are the log's: strictly increasing, with gaps where other rooms' messages fall") {
  node one("n1", 1), two("n2", 2);
  log_of_messages log;
  const auto a = one.member_of("lobby", "a");
  const auto b = two.member_of("lobby", "b");
  const auto c = one.member_of("other", "c");
  two.member_of("other", "d");
  REQUIRE(one.send(a, "lobby", "1", "r1"));
  REQUIRE(one.send(c, "other", "2", "r2"));
  REQUIRE(one.send(a, "lobby", "3", "r3"));
  log.pump({&one, &two});
  auto got = two.received(b);
  REQUIRE(got.size() == 2);
  CHECK(got[0]["seq"] == 1);
  CHECK(got[1]["seq"] == 3);
  // The gap is nobody's loss: an ack of 3 is in range, and acking it clears the ring.
  CHECK(two.h.ack(b, ack_frame{"lobby", 3}));
}

TEST_CASE("a redelivered record (a restarted subscription) reaches nobody twice and answers nobody twice") {
  node one("n1", 1), two("n2", 2);
  log_of_messages log;
  const auto a = one.member_of("lobby", "a");
  const auto b = two.member_of("lobby", "b");
  REQUIRE(one.send(a, "lobby", "once", "r1"));
  log.pump({&one, &two});
  CHECK(one.received(a).size() == 1);
  CHECK(two.received(b).size() == 1);
  log.pump({&one, &two}, 0);  // the whole log again
  CHECK(one.received(a).empty());
  CHECK(two.received(b).empty());
  CHECK(one.h.stats().bus_records_behind_total == 1);
  CHECK(two.h.stats().bus_records_behind_total == 1);
}

TEST_CASE("a log that lost its records and numbers from 1 again is reported, and a sender behind it hears an error") {
  node one("n1", 1), two("n2", 2);
  log_of_messages log;
  const auto a = one.member_of("lobby", "a");
  const auto b = two.member_of("lobby", "b");
  REQUIRE(one.send(a, "lobby", "before", "r1"));
  REQUIRE(one.send(a, "lobby", "before", "r2"));
  log.pump({&one, &two});
  CHECK(two.received(b).size() == 2);
  CHECK(one.received(a).size() == 2);

  log_of_messages restarted;  // a lone NATS node restarted: memory storage, numbering from 1
  REQUIRE(one.send(a, "lobby", "after", "r3"));
  restarted.pump({&one, &two});
  CHECK(two.received(b).empty());
  CHECK(two.h.stats().bus_records_behind_total == 1);
  auto answer = one.received(a);
  REQUIRE(answer.size() == 1);
  CHECK(answer[0]["_tag"] == "tool.err");
  CHECK(answer[0]["requestId"] == "r3");
  CHECK(one.h.pending_sends() == 0);
}

TEST_CASE("a clientMsgId retry while pending rides on the first send; afterwards it gets the first result") {
  node one("n1", 1), two("n2", 2);
  log_of_messages log;
  const auto a = one.member_of("lobby", "a");
  const auto b = two.member_of("lobby", "b");
  REQUIRE(one.send(a, "lobby", "x", "r1", "key-1"));
  REQUIRE(one.send(a, "lobby", "x", "r2", "key-1"));
  log.pump({&one, &two});
  CHECK(log.records.size() == 1);
  auto answers = one.received(a);
  REQUIRE(answers.size() == 2);
  CHECK(answers[0]["requestId"] == "r1");
  CHECK(answers[1]["requestId"] == "r2");
  CHECK(answers[0]["result"] == answers[1]["result"]);
  CHECK(two.received(b).size() == 1);

  auto later = one.send(a, "lobby", "x", "r3", "key-1");
  REQUIRE(later);
  REQUIRE(*later);  // the idempotency window answers at once
  CHECK(json(**later) == answers[0]["result"]);
  std::vector<bus_message> published;
  one.h.take_published(published);
  CHECK(published.empty());
}

TEST_CASE("a refused send is answered with an error; its retry republishes the same message, delivered once") {
  node one("n1", 1), two("n2", 2);
  log_of_messages log;
  const auto a = one.member_of("lobby", "a");
  const auto b = two.member_of("lobby", "b");
  REQUIRE(one.send(a, "lobby", "x", "r1", "key-1"));
  std::vector<bus_message> published;
  one.h.take_published(published);
  REQUIRE(published.size() == 1);
  log.append(published[0]);  // the bus took it, but its confirmation was lost
  one.h.bus_refused(published[0].message_id);
  auto refused = one.received(a);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0]["_tag"] == "tool.err");
  CHECK(refused[0]["code"] == "InternalError");
  CHECK(refused[0]["requestId"] == "r1");

  REQUIRE(one.send(a, "lobby", "x", "r2", "key-1"));
  log.pump({&one, &two});
  CHECK(log.records.size() == 1);  // the republished copy was dropped by its id
  auto answers = one.received(a);
  REQUIRE(answers.size() == 1);
  CHECK(answers[0]["requestId"] == "r2");
  CHECK(answers[0]["result"]["messageId"] == published[0].message_id);
  CHECK(two.received(b).size() == 1);
  CHECK(one.h.pending_sends() == 0);
}

TEST_CASE("a refused send without a clientMsgId is an error, delivered to nobody, and forgotten") {
  node one("n1", 1), two("n2", 2);
  const auto a = one.member_of("lobby", "a");
  const auto b = two.member_of("lobby", "b");
  REQUIRE(one.send(a, "lobby", "x", "r1"));
  std::vector<bus_message> published;
  one.h.take_published(published);
  one.h.bus_refused(published.at(0).message_id);
  auto refused = one.received(a);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0]["_tag"] == "tool.err");
  CHECK(two.received(b).empty());
  CHECK(one.h.pending_sends() == 0);
}

TEST_CASE("a sender whose session ends before the log answers leaves nothing pending; its message still reaches the room") {
  node one("n1", 1), two("n2", 2);
  log_of_messages log;
  const auto a = one.member_of("lobby", "a");
  const auto b = two.member_of("lobby", "b");
  REQUIRE(one.send(a, "lobby", "last words", "r1", "key"));
  one.h.end_session(a, epoch);
  CHECK(one.h.pending_sends() == 0);
  log.pump({&one, &two});
  auto got = two.received(b);
  REQUIRE(got.size() == 1);
  CHECK(got[0]["body"] == "last words");
}

TEST_CASE("a node still refuses what any server refuses before anything reaches the bus") {
  node one("n1", 1);
  const auto a = one.member_of("lobby", "a");
  CHECK(one.send(a, "lobby", "", "r1").error().code == error_code::invalid_argument);
  CHECK(one.send(a, "elsewhere", "x", "r2").error().code == error_code::not_in_room);
  CHECK(one.h.send_message(a, {"lobby", "x", std::nullopt}, epoch).error().code == error_code::internal);  // needs a request id
  std::vector<bus_message> published;
  one.h.take_published(published);
  CHECK(published.empty());
  CHECK(one.h.pending_sends() == 0);
}

TEST_CASE("serve_client_text leaves a node's send unanswered until the log orders it") {
  node one("n1", 1);
  const auto a = one.member_of("lobby", "a");
  CHECK_FALSE(serve_client_text(one.h, a, R"({"_tag":"tool.send_message","requestId":"7","room":"lobby","body":"hi"})", epoch));
  auto refused = serve_client_text(one.h, a, R"({"_tag":"tool.send_message","requestId":"8","room":"nowhere","body":"hi"})", epoch);
  REQUIRE(refused);
  CHECK(json::parse(*refused)["code"] == "NotInRoomError");
  std::vector<bus_message> published;
  one.h.take_published(published);
  REQUIRE(published.size() == 1);
  CHECK(published[0].body == "hi");
  CHECK(published[0].node == "n1");
}

TEST_CASE("bus records are checked like a client's frame: anything malformed is refused, never delivered") {
  const bus_message good{"lobby", "0190a3c4-0000-7000-8000-000000000000", "alice", member_kind::person, "hi",
                         "2026-11-22T00:00:00.000Z", "n1", "s1"};
  auto round = decode_bus_message(encode_bus_message(good));
  REQUIRE(round);
  CHECK(*round == good);
  for (const char* bad : {"", "[]", "not json", R"({"room":"lobby"})",
                          R"({"room":"Lobby!","messageId":"m","fromNickname":"a","body":"x","sentAt":"t","node":"n","session":"s"})",
                          R"({"room":"lobby","messageId":"m","fromNickname":"-a","body":"x","sentAt":"t","node":"n","session":"s"})",
                          R"({"room":"lobby","messageId":"m","fromNickname":"a","body":"","sentAt":"t","node":"n","session":"s"})",
                          R"({"room":"lobby","messageId":"m","fromNickname":"a","body":"x","sentAt":"t","node":"n","session":7})",
                          R"({"room":"lobby","messageId":"m","fromNickname":"a","body":"x","sentAt":"t","node":"n","session":"s","fromKind":"robot"})"}) {
    CAPTURE(bad);
    CHECK_FALSE(decode_bus_message(bad));
  }
  const std::string too_big(default_max_body_bytes + 1, 'x');
  bus_message big = good;
  big.body = too_big;
  CHECK_FALSE(decode_bus_message(encode_bus_message(big)));
}
