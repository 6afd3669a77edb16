// SPDX-License-Identifier: MIT
// One thread with its own SQLite connection that runs database writes in order, so the io thread never waits on an fsync.
#pragma once

#include "database.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace parley_tools {

// Jobs run one at a time, in the order they were posted, on the worker's connection
// (WAL lets it write while the io thread's connection reads). A job reports its own
// failures (to a store's write_failure(), the log): the worker has nobody to tell.
// Everything posted is applied before stop() or the destructor returns.
class database_worker {
 public:
  using job = std::function<void(const database&)>;

  // Opens a connection of its own on `file`, here, so that a file that cannot be
  // opened is an error now, then starts the thread.
  [[nodiscard]] static parley::result<std::unique_ptr<database_worker>> open(const std::filesystem::path& file);

  explicit database_worker(database db);
  ~database_worker() { stop(); }
  database_worker(const database_worker&) = delete;
  database_worker& operator=(const database_worker&) = delete;

  // Queues `j` behind every job posted before it. Once the worker has stopped, runs it
  // at once on the calling thread instead, so that no write is ever dropped. A job may
  // post (it runs after everything already queued, even during stop()).
  void post(job j);

  // Returns once every job posted before the call has run.
  void drain();

  // Runs every queued job, then ends the thread. Calling it again does nothing more.
  void stop();

  // For tests, what a crash leaves behind: the running job finishes, the queued ones and
  // any posted later are dropped, and the thread ends. May be called from a job.
  void stop_discarding();

  // Jobs posted and not finished yet.
  [[nodiscard]] std::size_t backlog() const;

 private:
  void run();
  void halt(bool discard);

  database db_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the thread: a job, or the stop
  std::condition_variable done_;  // drain(): another job finished
  std::deque<job> queue_;
  std::uint64_t posted_ = 0;
  std::uint64_t finished_ = 0;
  bool stopping_ = false;
  bool discarding_ = false;
  bool exited_ = false;  // run() has returned: the connection is free for post() to use
  std::thread thread_;  // last: started once everything above is ready
};

}  // namespace parley_tools
