// SPDX-License-Identifier: MIT
// The per-(session, room) ring of unacked messages that lets a dropped connection resume without a gap.
#pragma once

#include "shared_frame.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace parley {

struct replay_entry {
  std::uint64_t seq = 0;
  shared_frame frame;
};

// Invariants: entries are in strictly increasing seq order; size() <= capacity;
// every seq ever evicted unacked is <= highest_evicted(). A resume after seq `a`
// is exact iff highest_evicted() <= a: otherwise something after `a` is gone and
// the caller must report the gap, never paper over it.
//
// Storage is a circular buffer that starts empty and doubles up to the capacity only
// as unacked entries pile up: an idle member costs no slots, a member that acks
// promptly a few, and a steady stream of push and ack allocates nothing.
class replay_ring {
 public:
  explicit replay_ring(std::size_t capacity) noexcept : capacity_(capacity == 0 ? 1 : capacity) {}

  void push(std::uint64_t seq, shared_frame frame) {
    if (size_ == capacity_) {
      if (front().seq > highest_evicted_) highest_evicted_ = front().seq;
      pop_front();
    }
    if (size_ == slots_.size()) grow();
    slots_[index(size_)] = replay_entry{seq, std::move(frame)};
    ++size_;
  }

  // Acks are cumulative: everything at or below `seq` is done with.
  void ack(std::uint64_t seq) {
    if (seq > acked_) acked_ = seq;
    while (size_ != 0 && front().seq <= seq) pop_front();
  }

  [[nodiscard]] bool can_resume_after(std::uint64_t seq) const noexcept { return highest_evicted_ <= seq; }

  // Calls `visit(entry)` for every entry after `seq`, oldest first.
  template <class Visit>
  void for_each_after(std::uint64_t seq, Visit&& visit) const {
    for (std::size_t i = 0; i < size_; ++i)
      if (const replay_entry& e = slots_[index(i)]; e.seq > seq) visit(e);
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  // Oldest and newest entry; only when not empty().
  [[nodiscard]] const replay_entry& front() const noexcept { return slots_[head_]; }
  [[nodiscard]] const replay_entry& back() const noexcept { return slots_[index(size_ - 1)]; }
  [[nodiscard]] std::uint64_t acked() const noexcept { return acked_; }
  [[nodiscard]] std::uint64_t highest_evicted() const noexcept { return highest_evicted_; }

 private:
  [[nodiscard]] std::size_t index(std::size_t i) const noexcept {
    const std::size_t at = head_ + i;
    return at < slots_.size() ? at : at - slots_.size();
  }

  void pop_front() noexcept {
    slots_[head_].frame.reset();  // the frame is freed once its last holder lets go
    head_ = index(1);
    --size_;
    if (size_ == 0) head_ = 0;
  }

  void grow() {
    std::vector<replay_entry> bigger(std::min(capacity_, std::max<std::size_t>(4, slots_.size() * 2)));
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move(slots_[index(i)]);
    slots_.swap(bigger);
    head_ = 0;
  }

  std::size_t capacity_;
  std::vector<replay_entry> slots_;  // [head_, head_ + size_) modulo slots_.size() is live
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::uint64_t acked_ = 0;
  std::uint64_t highest_evicted_ = 0;
};

}  // namespace parley
