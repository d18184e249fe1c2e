// A recursive-descent TOML parser over a byte string. Recovery is by line: an error
// outside any array skips the rest of its line and parsing goes on, so one run reports
// many mistakes; an error inside an array (whose extent is then unknown) stops the parse.
#include "core/toml.h"

#include <cstdio>
#include <utility>

namespace sluice::core::toml {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-';
}
// Control characters TOML forbids in strings and comments (tab is allowed).
bool is_forbidden_control(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// Length (1..4) of the well-formed UTF-8 sequence starting at text[i], or 0 if it is
// malformed, overlong, a surrogate or beyond U+10FFFF.
size_t utf8_sequence_length(std::string_view text, size_t i) {
  auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return 1;
  size_t length;
  uint32_t code_point;
  if (c >= 0xc2 && c <= 0xdf) {
    length = 2;
    code_point = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    length = 3;
    code_point = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    length = 4;
    code_point = c & 0x07;
  } else {
    return 0;
  }
  if (text.size() - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    auto d = static_cast<unsigned char>(text[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    code_point = (code_point << 6) | (d & 0x3f);
  }
  if (length == 3 && (code_point < 0x800 || (code_point >= 0xd800 && code_point <= 0xdfff))) return 0;
  if (length == 4 && (code_point < 0x10000 || code_point > 0x10ffff)) return 0;
  return length;
}

void append_utf8(std::string& out, uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xc0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xe0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  }
}

constexpr const char* kExpectedValue =
    "expected a value: a quoted string, an integer, true, false or an [array] (strings must be quoted)";

// What a one-letter escape (\n, \t, ...) stands for; '\0' if `letter` is not one.
char simple_escape(char letter) {
  switch (letter) {
    case 'b':
      return '\b';
    case 't':
      return '\t';
    case 'n':
      return '\n';
    case 'f':
      return '\f';
    case 'r':
      return '\r';
    case '"':
      return '"';
    case '\\':
      return '\\';
    default:
      return '\0';
  }
}

std::string code_point_name(unsigned char c) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "U+%04X", static_cast<unsigned>(c));
  return buffer;
}

std::string format_path(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& part : path) {
    if (!out.empty()) out += '.';
    out += format_key(part);
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  ParseResult run() {
    if (text_.size() > kMaxInputBytes) {
      add_error(0, 0,
                "input is " + std::to_string(text_.size()) + " bytes; the limit is " + std::to_string(kMaxInputBytes) +
                    " (1 MiB)");
      return std::move(result_);
    }
    if (text_.starts_with("\xef\xbb\xbf")) pos_ = 3;  // a UTF-8 byte order mark
    current_ = &result_.root;
    while (!stopped_ && pos_ < text_.size()) {
      statement_failed_ = false;
      if (statement()) continue;
      if (fatal_ || stopped_) break;
      skip_rest_of_line();
    }
    return std::move(result_);
  }

 private:
  // --- errors -------------------------------------------------------------------------

  void add_error(int line, int column, std::string message) {
    if (stopped_) return;
    if (result_.errors.size() >= kMaxErrors) {
      result_.errors.push_back(Error{line, 0, "too many errors; stopping here"});
      stopped_ = true;
      return;
    }
    result_.errors.push_back(Error{line, column, std::move(message)});
  }
  int column() const { return static_cast<int>(pos_ - line_start_) + 1; }

  // A syntax error at the current position: the caller unwinds (returns false).
  bool fail(std::string message) { return fail_at(column(), std::move(message)); }
  bool fail_at(int at_column, std::string message) {
    add_error(line_, at_column, std::move(message));
    if (array_depth_ > 0) fatal_ = true;  // the array's end is unknown: stop
    return false;
  }
  // An error that leaves the input position well defined (the token was consumed):
  // the statement is dropped but parsing goes on normally.
  void soft_error(int line, int at_column, std::string message) {
    add_error(line, at_column, std::move(message));
    statement_failed_ = true;
  }

  // --- characters and lines ----------------------------------------------------------

  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool looking_at(std::string_view s) const { return text_.substr(pos_).starts_with(s); }
  void skip_blank() {
    while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  bool at_newline() const { return !at_end() && (text_[pos_] == '\n' || text_[pos_] == '\r'); }
  // Whether the current character may follow a scalar value.
  bool at_value_end() const {
    if (at_end()) return true;
    char c = text_[pos_];
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ']' || c == '#';
  }

  bool newline() {
    if (text_[pos_] == '\r') {
      if (peek(1) != '\n') return fail("carriage return not followed by a line feed");
      ++pos_;
    }
    ++pos_;
    ++line_;
    line_start_ = pos_;
    return true;
  }
  void skip_rest_of_line() {
    while (!at_end() && text_[pos_] != '\n') ++pos_;
    if (!at_end()) {
      ++pos_;
      ++line_;
      line_start_ = pos_;
    }
  }

  // From '#' up to (not including) the line break.
  bool comment() {
    ++pos_;
    while (!at_end() && text_[pos_] != '\n') {
      auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '\r' && peek(1) == '\n') break;
      if (is_forbidden_control(c)) return fail("control character " + code_point_name(c) + " in comment");
      size_t length = utf8_sequence_length(text_, pos_);
      if (length == 0) return fail("invalid UTF-8 in comment");
      pos_ += length;
    }
    return true;
  }

  // After a statement: blanks, an optional comment, then a line break or the end.
  bool end_of_line(const char* after) {
    skip_blank();
    if (!at_end() && text_[pos_] == '#' && !comment()) return false;
    if (at_end()) return true;
    if (at_newline()) return newline();
    return fail(std::string("expected the end of the line after ") + after);
  }

  // Blanks, line breaks and comments between array elements.
  bool skip_array_space() {
    while (!at_end()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '\n' || c == '\r') {
        if (!newline()) return false;
      } else if (c == '#') {
        if (!comment()) return false;
      } else {
        break;
      }
    }
    return true;
  }

  // --- statements ----------------------------------------------------------------------

  bool statement() {
    skip_blank();
    if (at_end()) return true;
    char c = text_[pos_];
    if (c == '\n' || c == '\r') return newline();
    if (c == '#') return comment() && end_of_line("the comment");
    if (c == '[') return header() && end_of_line("the table header");
    return key_value() && end_of_line("the value");
  }

  bool key(std::string& out) {
    if (at_end() || at_newline()) return fail("expected a key");
    char c = text_[pos_];
    if (c == '"' || c == '\'') {
      if (peek(1) == c && peek(2) == c) return fail("multi-line strings cannot be keys");
      return c == '"' ? basic_string(out) : literal_string(out);
    }
    if (!is_bare_key_char(c)) {
      if (c == '=') return fail("missing key before '='");
      auto u = static_cast<unsigned char>(c);
      if (is_forbidden_control(u)) return fail("control character " + code_point_name(u) + " where a key was expected");
      return fail("invalid character in key: bare keys may use only A-Z a-z 0-9 _ -; quote other keys");
    }
    size_t start = pos_;
    while (!at_end() && is_bare_key_char(text_[pos_])) ++pos_;
    out.assign(text_.substr(start, pos_ - start));
    return true;
  }

  bool key_value() {
    int line = line_;
    std::string name;
    if (!key(name)) return false;
    skip_blank();
    if (peek() == '.') return fail("dotted keys are not supported (" + format_key(name) + ".…); use a [table] header");
    if (peek() != '=') return fail("expected '=' after key " + format_key(name));
    ++pos_;
    skip_blank();
    Value value;
    if (!parse_value(value, current_depth_)) return false;
    if (statement_failed_) return true;  // already reported; drop the pair
    if (const Value* existing = current_->find(name)) {
      soft_error(line, 0,
                 "duplicate key " + format_key(name) + in_current_table() + " (first defined on line " +
                     std::to_string(existing->line) + ")");
      return true;
    }
    add_entry(*current_, std::move(name), std::move(value));
    return true;
  }

  std::string in_current_table() const {
    if (current_name_.empty()) return "";
    return " in [" + current_name_ + "]";
  }

  // [a.b.c] or [[a.b.c]].
  bool header() {
    int line = line_;
    // Until this header resolves, pairs that follow go nowhere (they are still checked).
    sink_ = Value{};
    current_ = &sink_;
    current_depth_ = 0;
    current_name_.clear();

    ++pos_;
    bool array_of_tables = peek() == '[';
    if (array_of_tables) ++pos_;
    std::vector<std::string> path;
    for (;;) {
      skip_blank();
      if (path.empty() && peek() == ']') return fail("empty table name");
      std::string part;
      if (!key(part)) return false;
      path.push_back(std::move(part));
      if (path.size() > static_cast<size_t>(kMaxDepth))
        return fail("table name has more than " + std::to_string(kMaxDepth) + " parts");
      skip_blank();
      if (peek() != '.') break;
      ++pos_;
    }
    if (array_of_tables) {
      if (!looking_at("]]")) return fail("expected ']]' to close the [[array of tables]] header");
      pos_ += 2;
    } else {
      if (peek() != ']') return fail("expected ']' to close the [table] header");
      ++pos_;
    }
    current_name_ = format_path(path);
    if (statement_failed_) return true;  // a bad escape in a quoted part, already reported
    return resolve_header(path, array_of_tables, line);
  }

  bool resolve_header(const std::vector<std::string>& path, bool array_of_tables, int line) {
    const std::string& name = current_name_;
    auto shown = [&] { return array_of_tables ? "[[" + name + "]]" : "[" + name + "]"; };
    Value* table = &result_.root;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      Value* next = lookup(*table, path[i]);
      if (next == nullptr) {
        Value created;
        created.type = Type::table;
        created.line = line;
        next = add_entry(*table, path[i], std::move(created));
      } else if (next->type == Type::array && next->defined_by_header) {
        next = &next->array.back();  // [[a]] then [a.b]: b belongs to the last a
      } else if (next->type != Type::table) {
        soft_error(line, 0,
                   "cannot define " + shown() + ": " + format_key(path[i]) + " is already " + type_name(next->type) +
                       " (line " + std::to_string(next->line) + ")");
        return true;
      }
      table = next;
    }
    const std::string& last = path.back();
    Value* existing = lookup(*table, last);
    Value* target = nullptr;
    if (array_of_tables) {
      if (existing == nullptr) {
        Value created;
        created.type = Type::array;
        created.line = line;
        created.defined_by_header = true;
        existing = add_entry(*table, last, std::move(created));
      } else if (existing->type == Type::table) {
        soft_error(line, 0,
                   shown() + " conflicts with table [" + name + "] (line " + std::to_string(existing->line) + ")");
        return true;
      } else if (existing->type != Type::array || !existing->defined_by_header) {
        soft_error(line, 0,
                   shown() + " conflicts with key " + format_key(last) + ", already " + type_name(existing->type) +
                       " (line " + std::to_string(existing->line) + ")");
        return true;
      }
      Value element;
      element.type = Type::table;
      element.line = line;
      element.defined_by_header = true;
      existing->array.push_back(std::move(element));
      target = &existing->array.back();
    } else {
      if (existing == nullptr) {
        Value created;
        created.type = Type::table;
        created.line = line;
        target = add_entry(*table, last, std::move(created));
      } else if (existing->type == Type::table && !existing->defined_by_header) {
        existing->line = line;  // first named by a longer header, defined here
        target = existing;
      } else if (existing->type == Type::table) {
        soft_error(line, 0,
                   "table " + shown() + " is defined twice (first on line " + std::to_string(existing->line) + ")");
        return true;
      } else if (existing->type == Type::array && existing->defined_by_header) {
        soft_error(line, 0,
                   shown() + " is already an array of tables (line " + std::to_string(existing->line) + "); write [[" +
                       name + "]] to add an element");
        return true;
      } else {
        soft_error(line, 0,
                   "cannot define " + shown() + ": key " + format_key(last) + " is already " +
                       type_name(existing->type) + " (line " + std::to_string(existing->line) + ")");
        return true;
      }
      target->defined_by_header = true;
    }
    current_ = target;
    current_depth_ = static_cast<int>(path.size());
    return true;
  }

  static Value* lookup(Value& table, std::string_view key) {
    auto it = table.index.find(key);
    return it == table.index.end() ? nullptr : &table.entries[it->second].value;
  }
  static Value* add_entry(Value& table, std::string key, Value value) {
    table.index.emplace(key, table.entries.size());
    table.entries.push_back(Entry{std::move(key), std::move(value)});
    return &table.entries.back().value;
  }

  // --- values --------------------------------------------------------------------------

  // depth: how many containers already enclose the value.
  bool parse_value(Value& out, int depth) {
    out.line = line_;
    if (at_end() || at_newline() || peek() == '#') return fail("missing value after '='");
    char c = text_[pos_];
    switch (c) {
      case '"':
      case '\'':
        if (peek(1) == c && peek(2) == c) {
          // The lines that follow would be misread as statements: stop here.
          fail(c == '"' ? "multi-line strings (\"\"\") are not supported"
                        : "multi-line strings (''') are not supported");
          fatal_ = true;
          return false;
        }
        out.type = Type::string;
        return c == '"' ? basic_string(out.string) : literal_string(out.string);
      case '[':
        return array(out, depth);
      case '{':
        return fail("inline tables are not supported; use a [table] header");
      case 't':
      case 'f':
        return boolean(out);
      default:
        if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n') return integer(out);
        return fail(kExpectedValue);
    }
  }

  bool boolean(Value& out) {
    std::string_view word = looking_at("true") ? "true" : looking_at("false") ? "false" : "";
    if (!word.empty()) {
      pos_ += word.size();
      if (at_value_end()) {
        out.type = Type::boolean;
        out.boolean = word == "true";
        return true;
      }
      pos_ -= word.size();
    }
    return fail(kExpectedValue);
  }

  bool integer(Value& out) {
    int start_column = column();
    bool negative = false;
    if (peek() == '+' || peek() == '-') {
      negative = peek() == '-';
      ++pos_;
    }
    if (looking_at("inf") || looking_at("nan")) {
      pos_ += 3;
      bool special_float = at_value_end();
      pos_ -= 3;
      if (special_float) return fail("floating-point numbers are not supported");
    }
    if (!is_digit(peek())) {
      return fail(kExpectedValue);
    }
    if (peek() == '0' && (peek(1) == 'x' || peek(1) == 'o' || peek(1) == 'b'))
      return fail("hexadecimal, octal and binary integers are not supported; write the number in decimal");
    size_t start = pos_;
    while (!at_end() && (is_digit(text_[pos_]) || text_[pos_] == '_')) ++pos_;
    std::string_view token = text_.substr(start, pos_ - start);
    char next = peek();
    if (!at_end() && (next == '.' || next == 'e' || next == 'E'))
      return fail("floating-point numbers are not supported");
    if (!at_end() && (next == '-' || next == ':')) return fail("dates and times are not supported");
    if (!at_value_end()) return fail("invalid integer");
    for (size_t i = 0; i < token.size(); ++i) {
      if (token[i] != '_') continue;
      if (i == 0 || i + 1 == token.size() || !is_digit(token[i - 1]) || !is_digit(token[i + 1]))
        return fail_at(start_column, "misplaced '_' in integer: an underscore must sit between two digits");
    }
    if (token.size() > 1 && token[0] == '0') return fail_at(start_column, "leading zeros are not allowed in integers");
    // Magnitude in uint64 against the limit for the sign: -2^63 is representable.
    const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
    uint64_t magnitude = 0;
    bool overflow = false;
    for (char c : token) {
      if (c == '_') continue;
      auto digit = static_cast<uint64_t>(c - '0');
      if (magnitude > (limit - digit) / 10) {
        overflow = true;
        break;
      }
      magnitude = magnitude * 10 + digit;
    }
    if (overflow) {
      soft_error(line_, start_column, "integer does not fit in 64 bits (-9223372036854775808 to 9223372036854775807)");
      return true;
    }
    out.type = Type::integer;
    out.integer = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    return true;
  }

  bool unterminated(int start_column) {
    return fail_at(start_column, "unterminated string: a string must end on the line where it starts");
  }

  // Reports at most one problem per string; the string is still scanned to its end so
  // the line can be parsed further.
  void string_error(bool& reported, std::string message) {
    if (reported) return;
    reported = true;
    soft_error(line_, column(), std::move(message));
  }

  // A raw (unescaped) character of a string: checked, then appended.
  void string_character(std::string& out, bool& reported) {
    auto c = static_cast<unsigned char>(text_[pos_]);
    if (is_forbidden_control(c)) {
      string_error(reported, "control character " + code_point_name(c) + " in string; write it as an escape (\\u" +
                                 code_point_name(c).substr(2) + ")");
      ++pos_;
      return;
    }
    size_t length = utf8_sequence_length(text_, pos_);
    if (length == 0) {
      string_error(reported, "invalid UTF-8 in string");
      ++pos_;
      return;
    }
    out.append(text_.substr(pos_, length));
    pos_ += length;
  }

  bool basic_string(std::string& out) {
    int start_column = column();
    bool reported = false;
    ++pos_;
    for (;;) {
      if (at_end() || at_newline()) return unterminated(start_column);
      char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c != '\\') {
        string_character(out, reported);
        continue;
      }
      ++pos_;
      if (at_end() || at_newline()) return unterminated(start_column);
      char e = text_[pos_];
      if (char decoded = simple_escape(e); decoded != '\0') {
        out += decoded;
        ++pos_;
      } else if (e == 'u' || e == 'U') {
        unicode_escape(out, e == 'u' ? 4 : 8, reported);
      } else {
        // The character itself is not named: the string may be a secret.
        string_error(reported,
                     "invalid escape sequence in string; supported: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX "
                     "\\UXXXXXXXX");
        if (static_cast<unsigned char>(e) < 0x80) ++pos_;
      }
    }
  }

  // At the 'u' or 'U' of an escape: consumes up to `digits` hex digits.
  void unicode_escape(std::string& out, int digits, bool& reported) {
    ++pos_;
    uint32_t code_point = 0;
    int seen = 0;
    while (seen < digits && !at_end() && is_hex_digit(text_[pos_])) {
      code_point = (code_point << 4) | static_cast<uint32_t>(hex_value(text_[pos_]));
      ++pos_;
      ++seen;
    }
    if (seen < digits) {
      string_error(reported, digits == 4 ? "invalid \\u escape: expected 4 hex digits"
                                         : "invalid \\U escape: expected 8 hex digits");
      return;
    }
    if (code_point > 0x10ffff || (code_point >= 0xd800 && code_point <= 0xdfff)) {
      string_error(reported, "escape is not a Unicode scalar value (surrogate or above U+10FFFF)");
      return;
    }
    append_utf8(out, code_point);
  }

  bool literal_string(std::string& out) {
    int start_column = column();
    bool reported = false;
    ++pos_;
    for (;;) {
      if (at_end() || at_newline()) return unterminated(start_column);
      if (text_[pos_] == '\'') {
        ++pos_;
        return true;
      }
      string_character(out, reported);
    }
  }

  bool array(Value& out, int depth) {
    if (depth + 1 > kMaxDepth) {
      fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
      fatal_ = true;
      return false;
    }
    int open_line = line_;
    int open_column = column();
    out.type = Type::array;
    ++pos_;
    ++array_depth_;
    for (;;) {
      if (!skip_array_space()) return false;
      if (at_end()) break;
      if (peek() == ']') {
        ++pos_;
        --array_depth_;
        return true;
      }
      Value element;
      if (!parse_value(element, depth + 1)) return false;
      if (stopped_) return false;
      out.array.push_back(std::move(element));
      if (!skip_array_space()) return false;
      if (at_end()) break;
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ']') return fail("expected ',' or ']' in array");
    }
    add_error(open_line, open_column, "unterminated array: no ']' before the end of the input");
    fatal_ = true;
    return false;
  }

  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
  ParseResult result_;

  Value* current_ = nullptr;  // the table key/value pairs go to: in result_.root's tree, or &sink_
  int current_depth_ = 0;     // header parts of current_ (containers around its values)
  std::string current_name_;  // dotted name of current_, for messages
  Value sink_;                // receives the pairs under a header that failed

  int array_depth_ = 0;            // arrays open at the current position
  bool statement_failed_ = false;  // a soft error was reported in this statement
  bool fatal_ = false;             // recovery is impossible: stop
  bool stopped_ = false;           // too many errors
};

}  // namespace

const char* type_name(Type type) {
  switch (type) {
    case Type::string:
      return "a string";
    case Type::integer:
      return "an integer";
    case Type::boolean:
      return "a boolean";
    case Type::array:
      return "an array";
    case Type::table:
      return "a table";
  }
  return "a value";
}

const Value* Value::find(std::string_view key) const {
  if (type != Type::table) return nullptr;
  auto it = index.find(key);
  return it == index.end() ? nullptr : &entries[it->second].value;
}

std::string printable(std::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (out.size() >= max_bytes) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(text[i]);
    size_t length = utf8_sequence_length(text, i);
    if (is_forbidden_control(c) || c == '\t') {
      out += "\\u" + code_point_name(c).substr(2);
    } else if (length == 0) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02X", static_cast<unsigned>(c));
      out += buffer;
      length = 1;
    } else {
      out.append(text.substr(i, length));
    }
    i += length;
  }
  return out;
}

std::string format_key(std::string_view key) {
  bool bare = !key.empty();
  for (char c : key) bare = bare && is_bare_key_char(c);
  if (bare) return printable(key);
  std::string escaped;
  for (char c : key) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return "\"" + printable(escaped) + "\"";
}

ParseResult parse(std::string_view text) { return Parser(text).run(); }

}  // namespace sluice::core::toml
