// SPDX-License-Identifier: MIT
// stdin_reader: chunks in order on the io_context, no read past a chunk until resume(), and nothing at all once it is cut, even after the io_context is gone.
#include "stdin_reader.hpp"

#include <asio/executor_work_guard.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>

using namespace std::chrono_literals;
using parley_tools::stdin_reader;

namespace {

struct pipe_fds {
  int read = -1;
  int write = -1;
  pipe_fds() {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    read = fds[0];
    write = fds[1];
  }
  ~pipe_fds() {
    if (read >= 0) ::close(read);
    close_write();
  }
  void close_write() {
    if (write >= 0) ::close(write);
    write = -1;
  }
  void put(std::string_view bytes) const { REQUIRE(::write(write, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size())); }
};

template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

TEST_CASE("stdin_reader: bytes arrive on the io_context in order, then the end of input once") {
  pipe_fds p;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::string got;
  int ends = 0;
  stdin_reader* self = nullptr;
  stdin_reader reader(
      io, p.read,
      [&](std::string bytes) {
        got += bytes;
        self->resume();
      },
      [&] { ++ends; });
  self = &reader;
  p.put("one\n");
  p.put("two\n");
  p.close_write();
  while (ends == 0 && io.run_one_for(5s) > 0) {
  }
  CHECK(got == "one\ntwo\n");
  CHECK(ends == 1);
}

TEST_CASE("stdin_reader: after cut, a line that arrives once the io_context is destroyed is dropped and the thread ends") {
  // The SIGTERM race of issue 8: the loop ends and destroys its io_context while the reader
  // is blocked in read(); a line written then must not be posted into the dead io_context.
  pipe_fds p;
  int calls = 0;
  std::weak_ptr<const void> thread_state;
  {
    auto io = std::make_unique<asio::io_context>();
    auto work = asio::make_work_guard(*io);
    stdin_reader reader(*io, p.read, [&](std::string) { ++calls; }, [&] { ++calls; });
    thread_state = reader.watch();
    p.put("before\n");
    while (calls == 0 && io->run_one_for(5s) > 0) {
    }
    REQUIRE(calls == 1);
  }  // the reader is cut, then the io_context is destroyed
  p.put("after\n");  // wakes the blocked read()
  CHECK(eventually([&] { return thread_state.expired(); }));
  CHECK(calls == 1);
}

TEST_CASE("stdin_reader: after cut, the end of input is not reported either") {
  pipe_fds p;
  int calls = 0;
  asio::io_context io;
  stdin_reader reader(io, p.read, [&](std::string) { ++calls; }, [&] { ++calls; });
  const auto state = reader.watch();
  reader.cut();
  p.close_write();
  CHECK(eventually([&] { return state.use_count() == 1; }));  // only the reader holds it: the thread has ended
  CHECK(io.poll() == 0);
  CHECK(calls == 0);
}

TEST_CASE("stdin_reader: after a chunk it reads nothing until resume(), so a writer that runs ahead waits in its write") {
  pipe_fds p;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::string got;
  stdin_reader reader(io, p.read, [&](std::string bytes) { got += bytes; }, [] {});
  p.put("one\n");
  while (got.empty() && io.run_one_for(5s) > 0) {
  }
  CHECK(got == "one\n");
  p.put("two\n");
  io.run_for(200ms);
  CHECK(got == "one\n");  // held: the bytes stay in the pipe
  reader.resume();
  while (got.size() < 8 && io.run_one_for(5s) > 0) {
  }
  CHECK(got == "one\ntwo\n");
}
