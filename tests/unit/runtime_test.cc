// core/ building blocks: the timer wheel and the output queue.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <cstring>

#include "core/out_queue.h"
#include "core/timer_wheel.h"

namespace sluice::core {
namespace {

TEST(TimerWheel, FiresAfterItsDelayNeverBefore) {
  TimerWheel wheel(10, 8);
  TimerNode node;
  int fired = 0;
  node.on_expire = [&] { ++fired; };
  wheel.arm(node, 95);  // beyond one revolution (8 x 10 ms): must wait its turn
  int ticks = 0;
  while (fired == 0 && ticks < 100) {
    wheel.advance();
    ++ticks;
  }
  EXPECT_EQ(fired, 1);
  EXPECT_GE(ticks * 10, 95);
  EXPECT_LE(ticks * 10, 120);
  EXPECT_FALSE(node.armed());
}

TEST(TimerWheel, DisarmAndRearmFromACallback) {
  TimerWheel wheel(10, 16);
  TimerNode a, b;
  int a_fired = 0, b_fired = 0;
  a.on_expire = [&] {
    ++a_fired;
    wheel.disarm(b);  // a callback may touch other nodes of the same slot
  };
  b.on_expire = [&] {
    ++b_fired;
    wheel.disarm(a);
  };
  wheel.arm(a, 10);
  wheel.arm(b, 10);
  for (int i = 0; i < 5; ++i) wheel.advance();
  EXPECT_EQ(a_fired + b_fired, 1) << "whichever fires first disarms the other";
  EXPECT_EQ(wheel.armed_count(), 0u);
}

class CountingPool final : public BufferPool {
 public:
  void retain(BufferIndex) override { ++refs; }
  void release(BufferIndex) override { --refs; }
  size_t buffer_size() const override { return 1024; }
  int refs = 0;
};

TEST(OutQueue, ContiguousSlicesMergeAndPartialSendsResume) {
  CountingPool pool;
  OutQueue q(&pool, 4096);
  uint8_t buffer[100];
  for (int i = 0; i < 100; ++i) buffer[i] = static_cast<uint8_t>(i);
  q.push_buffer_slice(buffer, 10, 0);
  q.push_buffer_slice(buffer + 10, 30, 0);  // contiguous: merged, one reference
  q.push_copy(std::span<const uint8_t>(buffer + 50, 5));
  EXPECT_EQ(pool.refs, 1);
  iovec iov[4];
  ASSERT_EQ(q.prepare_iovecs(iov, 4), 2);
  EXPECT_EQ(iov[0].iov_len, 40u);
  q.consume(25);
  ASSERT_EQ(q.prepare_iovecs(iov, 4), 2);
  EXPECT_EQ(iov[0].iov_len, 15u);
  EXPECT_EQ(static_cast<uint8_t*>(iov[0].iov_base)[0], 25);
  q.consume(15);
  EXPECT_EQ(pool.refs, 0) << "the buffer is released once its bytes are sent";
  q.consume(5);
  EXPECT_TRUE(q.empty());
}

TEST(OutQueue, SmallCopiesShareASegmentAndBytesInFlightNeverMove) {
  CountingPool pool;
  OutQueue q(&pool, 1 << 20);
  const uint8_t row[3] = {'a', 'b', 'c'};
  q.push_copy(row);
  iovec iov[4];
  ASSERT_EQ(q.prepare_iovecs(iov, 4), 1);
  const void* in_flight = iov[0].iov_base;  // a send of these 3 bytes is under way
  for (int i = 0; i < 100; ++i) q.push_copy(row);
  ASSERT_EQ(q.prepare_iovecs(iov, 4), 1) << "101 small rows go out as one iovec";
  EXPECT_EQ(iov[0].iov_base, in_flight) << "appending must not move bytes a send holds";
  EXPECT_EQ(iov[0].iov_len, 303u);
  q.consume(3);  // the first send completes
  ASSERT_EQ(q.prepare_iovecs(iov, 4), 1);
  EXPECT_EQ(iov[0].iov_len, 300u);
  EXPECT_EQ(std::string(static_cast<const char*>(iov[0].iov_base), 3), "abc");
  const std::vector<uint8_t> big(OutQueue::kCopyChunk, 'x');  // does not fit: a segment of its own
  q.push_copy(big);
  EXPECT_EQ(q.prepare_iovecs(iov, 4), 2);
  q.consume(300 + big.size());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.queued_bytes(), 0u);
}

TEST(OutQueue, LimitCountsWholeBuffersHeld) {
  CountingPool pool;
  OutQueue q(&pool, 4096);
  uint8_t bytes[8] = {};
  for (int i = 0; i < 3; ++i) q.push_buffer_slice(bytes, 1, i);
  EXPECT_FALSE(q.over_limit());
  q.push_buffer_slice(bytes, 1, 3);  // 4 buffers of 1 KiB pinned by 4 bytes
  EXPECT_TRUE(q.over_limit());
  q.clear();
  EXPECT_EQ(pool.refs, 0);
  EXPECT_TRUE(q.below_resume_mark());
}

}  // namespace
}  // namespace sluice::core
