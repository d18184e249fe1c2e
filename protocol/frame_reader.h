// Splits one direction's byte stream into typed v3 messages ("type, int32 length,
// body") without copying what only needs forwarding.
//
// For each message header the sink decides a Disposition. Forwarded bytes reach the
// sink as slices of the received chunk (so whole runs of messages become one slice
// of one buffer); captured bodies are copied into a bounded buffer and handed over
// whole. The reader never allocates by a peer's declared length: a capture grows
// only as bytes arrive, and the sink rejects a length over its limit before that.
//
// Sink interface (duck-typed, called synchronously from feed()):
//   Disposition on_header(uint8_t type, uint32_t body_length);
//   void on_forward(const uint8_t* data, uint32_t size, core::BufferIndex buffer);  // buffer may be kNoBuffer
//   bool on_message(uint8_t type, std::span<const uint8_t> body);  // captured; false = stop (violation or close)
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "core/buffer_pool.h"

namespace sluice::protocol {

enum class Disposition {
  forward,            // pass the message through untouched
  capture,            // hand the whole message to on_message; nothing is forwarded
  forward_and_peek,   // forward it and also hand a copy to on_message (small messages)
  skip,               // drop it: neither forwarded nor handed over (its length is never buffered)
  violation,          // stop: the stream is not acceptable (the sink has already reacted)
};

class FrameReader {
 public:
  enum class Result { ok, stopped };

  // True between messages (no partial header or body pending).
  bool at_boundary() const { return header_have_ == 0 && body_left_ == 0 && !in_body_; }

  template <typename Sink>
  Result feed(core::Chunk chunk, Sink& sink);

  // During on_message: the whole message (header and body) lies in one received
  // buffer, `buffer`, starting 5 bytes before the body the sink was given: it was not
  // copied, and the sink may forward it as a slice of that buffer. kNoBuffer otherwise.
  core::BufferIndex message_buffer() const { return in_place_buffer_; }

  // Releases a large capture buffer after use, so idle sessions stay small. Never
  // in the middle of a message: the buffer then holds a capture still arriving.
  void trim() {
    if (!in_body_ && capture_.capacity() > kKeepCapacity) std::vector<uint8_t>().swap(capture_);
  }

 private:
  static constexpr size_t kKeepCapacity = 8 * 1024;
  template <typename Sink>
  bool finish_message(Sink& sink);

  uint8_t header_[5];
  uint32_t header_have_ = 0;  // bytes of header_ filled while a header straddles chunks
  bool in_body_ = false;
  uint32_t body_left_ = 0;
  uint8_t type_ = 0;
  Disposition disposition_ = Disposition::forward;
  bool header_in_place_ = false;  // the current message's header is in the chunk being fed
  core::BufferIndex in_place_buffer_ = core::kNoBuffer;
  std::vector<uint8_t> capture_;
};

template <typename Sink>
bool FrameReader::finish_message(Sink& sink) {
  in_body_ = false;
  if (disposition_ == Disposition::forward || disposition_ == Disposition::skip) return true;
  const bool go_on = sink.on_message(type_, std::span<const uint8_t>(capture_.data(), capture_.size()));
  capture_.clear();
  return go_on;
}

template <typename Sink>
FrameReader::Result FrameReader::feed(core::Chunk chunk, Sink& sink) {
  const uint8_t* data = chunk.data;
  uint32_t pos = 0;
  header_in_place_ = false;  // a message continuing from an earlier chunk is not in this one
  while (pos < chunk.size) {
    if (in_body_) {
      const uint32_t n = std::min(body_left_, chunk.size - pos);
      if (disposition_ == Disposition::skip) {
        pos += n;
        body_left_ -= n;
        if (body_left_ == 0) in_body_ = false;
        continue;
      }
      if (n == body_left_ && capture_.empty() && header_in_place_ && disposition_ != Disposition::forward) {
        // The whole message is in this chunk: hand it over where it lies, no copy.
        if (disposition_ == Disposition::forward_and_peek) sink.on_forward(data + pos, n, chunk.buffer);
        pos += n;
        body_left_ = 0;
        in_body_ = false;
        in_place_buffer_ = chunk.buffer;
        const bool go_on = sink.on_message(type_, std::span<const uint8_t>(data + pos - n, n));
        in_place_buffer_ = core::kNoBuffer;
        if (!go_on) return Result::stopped;
        continue;
      }
      header_in_place_ = false;
      if (disposition_ != Disposition::capture) sink.on_forward(data + pos, n, chunk.buffer);
      if (disposition_ != Disposition::forward) capture_.insert(capture_.end(), data + pos, data + pos + n);
      pos += n;
      body_left_ -= n;
      if (body_left_ == 0 && !finish_message(sink)) return Result::stopped;
      continue;
    }
    // Header: in place when all five bytes are in this chunk, else assembled in header_.
    const uint8_t* header;
    bool header_in_place;
    if (header_have_ == 0 && chunk.size - pos >= 5) {
      header = data + pos;
      header_in_place = true;
      pos += 5;
    } else {
      const uint32_t n = std::min<uint32_t>(5 - header_have_, chunk.size - pos);
      std::memcpy(header_ + header_have_, data + pos, n);
      header_have_ += n;
      pos += n;
      if (header_have_ < 5) return Result::ok;  // wait for the rest of the header
      header = header_;
      header_in_place = false;
      header_have_ = 0;
    }
    type_ = header[0];
    uint32_t length;
    std::memcpy(&length, header + 1, 4);
    length = ntohl(length);
    // length counts itself; < 4 is malformed and >= 2^31 is treated as malformed too.
    const uint32_t body_length = (length < 4 || length > 0x7fffffffu) ? 0xffffffffu : length - 4;
    disposition_ = sink.on_header(type_, body_length);
    if (disposition_ == Disposition::violation) return Result::stopped;
    if (disposition_ != Disposition::capture && disposition_ != Disposition::skip) {
      if (header_in_place) sink.on_forward(header, 5, chunk.buffer);
      else sink.on_forward(header, 5, core::kNoBuffer);
    }
    capture_.clear();
    in_body_ = true;
    header_in_place_ = header_in_place;
    body_left_ = body_length;
    if (body_left_ == 0 && !finish_message(sink)) return Result::stopped;
  }
  return Result::ok;
}

}  // namespace sluice::protocol
