// Frame splitting cost: how fast the FrameReader walks a received buffer of typed
// messages and turns it into forwarded slices (the per-byte work on the data path).
#include <benchmark/benchmark.h>

#include "core/out_queue.h"
#include "protocol/frame_reader.h"
#include "protocol/wire.h"

namespace {

using sluice::protocol::Disposition;

class NullPool final : public sluice::core::BufferPool {
 public:
  void retain(sluice::core::BufferIndex) override {}
  void release(sluice::core::BufferIndex) override {}
  size_t buffer_size() const override { return 16384; }
};

// Forwards everything except ReadyForQuery, which it peeks at (as the session does).
struct ForwardSink {
  sluice::core::OutQueue* queue;
  uint64_t peeked = 0;
  Disposition on_header(uint8_t type, uint32_t) { return type == 'Z' ? Disposition::forward_and_peek : Disposition::forward; }
  void on_forward(const uint8_t* data, uint32_t size, sluice::core::BufferIndex buffer) {
    queue->push_buffer_slice(data, size, buffer);
  }
  bool on_message(uint8_t, std::span<const uint8_t> body) {
    peeked += body.size();
    return true;
  }
};

// A 16 KiB receive buffer full of DataRows of `row_bytes` each, ending with ReadyForQuery.
std::vector<uint8_t> result_buffer(size_t row_bytes) {
  std::vector<uint8_t> out;
  const std::string value(row_bytes, 'v');
  const auto row = sluice::protocol::MessageBuilder('D').int16(1).int32(static_cast<int32_t>(row_bytes)).bytes(value).finish();
  while (out.size() + row.size() + 6 <= 16384) out.insert(out.end(), row.begin(), row.end());
  const auto z = sluice::protocol::ready_for_query('I');
  out.insert(out.end(), z.begin(), z.end());
  return out;
}

void BM_FrameReaderForwardRows(benchmark::State& state) {
  const auto buffer = result_buffer(static_cast<size_t>(state.range(0)));
  NullPool pool;
  sluice::core::OutQueue queue(&pool, 1u << 30);
  sluice::protocol::FrameReader reader;
  ForwardSink sink{&queue};
  size_t messages = 0;
  for (auto _ : state) {
    reader.feed(sluice::core::Chunk{buffer.data(), static_cast<uint32_t>(buffer.size()), 0}, sink);
    queue.consume(queue.queued_bytes());
    messages += buffer.size() / (state.range(0) + 11);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buffer.size()));
  state.counters["messages/s"] = benchmark::Counter(static_cast<double>(messages), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FrameReaderForwardRows)->Arg(16)->Arg(100)->Arg(1000)->Arg(8000);

// The same stream delivered in 7-byte pieces: every header straddles chunk boundaries.
void BM_FrameReaderTinyChunks(benchmark::State& state) {
  const auto buffer = result_buffer(100);
  NullPool pool;
  sluice::core::OutQueue queue(&pool, 1u << 30);
  sluice::protocol::FrameReader reader;
  ForwardSink sink{&queue};
  for (auto _ : state) {
    for (size_t pos = 0; pos < buffer.size(); pos += 7) {
      const uint32_t n = static_cast<uint32_t>(std::min<size_t>(7, buffer.size() - pos));
      reader.feed(sluice::core::Chunk{buffer.data() + pos, n, 0}, sink);
    }
    queue.consume(queue.queued_bytes());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buffer.size()));
}
BENCHMARK(BM_FrameReaderTinyChunks);

}  // namespace
