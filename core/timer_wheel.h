// A hashed timer wheel for one shard: deadlines for startup/auth, backend login,
// idle sessions and stalled writes. O(1) arm/disarm, advanced by a periodic tick.
//
// Invariants: a TimerNode is linked into at most one slot, exactly when armed();
// a node must be disarmed (or fire) before its owner is destroyed (the destructor
// asserts it is not armed). Deadlines beyond one revolution stay in their slot and
// are skipped until their tick comes.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace sluice::core {

class TimerWheel;

struct TimerNode {
  TimerNode() = default;
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;
  ~TimerNode();
  bool armed() const { return wheel_ != nullptr; }

  // Set by the owner; called once when the deadline passes (the node is disarmed first).
  std::function<void()> on_expire;

 private:
  friend class TimerWheel;
  TimerNode* prev_ = nullptr;
  TimerNode* next_ = nullptr;
  TimerWheel* wheel_ = nullptr;
  uint64_t expires_tick_ = 0;
};

class TimerWheel {
 public:
  // tick_ms: resolution; slots: wheel size (power of two).
  TimerWheel(uint32_t tick_ms, uint32_t slots);
  ~TimerWheel();

  uint32_t tick_ms() const { return tick_ms_; }
  uint64_t now_tick() const { return now_tick_; }

  // (Re)arms node to fire after at least delay_ms.
  void arm(TimerNode& node, uint64_t delay_ms);
  void disarm(TimerNode& node);
  // Advances one tick and fires what expired. Returns how many fired.
  int advance();
  size_t armed_count() const { return armed_count_; }

 private:
  void link(TimerNode& node, uint32_t slot);
  uint32_t tick_ms_;
  uint32_t mask_;
  uint64_t now_tick_ = 0;
  size_t armed_count_ = 0;
  std::vector<TimerNode*> heads_;
};

}  // namespace sluice::core
