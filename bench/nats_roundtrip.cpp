// SPDX-License-Identifier: MIT
// What crossing NATS costs a parley node: JetStream publish-to-ack round trips and publish-to-delivery latency through nats_link.
//
// Usage: nats_roundtrip URL [messages=10000] [payload_bytes=200] [asap|buffered]
//   e.g. nats-server -js -a 127.0.0.1 -p 14222 -sd "$(mktemp -d)" & build/bench/nats_roundtrip nats://127.0.0.1:14222
// Two links (two nodes) on one io_context thread, as a node's hub would use them, all through
// asio::post, so the figures include the hops between libnats' threads and the io thread.
//   1. ack:      one publish at a time, each waiting for its ack: the seq round trip a sender pays.
//   2. delivery: one at a time, from link A's publish call to link B's ordered consumer handing
//                it over: the latency crossing nodes adds to a message.
//   3. burst:    every message published at once; the time until the last ack, as messages/s.
//   4. kv_create: one at a time, a KV create-if-absent of a fresh key (a nickname claim), through
//                the link's worker thread.
#include "nats_link.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using namespace parley_tools;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds timeout = 30s) {
  const auto deadline = clock_type::now() + timeout;
  while (!done()) {
    if (clock_type::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  return true;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "nats_roundtrip: %s\n", what.c_str());
  std::exit(1);
}

template <class T>
T await(asio::io_context& io, const std::function<void(nats_link::completion<T>)>& start, const char* what) {
  std::optional<nats_result<T>> got;
  start([&](nats_result<T> r) { got = std::move(r); });
  if (!run_until(io, [&] { return got.has_value(); })) die(std::string(what) + ": timed out");
  if (!*got) die(std::string(what) + ": " + got->error());
  if constexpr (!std::is_void_v<T>) return std::move(**got);
}

void report(const char* name, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))]; };
  std::printf("%-10s n=%zu  p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us\n", name, us.size(), at(0.50), at(0.90),
              at(0.99), us.back());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) die("usage: nats_roundtrip URL [messages=10000] [payload_bytes=200] [asap|buffered]");
  const std::string url = argv[1];
  const int messages = argc > 2 ? std::atoi(argv[2]) : 10000;
  const std::string payload(argc > 3 ? static_cast<std::size_t>(std::atoi(argv[3])) : 200, 'x');

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  nats_link a(io), b(io);
  nats_options options;
  options.servers = {url};
  options.send_asap = !(argc > 4 && std::string(argv[4]) == "buffered");
  std::printf("%d messages of %zu bytes, %s\n", messages, payload.size(), options.send_asap ? "send_asap" : "buffered");
  await<void>(io, [&](auto done) { a.connect(options, std::move(done)); }, "connect a");
  await<void>(io, [&](auto done) { b.connect(options, std::move(done)); }, "connect b");
  const nats_stream_config stream{"PARLEY_BENCH", {"bench.>"}, 600s, -1, 1};
  await<void>(io, [&](auto done) { a.ensure_stream(stream, std::move(done)); }, "stream");

  // 1. ack round trips, one at a time.
  std::vector<double> ack_us;
  for (int i = 0; i < messages; ++i) {
    const auto start = clock_type::now();
    await<std::uint64_t>(io, [&](auto done) { a.publish("bench.ack", payload, std::move(done)); }, "publish");
    ack_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - start).count());
  }
  report("ack", ack_us);

  // 2. publish on A to delivery on B, one at a time.
  std::optional<clock_type::time_point> delivered;
  await<nats_link::id>(
      io,
      [&](auto ready) {
        b.subscribe_ordered("PARLEY_BENCH", "bench.delivery", std::nullopt,
                            [&](nats_stream_message) { delivered = clock_type::now(); }, std::move(ready));
      },
      "subscribe");
  std::vector<double> delivery_us;
  for (int i = 0; i < messages; ++i) {
    delivered.reset();
    const auto start = clock_type::now();
    a.publish("bench.delivery", payload, [](nats_result<std::uint64_t> r) {
      if (!r) die("publish: " + r.error());
    });
    if (!run_until(io, [&] { return delivered.has_value(); })) die("delivery timed out");
    delivery_us.push_back(std::chrono::duration<double, std::micro>(*delivered - start).count());
  }
  report("delivery", delivery_us);

  // 3. a burst: everything in flight at once.
  int acked = 0;
  const auto start = clock_type::now();
  for (int i = 0; i < messages; ++i)
    a.publish("bench.burst", payload, [&](nats_result<std::uint64_t> r) {
      if (!r) die("publish: " + r.error());
      ++acked;
    });
  if (!run_until(io, [&] { return acked == messages; })) die("burst timed out");
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf("burst      n=%d  %.3f s  %.0f acked publishes/s\n", messages, seconds, messages / seconds);

  // 4. KV create-if-absent round trips, one at a time.
  await<void>(io, [&](auto done) { a.ensure_bucket({"parley_bench", 600s, 1}, std::move(done)); }, "bucket");
  std::vector<double> create_us;
  const std::string run_id = std::to_string(clock_type::now().time_since_epoch().count());
  for (int i = 0; i < messages; ++i) {
    // Appended, not "k" + to_string(i): GCC 12's -O3 warns falsely (-Wrestrict) on the latter.
    std::string key = run_id;  // fresh keys on every run against the same server
    key += ".k";
    key += std::to_string(i);
    const auto begin = clock_type::now();
    const auto outcome = await<nats_kv_create_outcome>(
        io, [&](auto done) { a.kv_create("parley_bench", key, payload, std::move(done)); },
        "kv_create");
    if (outcome != nats_kv_create_outcome::created) die("kv_create: taken");
    create_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - begin).count());
  }
  report("kv_create", create_us);
  return 0;
}
