// SPDX-License-Identifier: MIT
// stdin_reader: chunks in order on the io_context, no read past a chunk until resume(), nothing lost to an edge-triggered wait, and nothing at all once it is cut, even after the io_context is gone.
#include "stdin_reader.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/steady_timer.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <sys/socket.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

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

TEST_CASE("stdin_reader: after cut, a line that arrives once the io_context is destroyed is dropped and nothing is left") {
  // The SIGTERM race of issue 8: the loop ends and destroys its io_context while the reader
  // waits for stdin; a line written then must reach nothing of the dead io_context.
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
  p.put("after\n");
  CHECK(thread_state.expired());
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
  CHECK(state.use_count() == 1);  // only the reader holds it: nothing queued can reach a handler
  io.poll();  // the aborted read's completion, if any, reaches nobody
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

TEST_CASE("stdin_reader: a burst longer than one read arrives whole, though no new byte comes to raise another edge") {
  pipe_fds p;
  REQUIRE(::fcntl(p.write, F_SETPIPE_SZ, 1 << 20) >= 0);
  const std::string burst(200000, 'x');  // three reads of 64 KiB and a bit, written before any read
  p.put(burst);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::string got;
  int chunks = 0;
  stdin_reader* self = nullptr;
  stdin_reader reader(
      io, p.read,
      [&](std::string bytes) {
        got += bytes;
        ++chunks;
        self->resume();
      },
      [] {});
  self = &reader;
  while (got.size() < burst.size() && io.run_one_for(5s) > 0) {
  }
  CHECK(got == burst);
  CHECK(chunks > 1);
}

TEST_CASE("stdin_reader: a regular file, which epoll cannot watch, is read to its end") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  const std::string text = "{\"jsonrpc\":\"2.0\"}\nsecond line\n";
  REQUIRE(std::fwrite(text.data(), 1, text.size(), file) == text.size());
  REQUIRE(std::fflush(file) == 0);
  REQUIRE(::lseek(::fileno(file), 0, SEEK_SET) == 0);
  asio::io_context io;
  std::string got;
  int ends = 0;
  stdin_reader* self = nullptr;
  stdin_reader reader(
      io, ::fileno(file),
      [&](std::string bytes) {
        got += bytes;
        self->resume();
      },
      [&] { ++ends; });
  self = &reader;
  io.run_for(2s);  // nothing is left to wait for once the file ends
  CHECK(got == text);
  CHECK(ends == 1);
  std::fclose(file);
}

TEST_CASE("stdin_reader: a pipe's open file is not made non-blocking, and the caller's descriptor stays open") {
  // O_NONBLOCK on a terminal the shell shares would make the shell's reads fail; the
  // reader reads through an open file of its own.
  pipe_fds p;
  {
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::string got;
    stdin_reader reader(io, p.read, [&](std::string bytes) { got += bytes; }, [] {});
    p.put("one\n");
    while (got.empty() && io.run_one_for(5s) > 0) {
    }
    CHECK(got == "one\n");
    CHECK((::fcntl(p.read, F_GETFL) & O_NONBLOCK) == 0);  // while it reads, too
  }
  const int flags = ::fcntl(p.read, F_GETFL);
  REQUIRE(flags >= 0);  // still open: the reader closed only its own copy
  CHECK((flags & O_NONBLOCK) == 0);
  p.put("two\n");
  char buffer[8] = {};
  CHECK(::read(p.read, buffer, sizeof buffer) == 4);
}

TEST_CASE("stdin_reader: a socket (node's child_process gives one) is read, and its flags are as they were once cut") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  const int before = ::fcntl(fds[0], F_GETFL);
  {
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::string got;
    int ends = 0;
    stdin_reader* self = nullptr;
    stdin_reader reader(
        io, fds[0],
        [&](std::string bytes) {
          got += bytes;
          self->resume();
        },
        [&] { ++ends; });
    self = &reader;
    REQUIRE(::write(fds[1], "one\n", 4) == 4);
    while (got.size() < 4 && io.run_one_for(5s) > 0) {
    }
    REQUIRE(::write(fds[1], "two\n", 4) == 4);
    ::shutdown(fds[1], SHUT_WR);
    while (ends == 0 && io.run_one_for(5s) > 0) {
    }
    CHECK(got == "one\ntwo\n");
    CHECK(ends == 1);
  }
  CHECK(::fcntl(fds[0], F_GETFL) == before);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("stdin_reader: waiting for a quiet pipe leaves the io_context free to run everything else") {
  // A read() on the io_context's thread would hold it until the host writes: the timer
  // could then only fire after the line arrived.
  pipe_fds p;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::string> order;
  std::atomic<bool> timer_fired{false};
  stdin_reader reader(io, p.read, [&](std::string bytes) { order.push_back(bytes); }, [] {});
  asio::steady_timer timer(io, 20ms);
  timer.async_wait([&](std::error_code) {
    order.push_back("timer");
    timer_fired = true;
  });
  std::thread host([&] {
    const auto give_up = std::chrono::steady_clock::now() + 3s;
    while (!timer_fired && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
    p.put("line\n");
  });
  while (order.size() < 2 && io.run_one_for(5s) > 0) {
  }
  host.join();
  CHECK(order == std::vector<std::string>{"timer", "line\n"});
}
