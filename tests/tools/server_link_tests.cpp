// SPDX-License-Identifier: MIT
// server_link: a connection's bytes go out whole and in order, one write at a time, and an old connection's late completions reach nobody.
#include "server_link.hpp"

#include <asio/executor_work_guard.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using asio::ip::tcp;
using parley_tools::server_link;

namespace {

// What a link reported, kept after it is gone.
struct reports {
  int connected = 0;
  std::string received;
  std::vector<std::string> ended;

  server_link::handlers handlers() {
    return {[this] { ++connected; }, [this](std::string_view b) { received.append(b); },
            [this](std::string why) { ended.push_back(std::move(why)); }};
  }
};

// A listening socket on loopback standing in for the parley server.
struct fake_server {
  asio::io_context& io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};

  parley::server_url url() const {
    return *parley::parse_server_url("ws://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()));
  }
};

template <class Pred>
bool run_until(asio::io_context& io, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_one_for(10ms);
  }
  return true;
}

// The server's end of the link's connection, once the link has reported it connected.
tcp::socket accept(asio::io_context& io, fake_server& server, const reports& r) {
  tcp::socket peer(io);
  bool accepted = false;
  server.acceptor.async_accept(peer, [&](std::error_code ec) { accepted = !ec; });
  REQUIRE(run_until(io, [&] { return accepted && r.connected == 1; }));
  return peer;
}

// Reads the peer's end until EOF.
std::string read_to_end(asio::io_context& io, tcp::socket& peer) {
  std::string all;
  bool done = false;
  std::array<char, 65536> buffer;
  std::function<void()> next = [&] {
    peer.async_read_some(asio::buffer(buffer), [&](std::error_code ec, std::size_t n) {
      all.append(buffer.data(), n);
      if (ec) done = true;
      else next();
    });
  };
  next();
  REQUIRE(run_until(io, [&] { return done; }));
  return all;
}

}  // namespace

TEST_CASE("server_link: queued writes go out in order while one is in flight; close_after_write ends it once") {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  fake_server server{io};
  reports r;
  auto link = server_link::dial(io, nullptr, server.url(), r.handlers());
  tcp::socket peer = accept(io, server, r);
  std::string expected(1 << 20, 'x');  // big enough to be in flight while the rest is queued
  link->write(expected);
  for (int i = 0; i < 1000; ++i) {
    link->write(std::to_string(i) + ",");
    expected += std::to_string(i) + ",";
  }
  link->close_after_write();
  link->write("too late");
  CHECK(read_to_end(io, peer) == expected);
  REQUIRE(run_until(io, [&] { return !r.ended.empty(); }));
  io.poll();
  CHECK(r.ended == std::vector<std::string>{"closed after the last write"});
}

TEST_CASE("server_link: a cancelled link's write completing late neither reports nor touches the next link") {
  // The write race of issue 8: a write was in flight when the connection was replaced; its
  // late completion must not let a second write start on the new connection.
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  fake_server server{io};
  reports old_reports;
  auto old_link = server_link::dial(io, nullptr, server.url(), old_reports.handlers());
  tcp::socket old_peer = accept(io, server, old_reports);
  old_link->write(std::string(64 << 20, 'o'));  // the peer never reads: the write stays in flight
  for (int i = 0; i < 20; ++i) io.poll();
  old_link->cancel();

  reports new_reports;
  auto new_link = server_link::dial(io, nullptr, server.url(), new_reports.handlers());
  tcp::socket new_peer = accept(io, server, new_reports);
  new_link->write("first,");
  new_link->write("second");
  new_link->close_after_write();
  CHECK(read_to_end(io, new_peer) == "first,second");
  io.poll();
  CHECK(new_reports.ended == std::vector<std::string>{"closed after the last write"});
  CHECK(old_reports.connected == 1);
  CHECK(old_reports.received.empty());
  CHECK(old_reports.ended.empty());
}

TEST_CASE("server_link: a connection lost with a write in flight ends once, and the failed write adds nothing") {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  fake_server server{io};
  reports r;
  auto link = server_link::dial(io, nullptr, server.url(), r.handlers());
  tcp::socket peer = accept(io, server, r);
  link->write(std::string(64 << 20, 'x'));
  for (int i = 0; i < 20; ++i) io.poll();
  peer.close();
  REQUIRE(run_until(io, [&] { return !r.ended.empty(); }));
  for (int i = 0; i < 50; ++i) io.run_one_for(2ms);
  CHECK(r.ended.size() == 1);
  link->write("after the end");  // ignored
  io.poll();
  CHECK(r.ended.size() == 1);
}

TEST_CASE("server_link: a dial nobody answers ends with why; close while connecting gives up at once") {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  parley::server_url nowhere;
  {
    fake_server closed{io};
    nowhere = closed.url();
  }  // nothing listens there now
  reports r;
  auto link = server_link::dial(io, nullptr, nowhere, r.handlers());
  REQUIRE(run_until(io, [&] { return !r.ended.empty(); }));
  CHECK(r.connected == 0);
  CHECK(r.ended[0].rfind("cannot reach 127.0.0.1:", 0) == 0);

  fake_server server{io};
  reports given_up;
  auto abandoned = server_link::dial(io, nullptr, server.url(), given_up.handlers());
  abandoned->close_after_write();
  REQUIRE(run_until(io, [&] { return !given_up.ended.empty(); }));
  for (int i = 0; i < 20; ++i) io.run_one_for(2ms);
  CHECK(given_up.connected == 0);
  CHECK(given_up.ended == std::vector<std::string>{"closed while connecting"});
}
