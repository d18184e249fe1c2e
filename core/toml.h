// A TOML parser for configuration files. It reads the subset a config needs
// (comments, [tables], [[arrays.of.tables]], bare and quoted keys, strings,
// integers, booleans, arrays) and rejects the rest with a "not supported" error.
// Input is hostile: size and nesting are capped, nothing throws out of parse(),
// every error carries the line it was found on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::core::toml {

inline constexpr size_t kMaxInputBytes = size_t{1} << 20;
// Containers around a value: each table header component and each array counts one.
inline constexpr int kMaxDepth = 32;
// After this many errors the parser stops (one more error says so).
inline constexpr size_t kMaxErrors = 100;

enum class Type { string, integer, boolean, array, table };

// "a string", "an integer", "a boolean", "an array", "a table": for messages.
const char* type_name(Type type);

struct Entry;

// One node of the document. Only the members that belong to `type` are meaningful.
struct Value {
  Type type = Type::table;
  // 1-based line of the value; for a table, the line of the header that defined it
  // (or first named it); 0 for the document root.
  int line = 0;

  std::string string;                                // Type::string, decoded (valid UTF-8)
  int64_t integer = 0;                               // Type::integer
  bool boolean = false;                              // Type::boolean
  std::vector<Value> array;                          // Type::array
  std::vector<Entry> entries;                        // Type::table, in document order
  std::map<std::string, size_t, std::less<>> index;  // Type::table: key -> position in entries

  // Type::array: true exactly when the array was built by [[header]] lines (all its
  // elements are then tables). Type::table: true once a [header] (or [[header]]) defined
  // it, false while it only exists because a longer header named it ([a.b] creates a).
  bool defined_by_header = false;

  // Table lookup; nullptr if the key is absent or this is not a table.
  const Value* find(std::string_view key) const;
};

// A key of a table and its value. The key's line is value.line (TOML keeps a key and
// the start of its value on one line).
struct Entry {
  std::string key;
  Value value;
};

struct Error {
  int line = 0;    // 1-based; 0 = the whole input (e.g. too large)
  int column = 0;  // 1-based byte column where the problem was seen; 0 = not meaningful
  std::string message;
};

struct ParseResult {
  Value root;                 // a table; may be partial when errors is non-empty
  std::vector<Error> errors;  // in input order
  bool ok() const { return errors.empty(); }
};

// Never throws; all problems are reported in ParseResult::errors. Messages never quote
// string contents (a string may hold a password), only keys and structure.
ParseResult parse(std::string_view text);

// Text made safe to quote in a message: control characters become \uXXXX, bytes that
// are not UTF-8 become \xNN, and text beyond max_bytes is cut and ends in "...".
std::string printable(std::string_view text, size_t max_bytes = 64);

// A key as it would be written in a header: bare if possible, else a quoted, escaped,
// printable() string.
std::string format_key(std::string_view key);

}  // namespace sluice::core::toml
