// SPDX-License-Identifier: MIT
// The database worker's thread and queue.
#include "database_worker.hpp"

#include <utility>

namespace parley_tools {

parley::result<std::unique_ptr<database_worker>> database_worker::open(const std::filesystem::path& file) {
  auto db = database::open(file);
  if (!db) return tl::unexpected(db.error());
  return std::make_unique<database_worker>(std::move(*db));
}

// The connection was opened on this thread and is used only by the worker's from here
// on (until the worker stops): SQLite allows that of a connection opened NOMUTEX.
database_worker::database_worker(database db) : db_(std::move(db)), thread_([this] { run(); }) {}

void database_worker::post(job j) {
  {
    std::lock_guard lock(mutex_);
    if (discarding_) return;  // a crash, simulated: nothing more reaches the file
    if (!exited_) {
      queue_.push_back(std::move(j));
      ++posted_;
      wake_.notify_one();
      return;
    }
  }
  // The thread has left run() for good (under the lock, above), so the connection is
  // this thread's now.
  try {
    j(db_);
  } catch (...) {  // NOLINT(bugprone-empty-catch): see run()
  }
}

void database_worker::drain() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = posted_;
  done_.wait(lock, [&] { return finished_ >= target || exited_; });
}

void database_worker::stop() { halt(false); }

void database_worker::stop_discarding() { halt(true); }

void database_worker::halt(bool discard) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (discard && !discarding_) {
      discarding_ = true;
      finished_ += queue_.size();
      queue_.clear();
    }
    wake_.notify_one();
  }
  // From a job (a test's crash) the thread ends after it; the destructor joins it.
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
}

std::size_t database_worker::backlog() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(posted_ - finished_);
}

void database_worker::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {  // stopping, and everything queued has run
      exited_ = true;
      done_.notify_all();
      return;
    }
    job next = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    try {
      next(db_);
    } catch (...) {  // NOLINT(bugprone-empty-catch)
      // Jobs report their own failures; one that throws anyway (out of memory) must not
      // take the thread, and every write queued behind it, down with it.
    }
    next = nullptr;  // whatever the job captured goes before drain() hears it is done
    lock.lock();
    ++finished_;
    done_.notify_all();
  }
}

}  // namespace parley_tools
