// SPDX-License-Identifier: MIT
// nats_link against a real nats-server -js on a loopback port: stream order across two links,
// KV create races, watches, and a NATS restart.
#include "nats_link.hpp"
#include "temp_dir.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <doctest/doctest.h>
#include <nats/nats.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using namespace parley_tools;
using namespace std::chrono_literals;

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  dirs += ":/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start < dirs.size()) {
    const auto end = std::min(dirs.find(':', start), dirs.size());
    const auto candidate = std::filesystem::path(dirs.substr(start, end - start)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return {};
}

// prefix + n, appended: GCC 12 at -O3 warns falsely (-Wrestrict) on "literal" + std::to_string(n).
std::string numbered(std::string prefix, long n) {
  prefix += std::to_string(n);
  return prefix;
}

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return addr;
}

// A port nobody listens on now; the server takes it a moment later (a race tests accept).
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto addr = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto addr = loopback(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// nats-server -js on 127.0.0.1:port, its JetStream store and its log under `dir`.
class nats_server {
 public:
  explicit nats_server(std::filesystem::path dir, std::vector<std::string> extra_args = {})
      : dir_(std::move(dir)), extra_args_(std::move(extra_args)), port_(free_loopback_port()) {
    start();
  }
  ~nats_server() { stop(SIGTERM); }
  nats_server(const nats_server&) = delete;
  nats_server& operator=(const nats_server&) = delete;

  [[nodiscard]] std::string url() const { return numbered("nats://127.0.0.1:", port_); }

  // Same port, same store directory: what a restarted node looks like to its clients.
  void start() {
    const std::string program = find_on_path("nats-server");
    // Not skipped: scripts/install-deps.sh installs nats-server, so its absence is a broken setup.
    REQUIRE_MESSAGE(!program.empty(), "nats-server is not installed: run scripts/install-deps.sh");
    const std::string log = (dir_ / "nats-server.log").string();
    std::vector<std::string> args{program, "-js",        "-a", "127.0.0.1", "-p", std::to_string(port_),
                                  "-sd",   dir_.string(), "-l", log};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    REQUIRE(::posix_spawn(&pid_, program.c_str(), nullptr, nullptr, argv.data(), environ) == 0);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!port_accepts(port_) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    REQUIRE_MESSAGE(port_accepts(port_), "nats-server did not listen on " << url() << "; see " << log);
  }

  void stop(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::filesystem::path dir_;
  std::vector<std::string> extra_args_;
  int port_;
  pid_t pid_ = -1;
};

// Runs the io_context until `done()` or the timeout; true if done.
bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();  // out of work until the worker posts
    io.run_one_for(10ms);
  }
  return true;
}

// Waits for one completion and returns its result.
template <class T>
nats_result<T> await(asio::io_context& io, const std::function<void(nats_link::completion<T>)>& start) {
  std::optional<nats_result<T>> got;
  start([&](nats_result<T> r) { got = std::move(r); });
  if (!run_until(io, [&] { return got.has_value(); })) return tl::unexpected<std::string>("timed out");
  return std::move(*got);
}

nats_options options_for(const nats_server& server, std::string name) {
  nats_options o;
  o.servers = {server.url()};
  o.name = std::move(name);
  o.reconnect_wait = 100ms;
  o.request_timeout = 3s;
  return o;
}

void connect(asio::io_context& io, nats_link& link, nats_options options) {
  auto r = await<void>(io, [&](auto done) { link.connect(std::move(options), std::move(done)); });
  REQUIRE_MESSAGE(r.has_value(), r.error());
}

struct fixture {
  parley_tools::testing::temp_dir dir;
  nats_server server{dir.path()};
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
};

}  // namespace

TEST_CASE("split_server_urls: a comma-separated list, blanks dropped") {
  CHECK(split_server_urls("nats://a:1, nats://b:2,,") == std::vector<std::string>{"nats://a:1", "nats://b:2"});
  CHECK(split_server_urls("").empty());
}

TEST_CASE("nats_link: calls before connect fail with a message, on the io_context") {
  asio::io_context io;
  nats_link link(io);
  auto r = await<void>(io, [&](auto done) { link.ensure_stream({"S", {"s.>"}}, std::move(done)); });
  REQUIRE_FALSE(r.has_value());
  INFO(r.error());
  CHECK(r.error().find("not connected") != std::string::npos);
}

TEST_CASE("nats_link: two links publish 1000 messages; both ordered consumers see one order") {
  fixture f;
  nats_link a(f.io), b(f.io);
  connect(f.io, a, options_for(f.server, "a"));
  connect(f.io, b, options_for(f.server, "b"));
  nats_stream_config config{"ROOMS", {"rooms.>"}, 3600s, 10000, 1};
  REQUIRE(await<void>(f.io, [&](auto done) { a.ensure_stream(config, std::move(done)); }).has_value());
  // The second node does the same at its start: same configuration, no error.
  REQUIRE(await<void>(f.io, [&](auto done) { b.ensure_stream(config, std::move(done)); }).has_value());

  std::vector<nats_stream_message> seen_a, seen_b;
  auto sub_a = await<nats_link::id>(f.io, [&](auto ready) {
    a.subscribe_ordered("ROOMS", "rooms.lobby", 1, [&](nats_stream_message m) { seen_a.push_back(std::move(m)); },
                        std::move(ready));
  });
  auto sub_b = await<nats_link::id>(f.io, [&](auto ready) {
    b.subscribe_ordered("ROOMS", "rooms.>", std::nullopt,
                        [&](nats_stream_message m) { seen_b.push_back(std::move(m)); }, std::move(ready));
  });
  REQUIRE_MESSAGE(sub_a.has_value(), sub_a.error());
  REQUIRE_MESSAGE(sub_b.has_value(), sub_b.error());

  constexpr int per_link = 500;
  std::vector<std::uint64_t> acked;
  std::vector<std::string> failures;
  for (int i = 0; i < per_link; ++i) {
    for (auto* link : {&a, &b}) {
      const std::string body = numbered(link == &a ? "a" : "b", i);
      link->publish("rooms.lobby", body, {{"Parley-From", link == &a ? "a" : "b"}}, [&](nats_result<std::uint64_t> r) {
        if (r)
          acked.push_back(*r);
        else
          failures.push_back(r.error());
      });
    }
  }
  REQUIRE(run_until(f.io, [&] { return acked.size() + failures.size() == 2 * per_link; }));
  CHECK(failures.empty());
  REQUIRE(run_until(f.io, [&] { return seen_a.size() >= 2 * per_link && seen_b.size() >= 2 * per_link; }));
  REQUIRE(seen_a.size() == 2 * per_link);
  REQUIRE(seen_b.size() == 2 * per_link);
  std::sort(acked.begin(), acked.end());
  for (std::size_t i = 0; i < seen_a.size(); ++i) {
    if (i > 0) REQUIRE(seen_a[i].seq > seen_a[i - 1].seq);
    REQUIRE(seen_a[i].seq == seen_b[i].seq);
    REQUIRE(seen_a[i].payload == seen_b[i].payload);
    REQUIRE(seen_a[i].seq == acked[i]);
  }
  CHECK(seen_b.front().subject == "rooms.lobby");
  REQUIRE(seen_a.front().headers.size() == 1);
  CHECK(seen_a.front().headers.front().first == "Parley-From");
  // Each link's own messages keep its publish order inside the one stream order.
  int next_from_a = 0;
  for (const auto& m : seen_a)
    if (m.payload[0] == 'a') CHECK(m.payload == numbered("a", next_from_a++));
  a.unsubscribe(*sub_a);
  b.unsubscribe(*sub_b);
}

TEST_CASE("nats_link: KV create-if-absent from two links; exactly one wins, a delete frees the key") {
  fixture f;
  nats_link a(f.io), b(f.io);
  connect(f.io, a, options_for(f.server, "a"));
  connect(f.io, b, options_for(f.server, "b"));
  nats_bucket_config config{"nicknames", 0ms, 1};
  REQUIRE(await<void>(f.io, [&](auto done) { a.ensure_bucket(config, std::move(done)); }).has_value());
  REQUIRE(await<void>(f.io, [&](auto done) { b.ensure_bucket(config, std::move(done)); }).has_value());

  std::optional<nats_result<nats_kv_create_outcome>> from_a, from_b;
  a.kv_create("nicknames", "lobby.alice", "session-a", [&](auto r) { from_a = std::move(r); });
  b.kv_create("nicknames", "lobby.alice", "session-b", [&](auto r) { from_b = std::move(r); });
  REQUIRE(run_until(f.io, [&] { return from_a && from_b; }));
  REQUIRE_MESSAGE(from_a->has_value(), from_a->error());
  REQUIRE_MESSAGE(from_b->has_value(), from_b->error());
  const bool a_won = **from_a == nats_kv_create_outcome::created;
  CHECK(a_won != (**from_b == nats_kv_create_outcome::created));
  CHECK((a_won ? **from_b : **from_a) == nats_kv_create_outcome::taken);

  auto got = await<std::optional<nats_kv_entry>>(f.io, [&](auto done) { b.kv_get("nicknames", "lobby.alice", std::move(done)); });
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK((*got)->value == (a_won ? "session-a" : "session-b"));

  REQUIRE(await<void>(f.io, [&](auto done) { a.kv_delete("nicknames", "lobby.alice", std::move(done)); }).has_value());
  got = await<std::optional<nats_kv_entry>>(f.io, [&](auto done) { b.kv_get("nicknames", "lobby.alice", std::move(done)); });
  REQUIRE(got.has_value());
  CHECK_FALSE(got->has_value());
  auto again = await<nats_kv_create_outcome>(f.io, [&](auto done) { b.kv_create("nicknames", "lobby.alice", "session-b", std::move(done)); });
  REQUIRE_MESSAGE(again.has_value(), again.error());
  CHECK(*again == nats_kv_create_outcome::created);

  auto missing = await<void>(f.io, [&](auto done) { a.kv_delete("no-such-bucket", "k", std::move(done)); });
  CHECK_FALSE(missing.has_value());
}

TEST_CASE("nats_link: a bucket's TTL expires its entries") {
  fixture f;
  nats_link link(f.io);
  connect(f.io, link, options_for(f.server, "ttl"));
  auto made = await<void>(f.io, [&](auto done) { link.ensure_bucket({"heartbeats", 300ms, 1}, std::move(done)); });
  REQUIRE_MESSAGE(made.has_value(), made.error());
  REQUIRE(await<std::uint64_t>(f.io, [&](auto done) { link.kv_put("heartbeats", "node-a", "1", std::move(done)); }).has_value());
  auto got = await<std::optional<nats_kv_entry>>(f.io, [&](auto done) { link.kv_get("heartbeats", "node-a", std::move(done)); });
  REQUIRE(got.has_value());
  CHECK(got->has_value());
  std::this_thread::sleep_for(700ms);  // the server expires on its own timer, not to the millisecond
  got = await<std::optional<nats_kv_entry>>(f.io, [&](auto done) { link.kv_get("heartbeats", "node-a", std::move(done)); });
  REQUIRE(got.has_value());
  CHECK_FALSE(got->has_value());
}

TEST_CASE("nats_link: a KV watch on a prefix sees the current values, a put and a delete") {
  fixture f;
  nats_link a(f.io), b(f.io);
  connect(f.io, a, options_for(f.server, "a"));
  connect(f.io, b, options_for(f.server, "b"));
  nats_bucket_config config{"members", 0ms, 1};
  REQUIRE(await<void>(f.io, [&](auto done) { a.ensure_bucket(config, std::move(done)); }).has_value());
  REQUIRE(await<void>(f.io, [&](auto done) { b.ensure_bucket(config, std::move(done)); }).has_value());
  REQUIRE(await<std::uint64_t>(f.io, [&](auto done) { b.kv_put("members", "lobby.bob", "node-b", std::move(done)); }).has_value());

  std::vector<nats_kv_watch_event> events;
  auto watch = await<nats_link::id>(f.io, [&](auto ready) {
    a.kv_watch("members", "lobby", [&](nats_kv_watch_event e) { events.push_back(std::move(e)); }, std::move(ready));
  });
  REQUIRE_MESSAGE(watch.has_value(), watch.error());
  REQUIRE(run_until(f.io, [&] { return events.size() >= 2; }));
  REQUIRE(events[0].entry.has_value());
  CHECK(events[0].entry->key == "lobby.bob");
  CHECK_FALSE(events[1].entry.has_value());  // caught up

  REQUIRE(await<std::uint64_t>(f.io, [&](auto done) { b.kv_put("members", "elsewhere.carol", "node-b", std::move(done)); }).has_value());
  REQUIRE(await<std::uint64_t>(f.io, [&](auto done) { b.kv_put("members", "lobby.alice", "node-b", std::move(done)); }).has_value());
  REQUIRE(await<void>(f.io, [&](auto done) { b.kv_delete("members", "lobby.alice", std::move(done)); }).has_value());
  REQUIRE(run_until(f.io, [&] { return events.size() >= 4; }));
  REQUIRE(events[2].entry.has_value());
  CHECK(events[2].entry->key == "lobby.alice");
  CHECK(events[2].entry->value == "node-b");
  CHECK_FALSE(events[2].entry->deleted);
  REQUIRE(events[3].entry.has_value());
  CHECK(events[3].entry->key == "lobby.alice");
  CHECK(events[3].entry->deleted);
  CHECK(events[3].entry->revision > events[2].entry->revision);
  a.kv_unwatch(*watch);
  run_until(f.io, [] { return false; }, 100ms);
  CHECK(events.size() == 4);  // elsewhere.carol never showed
}

TEST_CASE("nats_link: NATS restarts; the link reports it and publishes again") {
  fixture f;
  nats_link link(f.io);
  std::vector<nats_connection_event> events;
  link.on_connection_event([&](nats_connection_event e) { events.push_back(e); });
  connect(f.io, link, options_for(f.server, "restart"));
  nats_stream_config config{"ROOMS", {"rooms.>"}, 0s, -1, 1};
  REQUIRE(await<void>(f.io, [&](auto done) { link.ensure_stream(config, std::move(done)); }).has_value());
  auto first = await<std::uint64_t>(f.io, [&](auto done) { link.publish("rooms.lobby", "before", std::move(done)); });
  REQUIRE_MESSAGE(first.has_value(), first.error());
  CHECK(*first == 1);

  f.server.stop(SIGKILL);
  REQUIRE(run_until(f.io, [&] { return !events.empty(); }));
  CHECK(events.front() == nats_connection_event::disconnected);
  f.server.start();
  REQUIRE(run_until(f.io, [&] { return events.size() >= 2; }));
  CHECK(events[1] == nats_connection_event::reconnected);

  // A memory stream does not survive its only server: ensure it again, as a node does on `reconnected`.
  REQUIRE(await<void>(f.io, [&](auto done) { link.ensure_stream(config, std::move(done)); }).has_value());
  auto after = await<std::uint64_t>(f.io, [&](auto done) { link.publish("rooms.lobby", "after", std::move(done)); });
  REQUIRE_MESSAGE(after.has_value(), after.error());
  // The memory stream came back empty, so its sequence starts again at 1: with a single NATS
  // node, stream sequences alone are not seqs that strictly increase across a NATS restart.
  CHECK(*after == 1);
  link.close();
  CHECK(events.size() == 2);  // nothing is reported after close(), not even `closed`
}

TEST_CASE("nats_link: the server list is tried in order; a dead first URL does not stop the connect") {
  fixture f;
  nats_link link(f.io);
  auto options = options_for(f.server, "list");
  options.servers.insert(options.servers.begin(), numbered("nats://127.0.0.1:", free_loopback_port()));
  connect(f.io, link, options);
  REQUIRE(await<void>(f.io, [&](auto done) { link.ensure_bucket({"b", 0ms, 1}, std::move(done)); }).has_value());
}

TEST_CASE("nats_link: a token server refuses a wrong token and lets the right one in; a failed connect can be retried") {
  parley_tools::testing::temp_dir dir;
  nats_server server(dir.path(), {"--auth", "s3cret"});
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  nats_link link(io);
  auto options = options_for(server, "token");
  options.token = "wrong";
  auto refused = await<void>(io, [&](auto done) { link.connect(options, std::move(done)); });
  REQUIRE_FALSE(refused.has_value());
  INFO(refused.error());
  CHECK(refused.error().find("NATS connect") != std::string::npos);
  options.token = "s3cret";
  connect(io, link, options);
  REQUIRE(await<void>(io, [&](auto done) { link.ensure_stream({"S", {"s.>"}}, std::move(done)); }).has_value());
}

TEST_CASE("nats_link: close() while NATS is away returns promptly and reports nothing more") {
  fixture f;
  nats_link link(f.io);
  int events = 0;
  link.on_connection_event([&](nats_connection_event) { ++events; });
  connect(f.io, link, options_for(f.server, "away"));
  REQUIRE(await<void>(f.io, [&](auto done) { link.ensure_stream({"S", {"s.>"}}, std::move(done)); }).has_value());
  f.server.stop(SIGKILL);
  REQUIRE(run_until(f.io, [&] { return events == 1; }));
  bool completed = false;
  link.publish("s.x", "while away", [&](auto) { completed = true; });  // buffered by libnats
  const auto start = std::chrono::steady_clock::now();
  link.close();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  run_until(f.io, [] { return false; }, 100ms);
  CHECK_FALSE(completed);
  CHECK(events == 1);
}

TEST_CASE("nats_link: a publish while NATS is away fails after request_timeout instead of hanging") {
  fixture f;
  nats_link link(f.io);
  int events = 0;
  link.on_connection_event([&](nats_connection_event) { ++events; });
  auto options = options_for(f.server, "timeout");
  options.request_timeout = 1s;
  connect(f.io, link, options);
  REQUIRE(await<void>(f.io, [&](auto done) { link.ensure_stream({"S", {"s.>"}}, std::move(done)); }).has_value());
  f.server.stop(SIGKILL);
  REQUIRE(run_until(f.io, [&] { return events == 1; }));
  const auto start = std::chrono::steady_clock::now();
  auto r = await<std::uint64_t>(f.io, [&](auto done) { link.publish("s.x", "while away", std::move(done)); });
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.has_value());
  INFO("publish while away: " << r.error() << " after "
                              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(r.error() != "timed out");  // the link's own error, not this test's 10 s limit
  CHECK(took < 5s);
}
