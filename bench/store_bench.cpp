// SPDX-License-Identifier: MIT
// How long the io thread waits for seq blocks: the SQLite store synchronous (an fsync per block) against in the background (blocks reserved ahead).
//
// Usage: store_bench [messages=100000] [gap_us=0] [dir=$TMPDIR or /tmp]
// One room takes `messages` seqs as the hub does, a reserve_seq_block(room, 256) each
// time its block runs out, and sleeps `gap_us` after each block handed out: the time 256
// messages take to arrive (0: a burst, the worst case for the background store). Each
// reserve_seq_block call is timed on the calling thread. The database lives in a fresh
// directory under `dir`, so put `dir` on the disk whose fsync you mean to measure.
#include "database.hpp"
#include "database_worker.hpp"
#include "sqlite_store.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace parley_tools;
using clock_type = std::chrono::steady_clock;

constexpr std::uint64_t block_size = 256;

struct figures {
  std::vector<double> waits_us;  // one per reserve_seq_block call
  double worst_ready_us = 0;     // the longest call that found its block ready (background only)
  std::uint64_t blocking_waits = 0;
  double total_ms = 0;
};

figures run(sqlite_room_store& store, std::uint64_t messages, std::chrono::microseconds gap) {
  figures f;
  if (!store.load_rooms() || !store.create_room("bench", parley::from_unix_ms(0))) std::exit(1);
  const auto start = clock_type::now();
  std::uint64_t next = 0, limit = 0;
  for (std::uint64_t m = 0; m < messages; ++m) {
    if (next == limit) {
      const std::uint64_t waits_before = store.blocking_waits();
      const auto before = clock_type::now();
      auto first = store.reserve_seq_block("bench", block_size);
      const auto after = clock_type::now();
      if (!first) {
        std::fprintf(stderr, "reserve_seq_block: %s\n", first.error().message.c_str());
        std::exit(1);
      }
      const double us = std::chrono::duration<double, std::micro>(after - before).count();
      f.waits_us.push_back(us);
      if (store.blocking_waits() == waits_before) f.worst_ready_us = std::max(f.worst_ready_us, us);
      next = *first;
      limit = *first + block_size;
      if (gap.count() > 0) std::this_thread::sleep_for(gap);
    }
    ++next;  // the message's seq
  }
  f.total_ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
  f.blocking_waits = store.blocking_waits();
  return f;
}

void print(const char* name, figures f) {
  std::vector<double>& w = f.waits_us;
  std::sort(w.begin(), w.end());
  const auto at = [&w](double q) { return w[std::min(w.size() - 1, static_cast<std::size_t>(q * static_cast<double>(w.size())))]; };
  double sum = 0;
  for (double x : w) sum += x;
  std::printf(
      "%-10s blocks %4zu  waited %4llu  per call us: mean %8.1f  p50 %8.1f  p99 %8.1f  max %8.1f  max-not-waited %8.1f  "
      "loop %7.1f ms\n",
      name, w.size(), static_cast<unsigned long long>(f.blocking_waits), sum / static_cast<double>(w.size()), at(0.5),
      at(0.99), w.back(), f.worst_ready_us, f.total_ms);
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t messages = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  const auto gap = std::chrono::microseconds(argc > 2 ? std::strtoll(argv[2], nullptr, 10) : 0);
  const char* tmp = std::getenv("TMPDIR");
  const std::filesystem::path base = argc > 3 ? argv[3] : (tmp && *tmp ? tmp : "/tmp");
  if (messages == 0 || gap.count() < 0) {
    std::fprintf(stderr, "usage: store_bench [messages>=1] [gap_us>=0] [dir]\n");
    return 2;
  }
  std::string pattern = (base / "parley-store-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path dir = pattern;

  {
    auto db = database::open(dir / "sync.db");
    if (!db) return std::fprintf(stderr, "%s\n", db.error().message.c_str()), 1;
    sqlite_room_store store(*db);
    print("sync", run(store, messages, gap));
  }
  {
    auto db = database::open(dir / "background.db");
    auto worker = database_worker::open(dir / "background.db");
    if (!db || !worker) return std::fprintf(stderr, "cannot open the database\n"), 1;
    sqlite_room_store store(*db, **worker);
    print("background", run(store, messages, gap));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
