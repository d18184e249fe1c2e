// libFuzzer target for the per-session masker: the input is a stream of backend
// messages (type byte, 2-byte big-endian length, body) and "passed" events (type byte
// 0x00 then the passed type), as a hostile server could send them. Checks that every
// replacement is a well-formed message of the same type, that a refused message
// carries a reason, and that a replaced DataRow still parses.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "mask/config.h"
#include "mask/filter.h"
#include "protocol/wire.h"

namespace {

namespace mask = sluice::mask;
namespace protocol = sluice::protocol;

mask::ShardMasking& shard() {
  static mask::ShardMasking* instance = [] {
    auto parsed = sluice::core::toml::parse("[mask.strategies]\nemail = \"partial:2\"\n");
    mask::LoadedMasking loaded = mask::load_masking(parsed.root, "");
    if (!loaded.masking) std::abort();
    return new mask::ShardMasking(loaded.masking, nullptr);
  }();
  return *instance;
}

void check_replacement(uint8_t type, const std::vector<uint8_t>& message) {
  if (message.size() < 5) std::abort();
  const uint8_t replaced_type = message[0];
  // A malformed error or notice is replaced by one of the same type; everything else keeps its type.
  if (replaced_type != type) std::abort();
  const uint32_t length = uint32_t{message[1]} << 24 | uint32_t{message[2]} << 16 | uint32_t{message[3]} << 8 | message[4];
  if (length != message.size() - 1) std::abort();
  if (type == 'D') {
    std::vector<protocol::RowValue> values;
    if (!protocol::parse_data_row(std::span<const uint8_t>(message).subspan(5), values)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const protocol::Target target;
  std::unique_ptr<protocol::ResultFilter> filter = shard().open("fuzz", {"agents"}, target);
  if (!filter) std::abort();
  size_t pos = 0;
  std::vector<uint8_t> replacement;
  protocol::ErrorInfo refusal;
  while (pos < size) {
    const uint8_t type = data[pos++];
    if (type == 0) {
      if (pos < size && !filter->inspects(data[pos])) filter->passed(data[pos]);
      ++pos;
      continue;
    }
    if (pos + 2 > size) break;
    const size_t length = size_t{data[pos]} << 8 | data[pos + 1];
    pos += 2;
    const size_t n = std::min(length, size - pos);
    const std::span<const uint8_t> body(data + pos, n);
    pos += n;
    if (!filter->inspects(type)) {
      filter->passed(type);
      continue;
    }
    replacement.clear();
    refusal = {};
    switch (filter->filter(type, body, replacement, refusal)) {
      case protocol::ResultFilter::Action::forward:
        break;
      case protocol::ResultFilter::Action::replace:
        check_replacement(type, replacement);
        break;
      case protocol::ResultFilter::Action::refuse:
        if (refusal.message.empty()) std::abort();
        return 0;  // the session would end here
    }
  }
  filter->take_masked_counts();
  return 0;
}
