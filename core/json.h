// A compact read-only JSON document: one pass turns the text into a flat array of
// nodes (first child / next sibling links), with strings decoded in place in the
// document's own copy of the text. Used for libpg_query's parse trees (policy/) and
// for audit records (audit/reader). Input is hostile: the reader is iterative (depth
// never becomes stack depth), nesting is capped, and offsets are 32-bit, so a text
// of 4 GiB or more is refused rather than wrapped.
//
// A document is meant to be reused: load_json() keeps its buffers, so loading many
// texts of similar size allocates nothing after the first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::core {

class JsonDocument {
 public:
  enum class Type : uint8_t { object, array, string, number, boolean, null };
  static constexpr uint32_t kNone = UINT32_MAX;
  // Enough for any record or configuration-like document; parse trees ask for more.
  static constexpr uint32_t kDefaultMaxDepth = 1000;

  explicit JsonDocument(uint32_t max_depth = kDefaultMaxDepth) : max_depth_(max_depth) {}

  // A position in the document. Cheap to copy; valid while the document is neither
  // reloaded nor destroyed. Every accessor is safe on an invalid node (it returns an
  // invalid node, "", 0 or false), so lookups chain without checks:
  // root["removed"].first()["last"].integer().
  class Node {
   public:
    Node() = default;
    Node(const JsonDocument* document, uint32_t index) : document_(document), index_(index) {}
    bool valid() const { return document_ != nullptr && index_ != kNone; }
    explicit operator bool() const { return valid(); }
    Type type() const;  // Type::null for an invalid node
    bool is_object() const { return valid() && type() == Type::object; }
    bool is_array() const { return valid() && type() == Type::array; }
    bool is_string() const { return valid() && type() == Type::string; }
    bool is_number() const { return valid() && type() == Type::number; }
    // The member key of this node inside its parent object ("" in arrays).
    std::string_view key() const;
    // Object member by key: a linear scan (records and parse-tree nodes have a handful
    // of members). With duplicate keys, the first one.
    Node operator[](std::string_view key) const;
    // First child (object member or array element) and next sibling.
    Node first() const;
    Node next() const;
    // Scalars. string: decoded text; number: the digits as written; boolean.
    std::string_view text() const;
    bool boolean() const;
    int64_t integer() const;  // a number written as an integer that fits; else 0
    uint32_t index() const { return index_; }

   private:
    const JsonDocument* document_ = nullptr;
    uint32_t index_ = kNone;
  };

  // Replaces the document with the one in `json` (RFC 8259: one value, optionally
  // surrounded by whitespace). False, leaving an empty document, when the text is not
  // JSON, nests deeper than max_depth, or is 4 GiB or larger. Strings are not checked
  // for valid UTF-8 (libpg_query passes the SQL's bytes through); a \u escape of a
  // lone surrogate decodes to U+FFFD.
  bool load_json(std::string_view json);
  void clear();  // an empty document: root() is invalid

  Node root() const { return Node(this, nodes_.empty() ? kNone : 0); }
  size_t node_count() const { return nodes_.size(); }

 private:
  struct Entry {
    Type type;
    bool boolean = false;
    uint32_t key_offset = 0, key_length = 0;    // into text_
    uint32_t text_offset = 0, text_length = 0;  // string/number value, into text_
    uint32_t first_child = kNone;
    uint32_t next_sibling = kNone;
  };
  class Builder;

  uint32_t max_depth_;
  std::string text_;  // our copy of the JSON; strings are unescaped in place
  std::vector<Entry> nodes_;
  std::vector<uint32_t> stack_;       // open containers while building
  std::vector<uint32_t> last_child_;  // last child of each open container (kNone: none yet)
};

}  // namespace sluice::core
