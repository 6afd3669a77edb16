// SPDX-License-Identifier: MIT
// The core server and hub in memory, with links that carry bytes to clients and bridges: the one place their tests touch the server.
#pragma once

#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::testing {

// Deterministic randomness for a policy: a seeded generator, or, once `fixed` holds a
// value, that value in every 8-byte draw (big-endian, as random_u64 reads it), so a test
// can pin the backoff's jitter to either end of its range.
class test_random {
 public:
  explicit test_random(std::uint64_t seed) : gen_(seed) {}

  void operator()(unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      out[i] = *fixed ? static_cast<unsigned char>(**fixed >> (8 * (7 - i % 8))) : static_cast<unsigned char>(gen_());
  }

  std::shared_ptr<std::optional<std::uint64_t>> fixed = std::make_shared<std::optional<std::uint64_t>>();

 private:
  std::mt19937_64 gen_;
};

struct test_policy {
  using monotonic_clock = simulated_monotonic_clock;
  using wall_clock = simulated_wall_clock;
  using random = test_random;
};

// A server and the clients or bridges linked to it. Links are instant: a dial is
// accepted (or refused while the server is down) at once, and bytes cross when the
// network settles.
class in_memory_network {
 public:
  using time = simulated_moment::monotonic_time;

  // One client or bridge as the network sees it.
  class endpoint {
   public:
    virtual ~endpoint() = default;
    // Polls the object, does whatever is not the network's (stdout, say), and passes the
    // transport actions to net.apply(). True when anything happened.
    virtual bool step(in_memory_network& net) = 0;
    virtual void connected(time now) = 0;
    virtual void receive(std::string_view bytes, time now) = 0;
    // `why` is the transport's account, as tools/ gives it: empty for an orderly end.
    virtual void disconnected(time now, std::string why = {}) = 0;

    [[nodiscard]] bool linked() const noexcept { return link_.has_value(); }

   private:
    friend class in_memory_network;
    std::optional<connection_id> link_;
  };

  simulated_moment clock = simulated_epoch;
  bool server_up = true;

  in_memory_network() { start_server(); }

  [[nodiscard]] time now() const { return clock.monotonic; }

  template <class T, class... Args>
  T& add(Args&&... args) {
    endpoints_.push_back(std::make_unique<T>(*this, std::forward<Args>(args)...));
    return static_cast<T&>(*endpoints_.back());
  }

  // Carries out what an endpoint's poll() asked of the transport.
  template <class Actions>
  bool apply(endpoint& e, const Actions& a) {
    bool moved = false;
    if (e.link_ && !a.send.empty()) {
      srv_->receive(*e.link_, a.send, server_now());
      moved = true;
    }
    if (a.close) {
      if (e.link_) srv_->transport_closed(*e.link_, server_now());
      e.link_.reset();
      e.disconnected(now());
      moved = true;
    }
    if (a.dial) {
      if (server_up) accept(e);
      else e.disconnected(now(), "connect: Connection refused");
      moved = true;
    }
    return moved;
  }

  // The server accepts the endpoint's dial, which the endpoint learns of at once.
  void accept(endpoint& e) {
    e.link_ = *srv_->accept(server_now());
    e.connected(now());
  }

  // The link breaks without a close frame.
  void cut(endpoint& e) {
    if (!e.link_) return;
    srv_->transport_closed(*e.link_, server_now());
    e.link_.reset();
    e.disconnected(now());
  }

  // `bytes` reach the server, and what it answers is lost with the link.
  void deliver_then_cut(endpoint& e, std::string_view bytes) {
    REQUIRE(e.link_);
    srv_->receive(*e.link_, bytes, server_now());
    (void)srv_->take_output(*e.link_);
    cut(e);
  }

  // A restart: every link drops and every session is gone; rooms and seqs persist.
  void restart_server() {
    for (auto& e : endpoints_) cut(*e);
    start_server();
  }

  // Messages of `room` in the replay ring of the endpoint's session: delivered and not acked.
  [[nodiscard]] std::size_t unacked(const endpoint& e, const std::string& room) const {
    REQUIRE(e.link_);
    const auto handle = srv_->session_of(*e.link_);
    REQUIRE(handle);
    return hub_->session(*handle)->memberships.at(room).ring.size();
  }

  // Direct messages to the endpoint's session in `room`: delivered and not acked.
  [[nodiscard]] std::size_t unacked_direct(const endpoint& e, const std::string& room) const {
    REQUIRE(e.link_);
    const auto handle = srv_->session_of(*e.link_);
    REQUIRE(handle);
    return hub_->session(*handle)->memberships.at(room).direct_ring.size();
  }

  // Moves bytes and polls every endpoint until nothing changes.
  void settle() {
    for (int round = 0; round < 200; ++round) {
      bool moved = false;
      for (auto& e : endpoints_) moved = e->step(*this) || moved;
      for (connection_id id : srv_->take_writable()) {
        connection_output out = srv_->take_output(id);
        endpoint* e = linked_to(id);
        std::size_t n = 0;
        for (const auto& frame : out.frames) {
          if (e) e->receive(*frame, now());
          n += frame->size();
        }
        srv_->written(id, n);
        if (out.close_after) {
          srv_->transport_closed(id, server_now());
          if (e) {
            e->link_.reset();
            e->disconnected(now());
          }
        }
        moved = true;
      }
      if (!moved) return;
    }
    FAIL("the network did not settle");
  }

  // Time passes for the server and, through their polls, for every endpoint.
  void advance(milliseconds by) {
    clock += by;
    srv_->on_timer(server_now());
    settle();
  }

 private:
  [[nodiscard]] const simulated_moment& server_now() const { return clock; }

  void start_server() {
    // A restarted server draws other session ids, as a real one would.
    srv_.reset();
    hub_ = std::make_unique<hub_type>(std::move(*hub_type::open(store_, seeded_random(77 + restarts_++))));
    srv_ = std::make_unique<server_type>(*hub_);
    server_up = true;
  }

  endpoint* linked_to(connection_id id) {
    for (auto& e : endpoints_)
      if (e->link_ == id) return e.get();
    return nullptr;
  }

  using hub_type = basic_hub<simulated_server_policy>;
  using server_type = basic_server<simulated_server_policy>;
  simulated_server_policy::room_store store_;
  std::unique_ptr<hub_type> hub_;
  std::unique_ptr<server_type> srv_;
  int restarts_ = 0;
  std::vector<std::unique_ptr<endpoint>> endpoints_;
};

}  // namespace parley::testing
