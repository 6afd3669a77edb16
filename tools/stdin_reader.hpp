// SPDX-License-Identifier: MIT
// Reads a file descriptor (stdin) on the io_context's own thread and hands each chunk to a handler there, until the reader is cut.
//
// A pipe, a socket or a terminal is read by the io_context's reactor (epoll): a line
// reaches the bridge in the wakeup that sees it, with no second thread to wake and hand
// it over. (An earlier version read on a thread of its own; every request then cost two
// wakeups, a futex handoff and an epoll_ctl to interrupt the loop, and under load each
// wakeup is a chance to wait for a core: see bench/mcp_latency.js.)
//
// The reactor needs the descriptor non-blocking, and O_NONBLOCK belongs to the open file,
// which the host may share (a terminal is the shell's too). So a pipe or a terminal is
// opened anew through /proc/self/fd, which gives the reader an open file of its own; a
// socket cannot be (nor anything without /proc), so its flags are put back as they were
// when the reader is cut. A regular file or /dev/null, which epoll cannot watch and whose
// read() never waits for a writer, is read on the io_context's thread, one posted read at
// a time. Whatever it reads through, the reader closes only its own descriptor, never the
// caller's.
//
// Backpressure: after handing over a chunk the reader reads nothing more until the loop
// calls resume(), which it does only once the bridge wants input (its stdout is not
// backed up). So at most one chunk is ever on its way, and a host that writes requests
// without reading the answers is left blocked in its write() instead of growing us.
//
// Lifetime: handlers run on the io_context, never from inside a call to the reader, and
// never after cut(). Cut it, or destroy it, before the io_context goes; what it left
// queued there then reaches nobody.
#pragma once

#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>

#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace parley_tools {

class stdin_reader {
 public:
  using data_handler = std::function<void(std::string bytes)>;
  using eof_handler = std::function<void()>;  // end of input, or a read error

  // Starts reading `fd` at once; the handlers run on `io`, never after cut().
  stdin_reader(asio::io_context& io, int fd, data_handler on_data, eof_handler on_eof)
      : state_(std::make_shared<state>(io)) {
    state_->on_data = std::move(on_data);
    state_->on_eof = std::move(on_eof);
    watch_if_possible(fd);
    if (!state_->watched.is_open()) state_->unwatched = ::dup(fd);
    if (!state_->watched.is_open() && state_->unwatched < 0) {
      fail_later();
      return;
    }
    next(state_);
  }

  ~stdin_reader() { cut(); }
  stdin_reader(const stdin_reader&) = delete;
  stdin_reader& operator=(const stdin_reader&) = delete;

  // From now on nothing is read and no handler runs.
  void cut() {
    if (state_->cut) return;
    state_->cut = true;
    state_->on_data = nullptr;
    state_->on_eof = nullptr;
    std::error_code ignored;
    if (state_->restore_flags >= 0) ::fcntl(state_->watched.native_handle(), F_SETFL, state_->restore_flags);
    state_->watched.close(ignored);  // a read in progress completes, aborted, reaching nobody
    if (state_->unwatched >= 0) ::close(std::exchange(state_->unwatched, -1));
  }

  // The last chunk is taken care of: read the next one. Until this is called after a
  // chunk was delivered, nothing is read.
  void resume() {
    if (state_->cut || state_->may_read) return;
    state_->may_read = true;
    next(state_);
  }

  // Expires once the reader is gone and nothing it queued on the io_context is left: for tests.
  [[nodiscard]] std::weak_ptr<const void> watch() const { return state_; }

 private:
  struct state {
    explicit state(asio::io_context& io) : io(io), watched(io) {}
    asio::io_context& io;
    asio::posix::stream_descriptor watched;  // open while epoll watches the descriptor
    int restore_flags = -1;                  // a shared open file's flags, put back when cut
    int unwatched = -1;                      // the descriptor, when epoll cannot watch it
    std::vector<char> buffer = std::vector<char>(65536);
    bool may_read = true;  // false from handing over a chunk until resume()
    bool busy = false;     // a wait or a posted read is on its way
    bool cut = false;
    data_handler on_data;
    eof_handler on_eof;
  };

  // An open file of the reader's own for `fd`, registered with the reactor, if it can be.
  void watch_if_possible(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return;
    int own = -1;
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
      // O_NONBLOCK here also keeps open() from waiting for a writer to a FIFO.
      own = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    }
    if (own < 0 && (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
      // A socket, or no /proc: share the open file and put its flags back when cut.
      own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (own >= 0) state_->restore_flags = ::fcntl(own, F_GETFL);
    }
    if (own < 0) return;
    std::error_code ec;
    state_->watched.assign(own, ec);  // epoll refuses what it cannot watch (/dev/null)
    if (ec) {
      ::close(own);
      state_->restore_flags = -1;
    }
  }

  // Queued work holds the state weakly: it is the owner's, and what is queued when the
  // owner goes finds it gone.
  static void next(const std::shared_ptr<state>& s) {
    if (s->cut || !s->may_read || s->busy) return;
    s->busy = true;
    std::weak_ptr<state> weak = s;
    if (s->watched.is_open()) {
      // asio tries the read at once and waits for readiness only if there is nothing, so
      // bytes already waiting (a burst longer than the buffer, or what came while the
      // bridge held us) are never left behind by the edge-triggered epoll.
      s->watched.async_read_some(asio::buffer(s->buffer), [weak](std::error_code ec, std::size_t n) {
        auto locked = weak.lock();
        if (!locked) return;
        locked->busy = false;
        if (locked->cut) return;
        if (ec) return end(*locked);  // asio::error::eof, or a read error
        deliver(*locked, n);
      });
      return;
    }
    asio::post(s->io, [weak] {
      auto locked = weak.lock();
      if (!locked) return;
      locked->busy = false;
      if (locked->cut) return;
      ssize_t n;
      do n = ::read(locked->unwatched, locked->buffer.data(), locked->buffer.size());
      while (n < 0 && errno == EINTR);
      if (n <= 0) return end(*locked);
      deliver(*locked, static_cast<std::size_t>(n));
    });
  }

  static void deliver(state& s, std::size_t n) {
    s.may_read = false;
    if (auto handler = s.on_data) handler(std::string(s.buffer.data(), n));
  }

  static void end(state& s) {
    s.may_read = false;
    auto handler = std::exchange(s.on_eof, nullptr);
    s.on_data = nullptr;
    if (handler) handler();
  }

  // dup() failed: report the end of input from the io_context, as a read error would.
  void fail_later() {
    state_->busy = true;
    std::weak_ptr<state> weak = state_;
    asio::post(state_->io, [weak] {
      if (auto locked = weak.lock(); locked && !locked->cut) end(*locked);
    });
  }

  std::shared_ptr<state> state_;
};

}  // namespace parley_tools
