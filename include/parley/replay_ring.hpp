// SPDX-License-Identifier: MIT
// The per-(session, room) ring of unacked messages that lets a dropped connection resume without a gap.
#pragma once

#include "shared_frame.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>

namespace parley {

struct replay_entry {
  std::uint64_t seq;
  shared_frame frame;
};

// Invariants: entries are in strictly increasing seq order; size() <= capacity;
// every seq ever evicted unacked is <= highest_evicted(). A resume after seq `a`
// is exact iff highest_evicted() <= a: otherwise something after `a` is gone and
// the caller must report the gap, never paper over it.
class replay_ring {
 public:
  explicit replay_ring(std::size_t capacity) noexcept : capacity_(capacity == 0 ? 1 : capacity) {}

  void push(std::uint64_t seq, shared_frame frame) {
    if (entries_.size() == capacity_) {
      if (entries_.front().seq > highest_evicted_) highest_evicted_ = entries_.front().seq;
      entries_.pop_front();
    }
    entries_.push_back(replay_entry{seq, std::move(frame)});
  }

  // Acks are cumulative: everything at or below `seq` is done with.
  void ack(std::uint64_t seq) {
    if (seq > acked_) acked_ = seq;
    while (!entries_.empty() && entries_.front().seq <= seq) entries_.pop_front();
  }

  [[nodiscard]] bool can_resume_after(std::uint64_t seq) const noexcept { return highest_evicted_ <= seq; }

  // Calls `visit(entry)` for every entry after `seq`, oldest first.
  template <class Visit>
  void for_each_after(std::uint64_t seq, Visit&& visit) const {
    for (const auto& e : entries_)
      if (e.seq > seq) visit(e);
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::uint64_t acked() const noexcept { return acked_; }
  [[nodiscard]] std::uint64_t highest_evicted() const noexcept { return highest_evicted_; }
  [[nodiscard]] const std::deque<replay_entry>& entries() const noexcept { return entries_; }

 private:
  std::size_t capacity_;
  std::deque<replay_entry> entries_;
  std::uint64_t acked_ = 0;
  std::uint64_t highest_evicted_ = 0;
};

}  // namespace parley
