// libFuzzer target for core::JsonDocument: any input must load or fail cleanly within
// the depth cap, and a loaded document must be a consistent tree whose texts lie in
// bounds. Run by tools/fuzz.sh (target "json").
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace {

using sluice::core::JsonDocument;

// Walks the whole tree without recursion; aborts on a broken invariant.
void check(const JsonDocument& document) {
  size_t visited = 0;
  std::vector<JsonDocument::Node> stack{document.root()};
  while (!stack.empty()) {
    const JsonDocument::Node node = stack.back();
    stack.pop_back();
    if (!node) std::abort();
    ++visited;
    (void)node.key().size();
    (void)node.text().size();
    (void)node.integer();
    const bool container = node.is_object() || node.is_array();
    if (!container && node.first()) std::abort();
    for (JsonDocument::Node child = node.first(); child; child = child.next()) {
      if (node.is_array() && !child.key().empty()) std::abort();
      stack.push_back(child);
    }
  }
  if (visited != document.node_count()) std::abort();  // every node reachable exactly once
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static JsonDocument document(64);  // reused, as its users do
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (document.load_json(text)) {
    if (document.node_count() > size) std::abort();
    check(document);
  } else if (document.root()) {
    std::abort();  // a failed load leaves an empty document
  }
  return 0;
}
