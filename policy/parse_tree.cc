// libpg_query call and a small iterative JSON reader (no recursion: a hostile
// statement's depth must not become stack depth here).
#include "policy/parse_tree.h"

#include <pg_query.h>

#include <charconv>
#include <cstring>

namespace sluice::policy {

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Appends code point `cp` as UTF-8 at out; returns the bytes written.
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

// Decodes the JSON string starting after its opening quote at `pos`, in place.
// On success sets [begin, length) of the decoded text and moves pos past the
// closing quote. The decoded form is never longer than the escaped one.
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
        if (read + 4 > n) return false;
        uint32_t cp = 0;
        for (int k = 0; k < 4; ++k) {
          const int h = hex_value(s[read + k]);
          if (h < 0) return false;
          cp = cp << 4 | static_cast<uint32_t>(h);
        }
        read += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && read + 6 <= n && s[read] == '\\' && s[read + 1] == 'u') {
          uint32_t low = 0;
          bool ok = true;
          for (int k = 0; k < 4; ++k) {
            const int h = hex_value(s[read + 2 + k]);
            if (h < 0) ok = false;
            low = low << 4 | static_cast<uint32_t>(h < 0 ? 0 : h);
          }
          if (ok && low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            read += 6;
          }
        }
        // "\uXXXX" is 6 bytes and becomes at most 3 (4 for a 12-byte surrogate pair).
        write += put_utf8(s + write, cp);
        break;
      }
      default: return false;
    }
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------
// Node
// ---------------------------------------------------------------------------

ParseTree::Type ParseTree::Node::type() const { return tree_->nodes_[index_].type; }

std::string_view ParseTree::Node::key() const {
  if (!valid()) return {};
  const Entry& e = tree_->nodes_[index_];
  return std::string_view(tree_->text_).substr(e.key_offset, e.key_length);
}

ParseTree::Node ParseTree::Node::operator[](std::string_view key) const {
  if (!is_object()) return {};
  for (Node child = first(); child; child = child.next())
    if (child.key() == key) return child;
  return {};
}

ParseTree::Node ParseTree::Node::first() const {
  if (!valid()) return {};
  return Node(tree_, tree_->nodes_[index_].first_child);
}

ParseTree::Node ParseTree::Node::next() const {
  if (!valid()) return {};
  return Node(tree_, tree_->nodes_[index_].next_sibling);
}

std::string_view ParseTree::Node::text() const {
  if (!valid()) return {};
  const Entry& e = tree_->nodes_[index_];
  if (e.type != Type::string && e.type != Type::number) return {};
  return std::string_view(tree_->text_).substr(e.text_offset, e.text_length);
}

bool ParseTree::Node::boolean() const { return valid() && tree_->nodes_[index_].type == Type::boolean && tree_->nodes_[index_].boolean; }

int64_t ParseTree::Node::integer() const {
  const std::string_view digits = text();
  int64_t value = 0;
  if (digits.empty() || type() != Type::number) return 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return 0;
  return value;
}

std::string_view ParseTree::Node::node_type() const {
  if (!is_object()) return {};
  const Node only = first();
  if (!only || only.next() || !only.is_object()) return {};
  const std::string_view name = only.key();
  // Node type names start with an upper-case letter (SelectStmt, A_Expr, String);
  // field names never do.
  if (name.empty() || name[0] < 'A' || name[0] > 'Z') return {};
  return name;
}

ParseTree::Node ParseTree::Node::node_body() const {
  if (node_type().empty()) return {};
  return first();
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

bool ParseTree::parse(std::string_view sql, SqlSyntaxError& error) {
  sql_.assign(sql.data(), sql.size());
  PgQueryParseResult result = pg_query_parse(sql_.c_str());
  if (result.error != nullptr) {
    error.message = result.error->message != nullptr ? result.error->message : "syntax error";
    error.position = result.error->cursorpos;
    pg_query_free_parse_result(result);
    nodes_.clear();
    return false;
  }
  const bool ok = load_json(result.parse_tree != nullptr ? std::string_view(result.parse_tree) : std::string_view());
  pg_query_free_parse_result(result);
  if (!ok) {
    error.message = "sluice could not read the parse tree of this statement";
    error.position = 0;
  }
  return ok;
}

bool ParseTree::load_json(std::string_view json) {
  text_.assign(json.data(), json.size());
  if (!build()) {
    nodes_.clear();
    return false;
  }
  return true;
}

bool ParseTree::build() {
  nodes_.clear();
  stack_.clear();
  last_child_.clear();
  const size_t n = text_.size();
  if (n >= UINT32_MAX) return false;
  size_t pos = 0;
  auto skip_space = [&] {
    while (pos < n && is_space(text_[pos])) ++pos;
  };

  // Adds a node as the next child of the innermost open container.
  auto add = [&](Type type, uint32_t key_offset, uint32_t key_length) -> uint32_t {
    const auto index = static_cast<uint32_t>(nodes_.size());
    Entry e{};
    e.type = type;
    e.key_offset = key_offset;
    e.key_length = key_length;
    e.first_child = kNone;
    e.next_sibling = kNone;
    nodes_.push_back(e);
    if (!stack_.empty()) {
      const uint32_t parent = stack_.back();
      uint32_t& last = last_child_.back();
      if (last == kNone)
        nodes_[parent].first_child = index;
      else
        nodes_[last].next_sibling = index;
      last = index;
    }
    return index;
  };

  bool expect_value = true;  // false: expect ',' or a closing bracket
  for (;;) {
    skip_space();
    if (expect_value) {
      uint32_t key_offset = 0, key_length = 0;
      const bool in_object = !stack_.empty() && nodes_[stack_.back()].type == Type::object;
      if (in_object) {
        if (pos >= n) return false;
        if (text_[pos] == '}' && last_child_.back() == kNone) {  // empty object
          ++pos;
          stack_.pop_back();
          last_child_.pop_back();
          expect_value = false;
          if (stack_.empty()) break;
          continue;
        }
        if (text_[pos] != '"') return false;
        ++pos;
        if (!decode_string(text_, pos, key_offset, key_length)) return false;
        skip_space();
        if (pos >= n || text_[pos] != ':') return false;
        ++pos;
        skip_space();
      }
      if (pos >= n) return false;
      const char c = text_[pos];
      if (c == ']' && !stack_.empty() && nodes_[stack_.back()].type == Type::array && last_child_.back() == kNone) {
        ++pos;  // empty array
        stack_.pop_back();
        last_child_.pop_back();
        expect_value = false;
        if (stack_.empty()) break;
        continue;
      }
      if (c == '{' || c == '[') {
        if (stack_.size() >= kMaxDepth) return false;
        const uint32_t index = add(c == '{' ? Type::object : Type::array, key_offset, key_length);
        stack_.push_back(index);
        last_child_.push_back(kNone);
        ++pos;
        continue;  // expect_value stays true: a key or element (or the close) follows
      }
      if (c == '"') {
        const uint32_t index = add(Type::string, key_offset, key_length);
        ++pos;
        uint32_t begin = 0, length = 0;
        if (!decode_string(text_, pos, begin, length)) return false;
        nodes_[index].text_offset = begin;
        nodes_[index].text_length = length;
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        const uint32_t index = add(Type::number, key_offset, key_length);
        const size_t begin = pos;
        ++pos;
        while (pos < n && (std::isdigit(static_cast<unsigned char>(text_[pos])) || text_[pos] == '.' ||
                           text_[pos] == 'e' || text_[pos] == 'E' || text_[pos] == '+' || text_[pos] == '-'))
          ++pos;
        nodes_[index].text_offset = static_cast<uint32_t>(begin);
        nodes_[index].text_length = static_cast<uint32_t>(pos - begin);
      } else if (text_.compare(pos, 4, "true") == 0 || text_.compare(pos, 5, "false") == 0) {
        const bool value = c == 't';
        const uint32_t index = add(Type::boolean, key_offset, key_length);
        nodes_[index].boolean = value;
        pos += value ? 4 : 5;
      } else if (text_.compare(pos, 4, "null") == 0) {
        add(Type::null, key_offset, key_length);
        pos += 4;
      } else {
        return false;
      }
      if (stack_.empty()) break;  // a scalar document
      expect_value = false;
      continue;
    }
    // After a value: ',' for the next one, or close the innermost container.
    if (pos >= n || stack_.empty()) return false;
    const char c = text_[pos++];
    const Type open = nodes_[stack_.back()].type;
    if (c == ',') {
      expect_value = true;
    } else if ((c == '}' && open == Type::object) || (c == ']' && open == Type::array)) {
      stack_.pop_back();
      last_child_.pop_back();
      if (stack_.empty()) break;
    } else {
      return false;
    }
  }
  skip_space();
  return pos == n && !nodes_.empty();
}

}  // namespace sluice::policy
