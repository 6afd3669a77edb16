// SPDX-License-Identifier: MIT
// The database worker: jobs in order on a connection of its own, all of them applied by stop(), and token uses through it.
#include "database.hpp"
#include "database_worker.hpp"
#include "temp_dir.hpp"
#include "token_store.hpp"
#include "token_uses.hpp"

#include <doctest/doctest.h>

#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace parley_tools;
using parley_tools::testing::temp_dir;

TEST_CASE("jobs run in the order they were posted, on another thread") {
  const temp_dir dir;
  database_worker worker(database::open(dir / "parley.db").value());
  std::vector<int> order;  // touched only by the worker until drain() returns
  std::thread::id where;
  for (int i = 0; i < 100; ++i)
    worker.post([&order, &where, i](const database&) {
      order.push_back(i);
      where = std::this_thread::get_id();
    });
  worker.drain();
  REQUIRE(order.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
  CHECK(where != std::this_thread::get_id());
  CHECK(worker.backlog() == 0);
}

TEST_CASE("stop() runs everything queued, and a job posted afterwards runs at once") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  const database db = database::open(file).value();
  REQUIRE(db.exec("CREATE TABLE t (n INTEGER)"));
  database_worker worker(database::open(file).value());
  for (int i = 0; i < 200; ++i)
    worker.post([i](const database& w) { (void)w.exec(("INSERT INTO t VALUES (" + std::to_string(i) + ")").c_str()); });
  worker.stop();
  auto count = [&] {
    auto s = db.prepare("SELECT count(*) FROM t");
    REQUIRE(s);
    REQUIRE(s->step().value());
    return s->int64(0);
  };
  CHECK(count() == 200);
  worker.stop();  // again: nothing more
  bool ran = false;
  worker.post([&ran](const database& w) { ran = w.exec("INSERT INTO t VALUES (-1)").has_value(); });
  CHECK(ran);
  CHECK(count() == 201);
}

TEST_CASE("stop_discarding() drops what is queued, and what comes later, as a crash would") {
  const temp_dir dir;
  database_worker worker(database::open(dir / "parley.db").value());
  std::promise<void> queued;
  int ran = 0;
  worker.post([&](const database&) {
    queued.get_future().wait();  // until the jobs behind it are in the queue
    ++ran;
    worker.stop_discarding();  // from a job, so exactly the queue behind it is dropped
  });
  for (int i = 0; i < 10; ++i) worker.post([&ran](const database&) { ++ran; });
  queued.set_value();
  worker.drain();
  worker.stop();
  worker.post([&ran](const database&) { ++ran; });
  CHECK(ran == 1);
  CHECK(worker.backlog() == 0);
}

TEST_CASE("a job that throws does not stop the ones behind it") {
  const temp_dir dir;
  database_worker worker(database::open(dir / "parley.db").value());
  bool after = false;
  worker.post([](const database&) { throw std::runtime_error("boom"); });
  worker.post([&after](const database&) { after = true; });
  worker.drain();
  CHECK(after);
}

TEST_CASE("token uses are recorded by the worker") {
  const temp_dir dir;
  const auto file = dir / "parley.db";
  const database db = database::open(file).value();
  token_store tokens(db, [](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(i);
  });
  REQUIRE(tokens.issue("ci-bot", parley::from_unix_ms(1000)));
  const logger log(parley::log_level::error);
  database_worker worker(database::open(file).value());
  record_token_uses_in_background(worker, {{"ci-bot", parley::from_unix_ms(5000)}}, log);
  worker.stop();
  const auto listed = tokens.list().value();
  REQUIRE(listed.size() == 1);
  REQUIRE(listed[0].last_used_at);
  CHECK(*listed[0].last_used_at == parley::from_unix_ms(5000));
}
