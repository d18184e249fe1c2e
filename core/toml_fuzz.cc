// libFuzzer entry point for the TOML parser: any input must parse or fail cleanly,
// within the size and depth caps, and the resulting tree must be consistent.
//   clang++-14 -std=c++20 -fsanitize=fuzzer,address -I. core/toml_fuzz.cc core/toml.cc -o toml_fuzz
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/toml.h"

namespace {

using sluice::core::toml::Type;
using sluice::core::toml::Value;

// Walks the tree checking the invariants the parser promises; aborts on a violation.
void check(const Value& value, int depth) {
  if (depth > 2 * sluice::core::toml::kMaxDepth + 2) std::abort();
  if (value.type == Type::table) {
    if (value.index.size() != value.entries.size()) std::abort();
    for (const auto& entry : value.entries) {
      if (value.find(entry.key) != &entry.value) std::abort();
      if (entry.value.line < 1) std::abort();
      check(entry.value, depth + 1);
    }
  } else if (value.type == Type::array) {
    for (const auto& element : value.array) {
      if (value.defined_by_header && element.type != Type::table) std::abort();
      check(element, depth + 1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto result = sluice::core::toml::parse(text);
  if (result.errors.size() > sluice::core::toml::kMaxErrors + 1) std::abort();
  for (const auto& error : result.errors)
    if (error.line < 0 || error.message.empty()) std::abort();
  check(result.root, 0);
  return 0;
}
