// The JSON reader: one iterative pass, no recursion (a hostile document's depth must
// not become stack depth), strict RFC 8259 grammar.
#include "core/json.h"

#include <charconv>

namespace sluice::core {

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The four hex digits at s[0..3] as a code unit, or -1.
int32_t hex4(const char* s) {
  int32_t value = 0;
  for (int k = 0; k < 4; ++k) {
    const int h = hex_value(s[k]);
    if (h < 0) return -1;
    value = value << 4 | h;
  }
  return value;
}

// Writes code point `cp` as UTF-8 at out; returns the bytes written.
size_t put_utf8(char* out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

// Decodes a \u escape (after the "\u") at s[read..], joining a surrogate pair; a lone
// surrogate becomes U+FFFD so the decoded text never holds one. Advances read.
bool decode_unicode_escape(const char* s, size_t n, size_t& read, uint32_t& cp) {
  if (read + 4 > n) return false;
  const int32_t unit = hex4(s + read);
  if (unit < 0) return false;
  read += 4;
  cp = static_cast<uint32_t>(unit);
  if (cp < 0xD800 || cp > 0xDFFF) return true;
  const bool high = cp <= 0xDBFF;
  if (high && read + 6 <= n && s[read] == '\\' && s[read + 1] == 'u') {
    const int32_t low = hex4(s + read + 2);
    if (low >= 0xDC00 && low <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<uint32_t>(low) - 0xDC00);
      read += 6;
      return true;
    }
  }
  cp = 0xFFFD;
  return true;
}

// Decodes the JSON string whose opening quote is at pos - 1, in place. On success sets
// [begin, begin + length) to the decoded text and moves pos past the closing quote.
// In place is safe because the decoded form is never longer than the escaped one
// ("\uXXXX" is 6 bytes and becomes at most 3; a 12-byte surrogate pair becomes 4).
bool decode_string(std::string& text, size_t& pos, uint32_t& begin, uint32_t& length) {
  char* s = text.data();
  const size_t n = text.size();
  size_t read = pos;
  size_t write = pos;
  begin = static_cast<uint32_t>(pos);
  while (read < n) {
    const char c = s[read];
    if (c == '"') {
      length = static_cast<uint32_t>(write - begin);
      pos = read + 1;
      return true;
    }
    if (static_cast<unsigned char>(c) < 0x20) return false;  // must be escaped
    if (c != '\\') {
      s[write++] = c;
      ++read;
      continue;
    }
    if (read + 1 >= n) return false;
    const char e = s[read + 1];
    read += 2;
    switch (e) {
      case '"': s[write++] = '"'; break;
      case '\\': s[write++] = '\\'; break;
      case '/': s[write++] = '/'; break;
      case 'b': s[write++] = '\b'; break;
      case 'f': s[write++] = '\f'; break;
      case 'n': s[write++] = '\n'; break;
      case 'r': s[write++] = '\r'; break;
      case 't': s[write++] = '\t'; break;
      case 'u': {
        uint32_t cp = 0;
        if (!decode_unicode_escape(s, n, read, cp)) return false;
        write += put_utf8(s + write, cp);
        break;
      }
      default: return false;
    }
  }
  return false;  // no closing quote
}

// Length of the RFC 8259 number at the start of s (-?int frac? exp?), or 0 if none.
size_t number_length(std::string_view s) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;  // no leading zeros: "01" is "0" followed by garbage
  } else if (digits() == 0) {
    return 0;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return 0;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return 0;
  }
  return i;
}

}  // namespace

// ---------------------------------------------------------------------------
// Node
// ---------------------------------------------------------------------------

JsonDocument::Type JsonDocument::Node::type() const {
  return valid() ? document_->nodes_[index_].type : Type::null;
}

std::string_view JsonDocument::Node::key() const {
  if (!valid()) return {};
  const Entry& e = document_->nodes_[index_];
  return std::string_view(document_->text_).substr(e.key_offset, e.key_length);
}

JsonDocument::Node JsonDocument::Node::operator[](std::string_view key) const {
  if (!is_object()) return {};
  for (Node child = first(); child; child = child.next())
    if (child.key() == key) return child;
  return {};
}

JsonDocument::Node JsonDocument::Node::first() const {
  if (!valid()) return {};
  return Node(document_, document_->nodes_[index_].first_child);
}

JsonDocument::Node JsonDocument::Node::next() const {
  if (!valid()) return {};
  return Node(document_, document_->nodes_[index_].next_sibling);
}

std::string_view JsonDocument::Node::text() const {
  if (!is_string() && !is_number()) return {};
  const Entry& e = document_->nodes_[index_];
  return std::string_view(document_->text_).substr(e.text_offset, e.text_length);
}

bool JsonDocument::Node::boolean() const {
  return valid() && type() == Type::boolean && document_->nodes_[index_].boolean;
}

int64_t JsonDocument::Node::integer() const {
  if (!is_number()) return 0;
  const std::string_view digits = text();
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return 0;
  return value;
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

// One load: walks the text once, appending nodes in document order. The open
// containers are an explicit stack bounded by max_depth.
class JsonDocument::Builder {
 public:
  explicit Builder(JsonDocument& document) : d_(document), text_(document.text_), n_(text_.size()) {}

  bool run() {
    bool expect_value = true;  // false: a value just ended; ',' or a closing bracket follows
    for (;;) {
      skip_space();
      if (pos_ >= n_) return false;
      bool value_ended = true;  // false when a container was opened
      if (expect_value && closes_empty_container(text_[pos_])) {
        ++pos_;
        pop();
      } else if (expect_value) {
        uint32_t key_offset = 0, key_length = 0;
        if (in_object() && !member_key(key_offset, key_length)) return false;
        if (!value(key_offset, key_length, value_ended)) return false;
      } else {
        const char c = text_[pos_++];
        if (c == ',') {
          expect_value = true;
          continue;
        }
        if (!closes_innermost(c)) return false;
        pop();
      }
      if (value_ended && d_.stack_.empty()) break;  // the document's one value is complete
      expect_value = !value_ended;
    }
    skip_space();
    return pos_ == n_;
  }

 private:
  void skip_space() {
    while (pos_ < n_ && is_space(text_[pos_])) ++pos_;
  }

  bool in_object() const { return !d_.stack_.empty() && d_.nodes_[d_.stack_.back()].type == Type::object; }

  bool closes_innermost(char c) const {
    if (d_.stack_.empty()) return false;
    const Type open = d_.nodes_[d_.stack_.back()].type;
    return (c == '}' && open == Type::object) || (c == ']' && open == Type::array);
  }

  // "{}" or "[]": a closing bracket right after the opening one (not after a comma).
  bool closes_empty_container(char c) const { return closes_innermost(c) && d_.last_child_.back() == kNone; }

  // `"key":` of an object member.
  bool member_key(uint32_t& offset, uint32_t& length) {
    if (text_[pos_] != '"') return false;
    ++pos_;
    if (!decode_string(text_, pos_, offset, length)) return false;
    skip_space();
    if (pos_ >= n_ || text_[pos_] != ':') return false;
    ++pos_;
    return true;
  }

  // A value, or the opening bracket of one (then `ended` is false).
  bool value(uint32_t key_offset, uint32_t key_length, bool& ended) {
    skip_space();
    if (pos_ >= n_) return false;
    const char c = text_[pos_];
    ended = c != '{' && c != '[';
    if (!ended) {
      if (d_.stack_.size() >= d_.max_depth_) return false;
      d_.stack_.push_back(add(c == '{' ? Type::object : Type::array, key_offset, key_length));
      d_.last_child_.push_back(kNone);
      ++pos_;
      return true;
    }
    if (c == '"') {
      const uint32_t index = add(Type::string, key_offset, key_length);
      ++pos_;
      return decode_string(text_, pos_, d_.nodes_[index].text_offset, d_.nodes_[index].text_length);
    }
    if (const size_t length = number_length(std::string_view(text_).substr(pos_)); length > 0) {
      const uint32_t index = add(Type::number, key_offset, key_length);
      d_.nodes_[index].text_offset = static_cast<uint32_t>(pos_);
      d_.nodes_[index].text_length = static_cast<uint32_t>(length);
      pos_ += length;
      return true;
    }
    if (literal("true") || literal("false")) {
      d_.nodes_[add(Type::boolean, key_offset, key_length)].boolean = c == 't';
      return true;
    }
    if (literal("null")) {
      add(Type::null, key_offset, key_length);
      return true;
    }
    return false;
  }

  bool literal(std::string_view word) {
    if (text_.compare(pos_, word.size(), word) != 0) return false;
    pos_ += word.size();
    return true;
  }

  // Appends a node as the next child of the innermost open container.
  uint32_t add(Type type, uint32_t key_offset, uint32_t key_length) {
    const auto index = static_cast<uint32_t>(d_.nodes_.size());
    Entry e{};
    e.type = type;
    e.key_offset = key_offset;
    e.key_length = key_length;
    e.first_child = kNone;
    e.next_sibling = kNone;
    d_.nodes_.push_back(e);
    if (!d_.stack_.empty()) {
      uint32_t& last = d_.last_child_.back();
      (last == kNone ? d_.nodes_[d_.stack_.back()].first_child : d_.nodes_[last].next_sibling) = index;
      last = index;
    }
    return index;
  }

  void pop() {
    d_.stack_.pop_back();
    d_.last_child_.pop_back();
  }

  JsonDocument& d_;
  std::string& text_;
  const size_t n_;
  size_t pos_ = 0;
};

void JsonDocument::clear() {
  nodes_.clear();
  stack_.clear();
  last_child_.clear();
}

bool JsonDocument::load_json(std::string_view json) {
  clear();
  // Offsets are 32-bit; kNone must stay distinct from every node index.
  if (json.size() >= UINT32_MAX) return false;
  text_.assign(json.data(), json.size());
  if (!Builder(*this).run()) {
    nodes_.clear();
    return false;
  }
  return true;
}

}  // namespace sluice::core
