#include "policy/literal_shape.h"

#include <algorithm>

namespace sluice::policy {

namespace {

// PostgreSQL 15's lexer: [ \t\n\r\f]. Not \v (a syntax error there): a shape that
// swallowed it would parse where the text does not.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool is_other_control(char c) { return (static_cast<unsigned char>(c) < 0x20 && !is_space(c)) || c == 0x7f; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_word_char(char c) { return is_word_start(c) || is_digit(c); }
// PostgreSQL's operator characters (scan.l `op_chars`).
bool is_op_char(char c) { return std::string_view("~!@#^&|`?+-*/%<>=").find(c) != std::string_view::npos; }

bool equals_lowercase(std::string_view text, std::string_view lowercase_word) {
  if (text.size() != lowercase_word.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lowercase_word[i]) return false;
  }
  return true;
}

// The length of the operator token starting at `at`, by scan.l's rules: the longest
// run of operator characters, cut before a comment start, and losing trailing + and -
// unless it holds a character only a user-defined operator has (so `=-5` is `=` `-5`).
size_t operator_length(std::string_view sql, size_t at) {
  size_t end = at;
  while (end < sql.size() && is_op_char(sql[end])) {
    if (end > at && end + 1 < sql.size() &&
        ((sql[end] == '-' && sql[end + 1] == '-') || (sql[end] == '/' && sql[end + 1] == '*')))
      break;
    ++end;
  }
  size_t length = end - at;
  if (length > 1 && (sql[at + length - 1] == '+' || sql[at + length - 1] == '-') &&
      sql.substr(at, length).find_first_of("~!@#^&|`?%") == std::string_view::npos) {
    while (length > 1 && (sql[at + length - 1] == '+' || sql[at + length - 1] == '-')) --length;
  }
  return length;
}

// Skips a quoted token (string or identifier) whose doubled quote is an escaped one.
// Returns the index after the closing quote, or npos when it is not closed.
size_t skip_quoted(std::string_view sql, size_t at, char quote) {
  for (size_t i = at + 1; i < sql.size(); ++i) {
    if (sql[i] != quote) continue;
    if (i + 1 < sql.size() && sql[i + 1] == quote) {
      ++i;
      continue;
    }
    return i + 1;
  }
  return std::string_view::npos;
}

// Skips a /* */ comment, which nests in PostgreSQL. npos when it is not closed.
size_t skip_block_comment(std::string_view sql, size_t at) {
  size_t depth = 0;
  for (size_t i = at; i + 1 < sql.size(); ++i) {
    if (sql[i] == '/' && sql[i + 1] == '*') {
      ++depth;
      ++i;
    } else if (sql[i] == '*' && sql[i + 1] == '/') {
      ++i;
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

// Scans a numeric literal; sets `clean` when it is one PostgreSQL 15 accepts as a
// whole (digits, an optional fraction, an optional exponent with digits) and no
// identifier character or dot follows it.
size_t scan_number(std::string_view sql, size_t at, bool& clean) {
  size_t i = at;
  while (i < sql.size() && is_digit(sql[i])) ++i;
  if (i < sql.size() && sql[i] == '.' && !(i + 1 < sql.size() && sql[i + 1] == '.')) {
    ++i;
    while (i < sql.size() && is_digit(sql[i])) ++i;
  }
  clean = true;
  if (i < sql.size() && (sql[i] == 'e' || sql[i] == 'E')) {
    size_t j = i + 1;
    if (j < sql.size() && (sql[j] == '+' || sql[j] == '-')) ++j;
    if (j < sql.size() && is_digit(sql[j])) {
      while (j < sql.size() && is_digit(sql[j])) ++j;
      i = j;
    }
  }
  if (i < sql.size() && (is_word_char(sql[i]) || sql[i] == '.')) clean = false;
  return i;
}

}  // namespace

bool LiteralShaper::lex(std::string_view sql) {
  tokens_.clear();
  size_t i = 0;
  auto push = [&](Kind kind, size_t begin, size_t end, bool clean = false) {
    tokens_.push_back(Token{kind, clean, static_cast<uint32_t>(begin), static_cast<uint32_t>(end)});
    i = end;
  };
  while (i < sql.size()) {
    const char c = sql[i];
    const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
    if (c == '$' || c == '\\' || is_other_control(c)) return false;
    if (is_space(c)) {
      ++i;
    } else if (c == '-' && next == '-') {
      while (i < sql.size() && sql[i] != '\n' && sql[i] != '\r') ++i;
    } else if (c == '/' && next == '*') {
      i = skip_block_comment(sql, i);
      if (i == std::string_view::npos) return false;
    } else if (c == '\'' || c == '"') {
      const size_t end = skip_quoted(sql, i, c);
      if (end == std::string_view::npos) return false;
      push(c == '\'' ? Kind::string : Kind::quoted_word, i, end);
    } else if (is_digit(c) || (c == '.' && is_digit(next))) {
      bool clean = false;
      const size_t end = scan_number(sql, i, clean);
      push(Kind::number, i, end, clean);
    } else if (is_word_start(c)) {
      size_t end = i;
      while (end < sql.size() && is_word_char(sql[end])) ++end;
      push(Kind::word, i, end);
    } else if (c == ':' && (next == ':' || next == '=')) {
      push(Kind::op, i, i + 2);  // the :: cast and := are single tokens
    } else if (is_op_char(c)) {
      push(Kind::op, i, i + operator_length(sql, i));
    } else {
      push(Kind::punct, i, i + 1);
    }
  }
  return true;
}

bool LiteralShaper::is_word(size_t i, std::string_view lowercase_word) const {
  return i < tokens_.size() && tokens_[i].kind == Kind::word &&
         equals_lowercase(sql_.substr(tokens_[i].begin, tokens_[i].end - tokens_[i].begin), lowercase_word);
}

bool LiteralShaper::is_punct(size_t i, char c) const {
  return i < tokens_.size() && tokens_[i].kind == Kind::punct && sql_[tokens_[i].begin] == c;
}

bool LiteralShaper::is_op(size_t i, std::string_view op) const {
  return i < tokens_.size() && tokens_[i].kind == Kind::op &&
         sql_.substr(tokens_[i].begin, tokens_[i].end - tokens_[i].begin) == op;
}

// True when tokens ...i are a column reference (`col`, `t.col`, `s.t.col`, quoted
// parts allowed) that begins an operand: right after WHERE, AND, OR, NOT, ON, SET,
// WHEN, `(`, `,` or `=`. That boundary is what makes the column, and not a cast or a
// larger expression ending in a word (`'1'::int`), the left operand of what follows.
bool LiteralShaper::column_ends_at(size_t i) const {
  auto is_name = [&](size_t k) {
    if (k >= tokens_.size()) return false;
    if (tokens_[k].kind == Kind::quoted_word) return true;
    return tokens_[k].kind == Kind::word && !is_word(k, "true") && !is_word(k, "false") && !is_word(k, "null");
  };
  if (!is_name(i)) return false;
  size_t first = i;
  for (int parts = 1; parts < 3 && first >= 2 && is_punct(first - 1, '.') && is_name(first - 2); ++parts) first -= 2;
  if (first == 0) return false;
  const size_t before = first - 1;
  for (std::string_view w : {"where", "and", "or", "not", "on", "set", "when"})
    if (is_word(before, w)) return true;
  return is_punct(before, '(') || is_punct(before, ',') || is_op(before, "=");
}

// Where the literal ending with number token `number` starts: at its unary minus when
// one precedes it right after an operator or BETWEEN/AND (`x + -5`, `x = -5`).
size_t LiteralShaper::signed_number_start(size_t number) const {
  if (number < 2 || !is_op(number - 1, "-")) return number;
  const size_t before = number - 2;
  if (tokens_[before].kind == Kind::op || is_punct(before, '(') || is_punct(before, ',') || is_word(before, "between") ||
      is_word(before, "and"))
    return number - 1;
  return number;
}

void LiteralShaper::mark_column_operands() {
  static constexpr std::string_view kOperators[] = {"=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%"};
  size_t between_and = SIZE_MAX;  // the AND of a `col BETWEEN <literal> AND` just seen
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].kind != Kind::number || !tokens_[i].clean) continue;
    const size_t start = signed_number_start(i);
    if (start == 0) continue;
    const size_t op = start - 1;
    // A token gluing onto the literal would make it part of something else.
    if (is_punct(i + 1, '(') || is_punct(i + 1, '[') || is_punct(i + 1, '.')) continue;
    bool replace = false;
    if (op == between_and && is_word(op, "and")) {
      replace = true;
    } else if (is_word(op, "between")) {
      replace = op >= 1 && column_ends_at(op - 1);
      if (replace) between_and = i + 1;
    } else if (tokens_[op].kind == Kind::op) {
      const std::string_view text = sql_.substr(tokens_[op].begin, tokens_[op].end - tokens_[op].begin);
      replace = std::find(std::begin(kOperators), std::end(kOperators), text) != std::end(kOperators) && op >= 1 &&
                column_ends_at(op - 1);
    }
    if (replace) replacements_.push_back(Replacement{static_cast<uint32_t>(start), static_cast<uint32_t>(i)});
  }
}

// Marks the bare numeric elements of the parenthesised list opening at token `open`
// (a VALUES row, an IN list); with `all_or_nothing`, only when every element is one
// (so `x IN (SELECT a ... GROUP BY a, 1)` keeps its position 1). Returns the index of
// the list's closing parenthesis, tokens_.size() when it has none.
size_t LiteralShaper::mark_list_at(size_t open, bool all_or_nothing) {
  const size_t marked_before = replacements_.size();
  size_t depth = 0, element = open + 1, i = open;
  bool all_numbers = true;
  for (; i < tokens_.size(); ++i) {
    if (is_punct(i, '(')) ++depth;
    const bool closes = is_punct(i, ')') && --depth == 0;
    if ((depth == 1 && is_punct(i, ',')) || closes) {
      // Element: tokens [element, i).
      const bool negative = i - element == 2 && is_op(element, "-");
      const size_t number = negative ? element + 1 : element;
      if (i - element == (negative ? 2u : 1u) && tokens_[number].kind == Kind::number && tokens_[number].clean) {
        replacements_.push_back(Replacement{static_cast<uint32_t>(element), static_cast<uint32_t>(number)});
      } else {
        all_numbers = false;
      }
      element = i + 1;
    }
    if (closes) break;
  }
  if (depth != 0 || (all_or_nothing && !all_numbers)) replacements_.resize(marked_before);
  return i;
}

void LiteralShaper::mark_lists() {
  for (size_t i = 0; i + 1 < tokens_.size(); ++i) {
    if (!is_punct(i + 1, '(')) continue;
    if (is_word(i, "values")) {
      // VALUES (..), (..), ...: every row.
      for (size_t row = i + 1; is_punct(row, '(');) {
        const size_t close = mark_list_at(row, false);
        if (close >= tokens_.size() || !is_punct(close + 1, ',')) break;
        row = close + 2;
      }
    } else if (is_word(i, "in") && i >= 1 &&
               (column_ends_at(i - 1) || (is_word(i - 1, "not") && i >= 2 && column_ends_at(i - 2)))) {
      mark_list_at(i + 1, true);
    }
  }
}

bool LiteralShaper::shape(std::string_view sql, std::string& out) {
  sql_ = sql;
  replacements_.clear();
  if (!lex(sql)) return false;
  mark_column_operands();
  mark_lists();
  if (replacements_.empty()) return false;
  std::sort(replacements_.begin(), replacements_.end(),
            [](const Replacement& a, const Replacement& b) { return a.first < b.first; });

  out.clear();
  out.reserve(sql.size() + replacements_.size() * 4);
  size_t copied = 0;   // bytes of sql already in out
  uint32_t param = 0;  // the last $n written
  for (const Replacement& r : replacements_) {
    const size_t begin = tokens_[r.first].begin, end = tokens_[r.last].end;
    if (begin < copied) continue;  // overlaps one already replaced
    out.append(sql, copied, begin - copied);
    out += '$';
    out += std::to_string(++param);
    copied = end;
  }
  out.append(sql, copied, std::string_view::npos);
  return true;
}

}  // namespace sluice::policy
