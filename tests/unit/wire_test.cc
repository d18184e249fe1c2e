// protocol/wire.h: the bounded body reader and the result-set helpers masking uses.
#include <gtest/gtest.h>

#include <string_view>
#include <vector>

#include "protocol/wire.h"

namespace sluice::protocol {
namespace {

TEST(BodyReader, AnEmptyBodyWithoutStorageReadsNothing) {
  // A captured message with no body hands over a span with a null data pointer;
  // libFuzzer found memchr being called on it (undefined behaviour).
  BodyReader r(std::span<const uint8_t>{});
  std::string_view text;
  EXPECT_FALSE(r.cstring(text));
  uint8_t byte;
  EXPECT_FALSE(r.byte(byte));
  int32_t n;
  EXPECT_FALSE(r.int32(n));
  EXPECT_TRUE(r.at_end());
}

TEST(ResultMessages, DataRowRoundTripsAndRejectsLiesAboutLengths) {
  const std::string a = "alpha";
  std::vector<RowValue> row(3);
  row[0].bytes = {reinterpret_cast<const uint8_t*>(a.data()), a.size()};
  row[1].is_null = true;
  const std::vector<uint8_t> message = data_row(row);
  std::vector<RowValue> parsed;
  ASSERT_TRUE(parse_data_row(std::span<const uint8_t>(message).subspan(5), parsed));
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(parsed[0].bytes.data()), parsed[0].bytes.size()), "alpha");
  EXPECT_TRUE(parsed[1].is_null);
  EXPECT_FALSE(parsed[2].is_null);
  EXPECT_TRUE(parsed[2].bytes.empty());
  // A value longer than the body, a negative length other than -1, trailing bytes,
  // a column count over PostgreSQL's limit: all refused.
  const std::vector<std::vector<uint8_t>> bad = {
      {0, 1, 0, 0, 0, 9, 'x'},
      {0, 1, 0xff, 0xff, 0xff, 0xfe},
      {0, 0, 7},
      {0x06, 0x81},
      {0xff, 0xff},
  };
  for (const auto& body : bad) EXPECT_FALSE(parse_data_row(body, parsed));
}

TEST(ResultMessages, RowDescriptionFieldsAreRead) {
  const std::vector<uint8_t> message = MessageBuilder('T')
                                           .int16(1)
                                           .cstring("email")
                                           .int32(16384)
                                           .int16(2)
                                           .int32(25)
                                           .int16(-1)
                                           .int32(-1)
                                           .int16(1)
                                           .finish();
  std::vector<ColumnDescription> columns;
  ASSERT_TRUE(parse_row_description(std::span<const uint8_t>(message).subspan(5), columns));
  ASSERT_EQ(columns.size(), 1u);
  EXPECT_EQ(columns[0].name, "email");
  EXPECT_EQ(columns[0].table_oid, 16384u);
  EXPECT_EQ(columns[0].column_number, 2);
  EXPECT_EQ(columns[0].type_oid, 25u);
  EXPECT_EQ(columns[0].format, 1);
  EXPECT_FALSE(parse_row_description(std::span<const uint8_t>(message).subspan(5, 8), columns));
}

}  // namespace
}  // namespace sluice::protocol

#include "protocol/frame_reader.h"

namespace sluice::protocol {
namespace {

// Captures every message; records for each whether it was handed over in place.
struct RecordingSink {
  FrameReader* reader = nullptr;
  struct Seen {
    std::string body;
    core::BufferIndex buffer;
    bool header_before_body;  // in place: the 5 header bytes sit right before the body
  };
  std::vector<Seen> seen;
  Disposition on_header(uint8_t, uint32_t) { return Disposition::capture; }
  void on_forward(const uint8_t*, uint32_t, core::BufferIndex) { ADD_FAILURE() << "nothing is forwarded"; }
  bool on_message(uint8_t type, std::span<const uint8_t> body) {
    const core::BufferIndex buffer = reader->message_buffer();
    const bool header_ok = buffer != core::kNoBuffer && body.data()[-5] == type;
    seen.push_back({std::string(reinterpret_cast<const char*>(body.data()), body.size()), buffer, header_ok});
    return true;
  }
};

std::string message(char type, const std::string& body) {
  std::string m(1, type);
  const uint32_t length = htonl(static_cast<uint32_t>(body.size() + 4));
  m.append(reinterpret_cast<const char*>(&length), 4);
  return m + body;
}

TEST(FrameReader, WholeMessagesAreHandedOverInPlaceAndSplitOnesAreCopied) {
  // Three messages; chunk 1 ends exactly after the second message's header, so its body
  // arrives in chunk 2 without its header: it must be copied, never "in place".
  const std::string a = message('d', "first"), b = message('d', "second"), c = message('d', "third");
  const std::string chunk1 = a + b.substr(0, 5), chunk2 = b.substr(5) + c;
  FrameReader reader;
  RecordingSink sink;
  sink.reader = &reader;
  ASSERT_EQ(reader.feed(core::Chunk{reinterpret_cast<const uint8_t*>(chunk1.data()),
                                    static_cast<uint32_t>(chunk1.size()), 7},
                        sink),
            FrameReader::Result::ok);
  ASSERT_EQ(reader.feed(core::Chunk{reinterpret_cast<const uint8_t*>(chunk2.data()),
                                    static_cast<uint32_t>(chunk2.size()), 8},
                        sink),
            FrameReader::Result::ok);
  ASSERT_EQ(sink.seen.size(), 3u);
  EXPECT_EQ(sink.seen[0].body, "first");
  EXPECT_EQ(sink.seen[0].buffer, 7u);
  EXPECT_TRUE(sink.seen[0].header_before_body);
  EXPECT_EQ(sink.seen[1].body, "second");
  EXPECT_EQ(sink.seen[1].buffer, core::kNoBuffer) << "its header was in the previous chunk";
  EXPECT_EQ(sink.seen[2].body, "third");
  EXPECT_EQ(sink.seen[2].buffer, 8u);
  EXPECT_TRUE(sink.seen[2].header_before_body);
  EXPECT_EQ(reader.message_buffer(), core::kNoBuffer) << "only meaningful inside on_message";
}

}  // namespace
}  // namespace sluice::protocol
