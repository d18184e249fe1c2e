#include "core/timer_wheel.h"

#include <cassert>

namespace sluice::core {

TimerNode::~TimerNode() {
  if (wheel_ != nullptr) wheel_->disarm(*this);
}

TimerWheel::TimerWheel(uint32_t tick_ms, uint32_t slots) : tick_ms_(tick_ms), mask_(slots - 1), heads_(slots, nullptr) {
  assert(tick_ms > 0);
  assert(slots > 0 && (slots & (slots - 1)) == 0);
}

TimerWheel::~TimerWheel() {
  for (TimerNode*& head : heads_) {
    while (head != nullptr) disarm(*head);
  }
}

void TimerWheel::link(TimerNode& node, uint32_t slot) {
  node.prev_ = nullptr;
  node.next_ = heads_[slot];
  if (node.next_ != nullptr) node.next_->prev_ = &node;
  heads_[slot] = &node;
  node.wheel_ = this;
  ++armed_count_;
}

void TimerWheel::arm(TimerNode& node, uint64_t delay_ms) {
  if (node.armed()) disarm(node);
  // Round up so a timer never fires early; +1 because the current tick is partly over.
  const uint64_t ticks = (delay_ms + tick_ms_ - 1) / tick_ms_ + 1;
  node.expires_tick_ = now_tick_ + ticks;
  link(node, static_cast<uint32_t>(node.expires_tick_ & mask_));
}

void TimerWheel::disarm(TimerNode& node) {
  if (node.wheel_ == nullptr) return;
  assert(node.wheel_ == this);
  if (node.prev_ != nullptr) {
    node.prev_->next_ = node.next_;
  } else {
    heads_[node.expires_tick_ & mask_] = node.next_;
  }
  if (node.next_ != nullptr) node.next_->prev_ = node.prev_;
  node.prev_ = node.next_ = nullptr;
  node.wheel_ = nullptr;
  --armed_count_;
}

int TimerWheel::advance() {
  ++now_tick_;
  const uint32_t slot = static_cast<uint32_t>(now_tick_ & mask_);
  int fired = 0;
  // One node at a time, rescanning from the head: a callback may arm, disarm or
  // destroy any other node, so no pointer into the slot survives a callback.
  for (;;) {
    TimerNode* due = nullptr;
    for (TimerNode* node = heads_[slot]; node != nullptr; node = node->next_) {
      if (node->expires_tick_ <= now_tick_) {
        due = node;
        break;
      }
    }
    if (due == nullptr) return fired;
    disarm(*due);
    ++fired;
    if (due->on_expire) due->on_expire();
  }
}

}  // namespace sluice::core
