// SPDX-License-Identifier: MIT
// Reads a file descriptor (stdin) on a thread of its own and posts each chunk to an io_context, for as long as that io_context is there to take it.
//
// stdin may be a pipe, a file or a terminal, and a read() on it cannot be cancelled, so
// the thread is detached and may outlive the loop it feeds. All it shares with the loop
// is one small state, owned jointly through a shared_ptr: the loop cuts it, under its
// mutex, before the io_context is destroyed; the thread posts only while holding that
// mutex and finding the state uncut. So a line that arrives after SIGTERM is dropped
// instead of being posted into a destroyed io_context, and no handler runs after cut().
//
// Backpressure: after posting a chunk the thread reads nothing more until the loop calls
// resume(), which it does only once the bridge wants input (its stdout is not backed
// up). So at most one chunk is ever on its way, and a host that writes requests without
// reading the answers is left blocked in its write() instead of growing us.
#pragma once

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cerrno>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>

namespace parley_tools {

class stdin_reader {
 public:
  using data_handler = std::function<void(std::string bytes)>;
  using eof_handler = std::function<void()>;  // end of input, or a read error

  // Starts reading `fd` at once; the handlers run on `io`, never after cut().
  stdin_reader(asio::io_context& io, int fd, data_handler on_data, eof_handler on_eof)
      : state_(std::make_shared<shared_state>()) {
    state_->io = &io;
    state_->on_data = std::move(on_data);
    state_->on_eof = std::move(on_eof);
    std::thread([state = state_, fd] { read_until_cut(*state, state, fd); }).detach();
  }

  ~stdin_reader() { cut(); }
  stdin_reader(const stdin_reader&) = delete;
  stdin_reader& operator=(const stdin_reader&) = delete;

  // From now on nothing is posted and no handler runs; the thread ends after its next read.
  // Call it, or destroy the reader, before the io_context goes.
  void cut() {
    {
      std::lock_guard lock(state_->mutex);
      state_->io = nullptr;
      state_->on_data = nullptr;
      state_->on_eof = nullptr;
    }
    state_->resumed.notify_one();  // a thread waiting for resume() ends now
  }

  // The last chunk is taken care of: read the next one. Until this is called after a
  // chunk was delivered, the thread does not read.
  void resume() {
    {
      std::lock_guard lock(state_->mutex);
      state_->may_read = true;
    }
    state_->resumed.notify_one();
  }

  // Expires once the thread has ended and nothing it posted is left: for tests.
  [[nodiscard]] std::weak_ptr<const void> watch() const { return state_; }

 private:
  struct shared_state {
    std::mutex mutex;
    asio::io_context* io = nullptr;  // null once cut
    std::condition_variable resumed;
    bool may_read = true;  // false from posting a chunk until resume()
    data_handler on_data;
    eof_handler on_eof;
  };

  static void read_until_cut(shared_state& state, const std::shared_ptr<shared_state>& keep, int fd) {
    char buffer[65536];
    for (;;) {
      {
        std::unique_lock lock(state.mutex);
        state.resumed.wait(lock, [&] { return state.may_read || !state.io; });
        if (!state.io) return;
      }
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(state.mutex);
      if (!state.io) return;
      if (n <= 0) {
        asio::post(*state.io, [keep] { deliver_eof(*keep); });
        return;
      }
      state.may_read = false;
      asio::post(*state.io, [keep, bytes = std::string(buffer, static_cast<std::size_t>(n))]() mutable {
        deliver(*keep, std::move(bytes));
      });
    }
  }

  // On the io_context's thread, the one that also cuts; the lock only orders this with
  // the reading thread's view of the state.
  static void deliver(shared_state& state, std::string bytes) {
    data_handler handler;
    {
      std::lock_guard lock(state.mutex);
      handler = state.on_data;
    }
    if (handler) handler(std::move(bytes));
  }

  static void deliver_eof(shared_state& state) {
    eof_handler handler;
    {
      std::lock_guard lock(state.mutex);
      handler = state.on_eof;
    }
    if (handler) handler();
  }

  std::shared_ptr<shared_state> state_;
};

}  // namespace parley_tools
