// The [mask] loader and the per-session ResultMasker, fed protocol messages directly:
// what is inspected, how RowDescriptions plan the rows that follow, and what each
// channel's masked form is.
#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mask/config.h"
#include "mask/filter.h"
#include "protocol/wire.h"
#include "tests/unit/test_support.h"

namespace sluice::mask {
namespace {

using protocol::ResultFilter;
using Action = ResultFilter::Action;

constexpr const char* kAwsKey = "AKIAVQJXXVBOTHD2WTFL";
constexpr const char* kEmail = "alice.smith@example.com";

LoadedMasking load(const std::string& toml, const std::string& base_dir = "") {
  auto parsed = core::toml::parse(toml);
  EXPECT_TRUE(parsed.ok());
  return load_masking(parsed.root, base_dir);
}

std::string problems(const LoadedMasking& loaded) {
  std::string out;
  for (const auto& p : loaded.problems) out += std::to_string(p.line) + ": " + p.message + "\n";
  return out;
}

std::span<const uint8_t> body_of(const std::vector<uint8_t>& message) {
  return std::span<const uint8_t>(message).subspan(5);
}

// RowDescription body for columns of the given type OIDs, all in `format`.
std::vector<uint8_t> row_description(const std::vector<uint32_t>& types, int16_t format = 0) {
  protocol::MessageBuilder b('T');
  b.int16(static_cast<int16_t>(types.size()));
  for (size_t i = 0; i < types.size(); ++i) {
    b.cstring("c" + std::to_string(i)).int32(0).int16(0).int32(static_cast<int32_t>(types[i])).int16(-1).int32(-1).int16(format);
  }
  return b.finish();
}

std::vector<uint8_t> data_row(const std::vector<std::optional<std::string>>& values) {
  std::vector<protocol::RowValue> row(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    row[i].is_null = !values[i];
    if (values[i]) row[i].bytes = {reinterpret_cast<const uint8_t*>(values[i]->data()), values[i]->size()};
  }
  return protocol::data_row(row);
}

// The values of a DataRow message (nullopt = NULL).
std::vector<std::optional<std::string>> values_of(const std::vector<uint8_t>& message) {
  std::vector<protocol::RowValue> row;
  EXPECT_TRUE(protocol::parse_data_row(body_of(message), row));
  std::vector<std::optional<std::string>> out;
  for (const auto& v : row)
    out.push_back(v.is_null ? std::nullopt
                            : std::optional<std::string>(std::string(v.bytes.begin(), v.bytes.end())));
  return out;
}

class MaskFilter : public ::testing::Test {
 protected:
  void open(const std::string& toml = "") {
    LoadedMasking loaded = load(toml);
    ASSERT_TRUE(loaded.masking) << problems(loaded);
    shard_ = std::make_unique<ShardMasking>(loaded.masking, nullptr);
    filter_ = shard_->open("alice", {"dev"}, target_);
    ASSERT_TRUE(filter_);
  }
  Action feed(const std::vector<uint8_t>& message) {
    replacement_.clear();
    return filter_->filter(message[0], body_of(message), replacement_, refusal_);
  }

  protocol::Target target_;
  std::unique_ptr<ShardMasking> shard_;
  std::unique_ptr<ResultFilter> filter_;
  std::vector<uint8_t> replacement_;
  protocol::ErrorInfo refusal_;
};

TEST(MaskConfig, DefaultsScanBothTiersWithTheBuiltInPack) {
  LoadedMasking loaded = load("");
  ASSERT_TRUE(loaded.masking) << problems(loaded);
  EXPECT_TRUE(loaded.masking->config.enabled);
  EXPECT_TRUE(loaded.masking->config.scan_secrets);
  EXPECT_TRUE(loaded.masking->config.scan_pii);
  ASSERT_TRUE(loaded.masking->patterns);
  EXPECT_GE(loaded.masking->patterns->size(), 40u);
  EXPECT_FALSE(loaded.masking->token_key) << "no kind uses the token strategy by default";
}

TEST(MaskConfig, EveryProblemIsReportedWithItsLine) {
  LoadedMasking loaded = load(
      "[mask]\n"
      "enabeld = true\n"                       // 2: typo
      "pii = \"yes\"\n"                        // 3: wrong type
      "[mask.strategies]\n"
      "no_such_kind = \"redact\"\n"            // 5: unknown kind
      "email = \"partial:99\"\n"               // 6: out of range
      "[[mask.pattern]]\n"                     // 7
      "kind = \"Bad Kind\"\n"                  // 8: not snake_case
      "regex = 'x'\n"
      "[[mask.pattern]]\n"                     // 10
      "kind = \"email\"\n"                     // 11: built in already
      "regex = 'x'\n"
      "[[mask.pattern]]\n"                     // 13
      "kind = \"broken\"\n"
      "regex = 'a(b'\n"                        // does not compile: reported once the rest is clean
      "validator = \"crc64\"\n");              // 16: unknown validator
  EXPECT_FALSE(loaded.masking);
  const std::string text = problems(loaded);
  EXPECT_NE(text.find("2: unknown key 'enabeld' in [mask] (did you mean 'enabled'?)"), std::string::npos) << text;
  EXPECT_NE(text.find("3: "), std::string::npos) << text;
  EXPECT_NE(text.find("5: [mask.strategies] names unknown kind 'no_such_kind'"), std::string::npos) << text;
  EXPECT_NE(text.find("6: [mask.strategies] 'email' must be one of"), std::string::npos) << text;
  EXPECT_NE(text.find("8: 'kind' in [[mask.pattern]] must be"), std::string::npos) << text;
  EXPECT_NE(text.find("11: kind 'email' is already defined"), std::string::npos) << text;
  EXPECT_NE(text.find("16: unknown validator 'crc64'"), std::string::npos) << text;
}

TEST(MaskConfig, ARegexThatDoesNotCompileNamesItsPatternAndLine) {
  LoadedMasking loaded = load(
      "[[mask.pattern]]\nkind = \"fine\"\nregex = 'FINE-[0-9]+'\n"
      "[[mask.pattern]]\nkind = \"broken\"\nregex = 'a(b'\n");
  EXPECT_FALSE(loaded.masking);
  const std::string text = problems(loaded);
  EXPECT_NE(text.find("4: "), std::string::npos) << text;
  EXPECT_NE(text.find("broken"), std::string::npos) << text;
}

TEST(MaskConfig, TheTokenStrategyNeedsAKeyFile) {
  LoadedMasking missing = load("[mask.strategies]\nemail = \"token\"\n");
  EXPECT_FALSE(missing.masking);
  EXPECT_NE(problems(missing).find("token_key_file"), std::string::npos) << problems(missing);

  testing_support::TempDir dir;
  dir.write("token.key", std::string(64, 'a'), 0600);
  LoadedMasking loaded = load("[mask]\ntoken_key_file = \"token.key\"\n[mask.strategies]\nemail = \"token\"\n", dir.path());
  ASSERT_TRUE(loaded.masking) << problems(loaded);
  EXPECT_TRUE(loaded.masking->token_key);
}

TEST(MaskConfig, ExemptGroupsOpenNoFilterAndDisabledMaskingNone) {
  LoadedMasking loaded = load("[mask]\nexempt_groups = [\"dba\"]\n");
  ASSERT_TRUE(loaded.masking) << problems(loaded);
  ShardMasking shard(loaded.masking, nullptr);
  protocol::Target target;
  EXPECT_FALSE(shard.open("root", {"dev", "dba"}, target));
  EXPECT_TRUE(shard.open("agent", {"dev"}, target));

  LoadedMasking off = load("[mask]\nenabled = false\n");
  ASSERT_TRUE(off.masking) << problems(off);
  EXPECT_FALSE(ShardMasking(off.masking, nullptr).open("agent", {"dev"}, target));
}

TEST_F(MaskFilter, InspectsTheMessagesThatCarryData) {
  open();
  for (char type : std::string("TDENAVHd")) EXPECT_TRUE(filter_->inspects(static_cast<uint8_t>(type))) << type;
  for (char type : std::string("CZ12t3nsIS")) EXPECT_FALSE(filter_->inspects(static_cast<uint8_t>(type))) << type;
}

TEST_F(MaskFilter, DescribedTextRowsAreRewrittenInPlaceAndCleanRowsForwarded) {
  open();
  EXPECT_EQ(feed(row_description({25, 23, 2950, 1043})), Action::forward);
  EXPECT_EQ(feed(data_row({"nothing here", "42", "6026b2f0-24ed-4e01-9720-852dc0e34232", std::nullopt})),
            Action::forward);
  EXPECT_EQ(feed(data_row({std::string("key ") + kAwsKey, "7", std::nullopt, std::string("mail ") + kEmail})),
            Action::replace);
  const auto values = values_of(replacement_);
  ASSERT_EQ(values.size(), 4u);
  EXPECT_EQ(values[0], std::optional<std::string>("key [masked:aws_access_key_id]"));
  EXPECT_EQ(values[1], std::optional<std::string>("7"));
  EXPECT_EQ(values[2], std::nullopt);
  EXPECT_EQ(values[3], std::optional<std::string>("mail [masked:email]"));
  auto counts = filter_->take_masked_counts();
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0], (std::pair<std::string, uint64_t>("aws_access_key_id", 1)));
  EXPECT_EQ(counts[1], (std::pair<std::string, uint64_t>("email", 1)));
  EXPECT_TRUE(filter_->take_masked_counts().empty()) << "taking the counts resets them";
}

TEST_F(MaskFilter, ColumnsOfTypesThatHoldNoTextAreNotScanned) {
  open();
  // A "text" that looks like a key, but in an int8 column, is a number by type: not
  // scanned (it cannot actually hold one; the test shows the type decides).
  feed(row_description({20}));
  EXPECT_EQ(feed(data_row({std::string(kAwsKey)})), Action::forward);
}

TEST_F(MaskFilter, RowsAfterTheResultEndedAreMaskedWholeAsUnknown) {
  open();
  feed(row_description({25}));
  filter_->passed('C');  // CommandComplete: that description is over
  EXPECT_EQ(feed(data_row({std::string("key ") + kAwsKey})), Action::replace);
  EXPECT_EQ(values_of(replacement_)[0], std::nullopt);
}

TEST_F(MaskFilter, UndescribedRowsAreScannedForPiiToo) {
  // Their type is unknown, so they may be free text: an e-mail address is a finding
  // (and, the type being unknown, the value becomes NULL).
  open();
  EXPECT_EQ(feed(data_row({std::string("mail ") + kEmail, "7"})), Action::replace);
  EXPECT_EQ(values_of(replacement_)[0], std::nullopt);
  EXPECT_EQ(values_of(replacement_)[1], std::optional<std::string>("7"));
}

TEST_F(MaskFilter, AStatementDescriptionDoesNotPlanTheRowsThatFollow) {
  open();
  filter_->passed('t');  // ParameterDescription: the RowDescription is a statement's
  feed(row_description({25}));
  filter_->passed('2');  // BindComplete
  EXPECT_EQ(feed(data_row({std::string("key ") + kAwsKey})), Action::replace);
  EXPECT_EQ(values_of(replacement_)[0], std::nullopt);
}

TEST_F(MaskFilter, ARowThatDoesNotMatchItsDescriptionIsMaskedAsUnknown) {
  open();
  feed(row_description({25, 25}));
  EXPECT_EQ(feed(data_row({std::string("key ") + kAwsKey})), Action::replace);
  EXPECT_EQ(values_of(replacement_)[0], std::nullopt);
}

TEST_F(MaskFilter, BinaryJsonbKeepsItsVersionByteAndStaysJson) {
  open();
  feed(row_description({3802}, 1));
  EXPECT_EQ(feed(data_row({std::string("\x01{\"k\": \"") + kAwsKey + "\"}"})), Action::replace);
  EXPECT_EQ(values_of(replacement_)[0], std::optional<std::string>("\x01{\"k\": \"[masked:aws_access_key_id]\"}"));
}

TEST_F(MaskFilter, HexByteaIsDecodedBeforeScanning) {
  open();
  feed(row_description({17}));
  std::string hex = "\\x";
  for (unsigned char c : std::string(kAwsKey)) {
    static constexpr char kDigits[] = "0123456789abcdef";
    hex += kDigits[c >> 4];
    hex += kDigits[c & 15];
  }
  EXPECT_EQ(feed(data_row({hex})), Action::replace);
  const auto value = values_of(replacement_)[0];
  ASSERT_TRUE(value);
  EXPECT_EQ(value->rfind("\\x", 0), 0u) << "still bytea text: " << *value;
  EXPECT_NE(*value, hex);
}

TEST_F(MaskFilter, AMalformedDataRowIsRefused) {
  open();
  const std::vector<uint8_t> bad = {'D', 0, 0, 0, 10, 0, 1, 0, 0, 0, 9};  // one value of 9 bytes, none present
  EXPECT_EQ(feed(bad), Action::refuse);
  EXPECT_EQ(refusal_.severity, "FATAL");
}

TEST_F(MaskFilter, ErrorFieldsThatQuoteValuesAreMaskedAndTheRestKept) {
  open();
  protocol::ErrorInfo e;
  e.sqlstate = "23505";
  e.message = "duplicate key value violates unique constraint \"accounts_email_key\"";
  e.detail = std::string("Key (email)=(") + kEmail + ") already exists.";
  EXPECT_EQ(feed(protocol::error_response(e)), Action::replace);
  std::vector<protocol::ErrorField> fields;
  ASSERT_TRUE(protocol::parse_error_fields(body_of(replacement_), fields));
  EXPECT_EQ(protocol::error_field(fields, 'C'), "23505");
  EXPECT_EQ(protocol::error_field(fields, 'M'), e.message);
  EXPECT_EQ(protocol::error_field(fields, 'D'), "Key (email)=([masked:email]) already exists.");
  // An error with nothing in it is forwarded as it came.
  protocol::ErrorInfo plain;
  plain.sqlstate = "42P01";
  plain.message = "relation \"nope\" does not exist";
  EXPECT_EQ(feed(protocol::error_response(plain)), Action::forward);
}

TEST_F(MaskFilter, NotificationsAndFunctionResults) {
  open();
  auto notification = protocol::MessageBuilder('A').int32(7).cstring("chan").cstring(std::string("k=") + kAwsKey).finish();
  EXPECT_EQ(feed(notification), Action::replace);
  protocol::BodyReader r(body_of(replacement_));
  int32_t pid;
  std::string_view channel, payload;
  ASSERT_TRUE(r.int32(pid) && r.cstring(channel) && r.cstring(payload));
  EXPECT_EQ(pid, 7);
  EXPECT_EQ(channel, "chan");
  EXPECT_EQ(payload, "k=[masked:aws_access_key_id]");

  const std::string value = std::string("x ") + kAwsKey;
  auto result = protocol::MessageBuilder('V').int32(static_cast<int32_t>(value.size())).bytes(value).finish();
  EXPECT_EQ(feed(result), Action::replace);
  EXPECT_EQ(replacement_, protocol::MessageBuilder('V').int32(-1).finish());
}

TEST_F(MaskFilter, CopyTextLinesAreRewrittenAndBinaryCopyWithAFindingRefused) {
  open();
  feed(protocol::MessageBuilder('H').byte(0).int16(1).int16(0).finish());
  const std::string line = std::string("1\t") + kAwsKey + "\n";
  EXPECT_EQ(feed(protocol::MessageBuilder('d').bytes(line).finish()), Action::replace);
  EXPECT_EQ(std::string(replacement_.begin() + 5, replacement_.end()), "1\t[masked:aws_access_key_id]\n");
  filter_->passed('c');

  feed(protocol::MessageBuilder('H').byte(1).int16(1).int16(1).finish());
  EXPECT_EQ(feed(protocol::MessageBuilder('d').bytes(std::string(kAwsKey)).finish()), Action::refuse)
      << "not binary COPY's layout, and a finding in it: refused, never forwarded";
  EXPECT_NE(refusal_.message.find("binary"), std::string::npos) << refusal_.message;
}

// Binary COPY as PostgreSQL sends it: the file header with the first tuple, one tuple
// per message, the trailer alone.
TEST_F(MaskFilter, BinaryCopyFieldsWithFindingsBecomeNull) {
  open();
  feed(protocol::MessageBuilder('H').byte(1).int16(2).int16(1).int16(1).finish());
  const std::string header("PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", 19);
  auto tuple = [](int32_t id, const std::string& text) {
    protocol::MessageBuilder b('d');
    b.int16(2).int32(4).int32(id).int32(static_cast<int32_t>(text.size())).bytes(text);
    return b;
  };
  const std::string secret = std::string("key ") + kAwsKey;
  auto first = protocol::MessageBuilder('d');
  first.bytes(header).int16(2).int32(4).int32(1).int32(static_cast<int32_t>(secret.size())).bytes(secret);
  EXPECT_EQ(feed(first.finish()), Action::replace);
  const std::string expected_first = header + std::string("\0\2\0\0\0\4\0\0\0\1\xff\xff\xff\xff", 14);
  EXPECT_EQ(std::string(replacement_.begin() + 5, replacement_.end()), expected_first)
      << "the header stays, the id stays, the text with a key becomes NULL";
  EXPECT_EQ(feed(tuple(2, "nothing here").finish()), Action::forward);
  EXPECT_EQ(feed(tuple(3, kEmail).finish()), Action::replace);
  EXPECT_EQ(feed(protocol::MessageBuilder('d').int16(-1).finish()), Action::forward) << "the trailer";
  const auto counts = filter_->take_masked_counts();
  EXPECT_EQ(counts.size(), 2u);
  filter_->passed('c');
}

}  // namespace
}  // namespace sluice::mask
