// One linear pass over a SQL text that bounds what libpg_query will be asked to build:
// length, bracket depth and operator tokens, and refuses text that is not UTF-8. It
// follows PostgreSQL 15's lexer (scan.l, standard_conforming_strings = on) only as far
// as needed to know which bytes are code and which are inside comments, strings,
// quoted identifiers or dollar quotes; tests compare its counts with libpg_query's scanner.
//
// Depth counts ( and [ only. Nesting without brackets (CASE in CASE, NOT NOT ...) is
// right-recursive in the grammar, so bison's own stack limit turns it into a clean
// "memory exhausted" error; the crashes come from left-deep trees that bison builds in
// constant stack (a+a+..., x::t::t..., JOIN chains, UNION chains), which is what the
// operator count bounds.
#include "policy/sql_guard.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace sluice::policy {
namespace {

// What a byte starts when it appears in code (outside strings and comments).
enum class Lead : uint8_t {
  other,     // whitespace and punctuation that needs no attention: , ; . { } \ ...
  letter,    // A-Z a-z _: an identifier or keyword, or the prefix of E'...', U&'...', U&"..."
  digit,     // a number
  op,        // one of PostgreSQL's operator characters; may start a comment
  quote,     // '
  dquote,    // "
  dollar,    // $: parameter, dollar quote or a lone $
  open,      // ( [
  close,     // ) ]
  colon,     // : (:: is the typecast operator)
  nul,       // never valid
  high,      // 0x80..0xff: a multibyte UTF-8 character, which PostgreSQL lets start an identifier
};

// Bits of kStops: the bytes that end a run of "nothing to see" inside each construct.
// Every construct stops at NUL and at bytes >= 0x80 so the UTF-8 check sees them all.
constexpr uint8_t kStopString = 1;      // '...' and E'...': the quote and backslash
constexpr uint8_t kStopIdentifier = 2;  // "...": the double quote
constexpr uint8_t kStopBlock = 4;       // /* ... */: * and / (nesting)
constexpr uint8_t kStopLine = 8;        // -- ...: end of line
constexpr uint8_t kStopDollar = 16;     // $tag$ ... $tag$: a dollar
constexpr uint8_t kIdentifierByte = 32; // continues an identifier: A-Z a-z 0-9 _ $ and >= 0x80
constexpr uint8_t kIdentifierAscii = 64; // the ASCII ones of those
constexpr uint8_t kStopAll = kStopString | kStopIdentifier | kStopBlock | kStopLine | kStopDollar;

constexpr bool is_letter(unsigned c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
constexpr bool is_digit(unsigned c) { return c >= '0' && c <= '9'; }
// PostgreSQL's op_chars.
constexpr bool is_op_char(unsigned c) {
  switch (c) {
    case '~': case '!': case '@': case '#': case '^': case '&': case '|': case '`': case '?':
    case '+': case '-': case '*': case '/': case '%': case '<': case '>': case '=':
      return true;
    default:
      return false;
  }
}
// The characters that let a multi-character operator end in + or - (scan.l).
constexpr bool allows_trailing_sign(unsigned c) {
  switch (c) {
    case '~': case '!': case '@': case '#': case '^': case '&': case '|': case '`': case '?': case '%':
      return true;
    default:
      return false;
  }
}

constexpr std::array<Lead, 256> kLead = [] {
  std::array<Lead, 256> t{};
  for (unsigned c = 0; c < 256; ++c) {
    Lead l = Lead::other;
    if (c == 0) l = Lead::nul;
    else if (c >= 0x80) l = Lead::high;
    else if (is_letter(c)) l = Lead::letter;
    else if (is_digit(c)) l = Lead::digit;
    else if (is_op_char(c)) l = Lead::op;
    else if (c == '\'') l = Lead::quote;
    else if (c == '"') l = Lead::dquote;
    else if (c == '$') l = Lead::dollar;
    else if (c == '(' || c == '[') l = Lead::open;
    else if (c == ')' || c == ']') l = Lead::close;
    else if (c == ':') l = Lead::colon;
    t[c] = l;
  }
  return t;
}();

constexpr std::array<uint8_t, 256> kStops = [] {
  std::array<uint8_t, 256> t{};
  t[0] = kStopAll;
  for (unsigned c = 0x80; c < 256; ++c) t[c] = kStopAll | kIdentifierByte;
  t['\''] |= kStopString;
  t['\\'] |= kStopString;
  t['"'] |= kStopIdentifier;
  t['*'] |= kStopBlock;
  t['/'] |= kStopBlock;
  t['\n'] |= kStopLine;
  t['\r'] |= kStopLine;
  t['$'] |= kStopDollar | kIdentifierByte | kIdentifierAscii;
  for (unsigned c = 0; c < 0x80; ++c)
    if (is_letter(c) || is_digit(c)) t[c] |= kIdentifierByte | kIdentifierAscii;
  return t;
}();

// Length of the well-formed UTF-8 character starting at s[i] (s[i] >= 0x80), or 0.
// Same rules as PostgreSQL's pg_utf8_islegal: no overlongs, no surrogates, nothing
// above U+10FFFF, no truncated sequences.
inline size_t utf8_length(const unsigned char* s, size_t i, size_t n) {
  const unsigned c = s[i];
  size_t len;
  unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c < 0xc2) return 0;         // continuation byte, or overlong 2-byte lead
  if (c < 0xe0) {
    len = 2;
  } else if (c < 0xf0) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;       // overlong
    else if (c == 0xed) hi = 0x9f;  // surrogates U+D800..U+DFFF
  } else if (c < 0xf5) {
    len = 4;
    if (c == 0xf0) lo = 0x90;       // overlong
    else if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (n - i < len) return 0;
  if (s[i + 1] < lo || s[i + 1] > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if ((s[i + k] & 0xc0) != 0x80) return 0;
  return len;
}

// The number of bytes PostgreSQL's pg_utf_mblen assigns to a lead byte; report_invalid_encoding
// prints that many (at most what is left, at most 8).
size_t pg_utf_mblen(unsigned char c) {
  if ((c & 0x80) == 0) return 1;
  if ((c & 0xe0) == 0xc0) return 2;
  if ((c & 0xf0) == 0xe0) return 3;
  if ((c & 0xf8) == 0xf0) return 4;
  return 1;
}

// The identifier's bytes, lower-cased, as one number: a keyword check is one switch.
// Words of different lengths never collide (no byte of a word packs to 0).
constexpr uint64_t pack(const unsigned char* s, size_t len) {
  uint64_t key = 0;
  for (size_t k = 0; k < len; ++k) key = key << 8 | (s[k] | 0x20u);
  return key;
}
constexpr uint64_t pack(const char* word) {
  uint64_t key = 0;
  while (*word) key = key << 8 | static_cast<unsigned char>(*word++);
  return key;
}

// True when the identifier s[0..len) is one of the words counted as operator tokens.
// Besides the brief's operator keywords, JOIN and the set operations UNION, INTERSECT
// and EXCEPT: each builds one more level of a left-deep tree (JoinExpr, SelectStmt),
// and 30,000 JOINs or 60,000 UNIONs crash libpg_query's protobuf output just as
// 30,000 `+` do. Keywords are ASCII; `| 0x20` lower-cases letters and maps no other
// identifier byte onto a lower-case letter.
bool is_operator_keyword(const unsigned char* s, size_t len) {
  if (len < 2 || len > 9) return false;
  if (len == 9) return (s[0] | 0x20) == 'i' && pack(s + 1, 8) == pack("ntersect");  // 9 bytes do not fit
  switch (pack(s, len)) {
    case pack("is"): case pack("at"): case pack("in"): case pack("or"):
    case pack("not"): case pack("and"):
    case pack("like"): case pack("join"):
    case pack("ilike"): case pack("union"):
    case pack("escape"): case pack("except"):
    case pack("collate"): case pack("similar"): case pack("between"):
    case pack("overlaps"):
      return true;
    default:
      return false;
  }
}

class Scanner {
 public:
  Scanner(std::string_view sql, const SqlLimits& limits)
      : s_(reinterpret_cast<const unsigned char*>(sql.data())), n_(sql.size()), limits_(limits) {}

  GuardVerdict run() {
    size_t i = 0;
    // Every helper returns the position after what it consumed, or n_ after recording
    // a failed verdict, so the loop ends on the first limit crossed.
    while (i < n_) {
      const unsigned char c = s_[i];
      switch (kLead[c]) {
        case Lead::other:
          do ++i;
          while (i < n_ && kLead[s_[i]] == Lead::other);  // ", " and indentation in one go
          break;
        case Lead::letter: i = word(i); break;
        case Lead::digit: i = number(i); break;
        case Lead::op: i = operator_or_comment(i); break;
        case Lead::quote: i = quoted(i + 1, '\'', false); break;
        case Lead::dquote: i = quoted(i + 1, '"', false); break;
        case Lead::dollar: i = dollar(i); break;
        case Lead::open: i = open_bracket(i) ? i + 1 : n_; break;
        case Lead::close:
          if (depth_ > 0) --depth_;  // an unbalanced close is the parser's to report
          ++i;
          break;
        case Lead::colon:
          if (i + 1 < n_ && s_[i + 1] == ':') i = count_operator(i) ? i + 2 : n_;  // typecast
          else if (i + 1 < n_ && s_[i + 1] == '=') i += 2;  // := names an argument, not an operator
          else ++i;
          break;
        case Lead::nul: i = invalid(i); break;
        case Lead::high: i = identifier(multibyte(i)); break;  // scan.l: ident_start includes \200-\377
      }
    }
    return verdict_;
  }

 private:
  size_t invalid(size_t at) {
    verdict_.result = GuardResult::invalid_utf8;
    verdict_.offset = at;
    return n_;
  }

  // Consumes the multibyte character at i (s_[i] >= 0x80).
  size_t multibyte(size_t i) {
    const size_t len = utf8_length(s_, i, n_);
    return len == 0 ? invalid(i) : i + len;
  }

  // Skips bytes without any of the `stops` bits.
  size_t skip(size_t i, uint8_t stops) const {
    while (i < n_ && (kStops[s_[i]] & stops) == 0) ++i;
    return i;
  }

  // Handles a stop byte common to every construct: NUL or a multibyte character.
  // Returns true (with i advanced) if s_[i] was one.
  bool common_stop(size_t& i) {
    if (s_[i] >= 0x80) {
      i = multibyte(i);
      return true;
    }
    if (s_[i] == 0) {
      i = invalid(i);
      return true;
    }
    return false;
  }

  bool open_bracket(size_t at) {
    ++depth_;
    if (depth_ > verdict_.max_depth_seen) verdict_.max_depth_seen = depth_;
    if (depth_ <= limits_.max_nesting) return true;
    verdict_.result = GuardResult::too_deeply_nested;
    verdict_.offset = at;
    return false;
  }

  bool count_operator(size_t at) {
    if (++verdict_.operators_seen <= limits_.max_operators) return true;
    verdict_.result = GuardResult::too_many_operators;
    verdict_.offset = at;
    return false;
  }

  // Identifier bytes after the first (which the caller consumed); validates UTF-8.
  size_t identifier(size_t i) {
    for (;;) {
      while (i < n_ && (kStops[s_[i]] & kIdentifierAscii)) ++i;
      if (i >= n_ || s_[i] < 0x80) return i;
      i = multibyte(i);
    }
  }

  // A word starting with an ASCII letter: a keyword, an identifier, or the one-letter
  // prefix of a string. B'...', X'...' and N'...' need no case of their own: the
  // letter ends as a word at the quote, which starts an ordinary string.
  size_t word(size_t i) {
    const size_t end = identifier(i + 1);
    if (verdict_.result != GuardResult::ok) return n_;
    if (end == i + 1) {
      if (end >= n_) return end;
      const unsigned lower = s_[i] | 0x20;
      if (s_[end] == '\'' && lower == 'e') return quoted(end + 1, '\'', true);  // E'...': backslash escapes
      if (s_[end] == '&' && lower == 'u' && end + 1 < n_ && (s_[end + 1] == '\'' || s_[end + 1] == '"'))
        return quoted(end + 2, s_[end + 1], false);  // U&'...' and U&"...", not U & '...'
      return end;
    }
    if (is_operator_keyword(s_ + i, end - i) && !count_operator(i)) return n_;
    return end;
  }

  // scan.l's integer, decimal and real; "1e+5" holds no operator. Letters after a
  // number start a new word, as in PostgreSQL 15.
  size_t number(size_t i) {
    while (i < n_ && is_digit(s_[i])) ++i;
    if (i < n_ && s_[i] == '.' && !(i + 1 < n_ && s_[i + 1] == '.')) {  // "1..2" is 1 then ..
      ++i;
      while (i < n_ && is_digit(s_[i])) ++i;
    }
    if (i < n_ && (s_[i] | 0x20) == 'e') {
      size_t k = i + 1;
      if (k < n_ && (s_[k] == '+' || s_[k] == '-')) ++k;
      if (k < n_ && is_digit(s_[k])) {
        i = k;
        while (i < n_ && is_digit(s_[i])) ++i;
      }
    }
    return i;
  }

  // '...', E'...' (backslash_escapes) and "..."; a doubled quote stands for itself.
  // i is just past the opening quote. Unterminated: the rest is string.
  size_t quoted(size_t i, unsigned char quote, bool backslash_escapes) {
    const uint8_t stops = quote == '"' ? kStopIdentifier : kStopString;
    for (;;) {
      i = skip(i, stops);
      if (i >= n_) return n_;
      const unsigned char c = s_[i];
      if (c == quote) {
        if (i + 1 < n_ && s_[i + 1] == quote) {
          i += 2;
          continue;
        }
        return i + 1;
      }
      if (common_stop(i)) continue;
      // A backslash (only '...' stops at one). In E'...' it escapes the next byte,
      // unless that byte is NUL or starts a multibyte character: those get checked.
      if (backslash_escapes && i + 1 < n_ && s_[i + 1] != 0 && s_[i + 1] < 0x80) i += 2;
      else ++i;
    }
  }

  // Line comments run to \n or \r; block comments nest, as in PostgreSQL.
  size_t line_comment(size_t i) {
    for (;;) {
      i = skip(i, kStopLine);
      if (i >= n_) return n_;
      if (!common_stop(i)) return i + 1;
    }
  }

  size_t block_comment(size_t i) {
    size_t nesting = 1;
    for (;;) {
      i = skip(i, kStopBlock);
      if (i >= n_) return n_;
      if (common_stop(i)) continue;
      if (s_[i] == '/' && i + 1 < n_ && s_[i + 1] == '*') {
        ++nesting;
        i += 2;
      } else if (s_[i] == '*' && i + 1 < n_ && s_[i + 1] == '/') {
        i += 2;
        if (--nesting == 0) return i;
      } else {
        ++i;
      }
    }
  }

  // At '$': $$ and $tag$ open a dollar quote (the tag is an identifier without '$'
  // that does not start with a digit); anything else is a lone '$' and what follows
  // is lexed afresh, as scan.l's dolqfailed does. That also covers parameters: $1
  // holds nothing to count, and "$1" read as '$' then the number 1 counts the same.
  size_t dollar(size_t i) {
    if (i + 1 >= n_) return n_;
    const unsigned char next = s_[i + 1];
    if (next == '$') return dollar_body(i + 2, i + 1, 0);
    if (!is_letter(next) && next < 0x80) return i + 1;
    size_t j = i + 1;
    while (j < n_ && (kStops[s_[j]] & kIdentifierByte) && s_[j] != '$') {
      if (s_[j] >= 0x80) {
        j = multibyte(j);
        if (verdict_.result != GuardResult::ok) return n_;
      } else {
        ++j;
      }
    }
    if (j < n_ && s_[j] == '$') return dollar_body(j + 1, i + 1, j - i - 1);
    return i + 1;
  }

  // Scans for $tag$ where the tag is s_[tag, tag + tag_len). A failed comparison never
  // passes a '$' of the body (tags hold none), so the work stays linear.
  size_t dollar_body(size_t i, size_t tag, size_t tag_len) {
    for (;;) {
      i = skip(i, kStopDollar);
      if (i >= n_) return n_;
      if (common_stop(i)) continue;
      if (n_ - i >= tag_len + 2 && s_[i + 1 + tag_len] == '$') {
        size_t k = 0;
        while (k < tag_len && s_[i + 1 + k] == s_[tag + k]) ++k;
        if (k == tag_len) return i + tag_len + 2;
      }
      ++i;
    }
  }

  // At an operator character: a comment, or a run of operator characters that ends
  // before any "--" or "/*" in it. PostgreSQL makes the run one token unless it ends
  // in + or - and holds none of ~ ! @ # ^ & | ` ? %: then the trailing signs are cut
  // off and each becomes a token of its own ("*-" is * and -; "+-+-" is four).
  size_t operator_or_comment(size_t i) {
    const unsigned char c = s_[i];
    if (i + 1 < n_) {
      if (c == '-' && s_[i + 1] == '-') return line_comment(i + 2);
      if (c == '/' && s_[i + 1] == '*') return block_comment(i + 2);
    }
    size_t end = i + 1;
    bool may_end_in_sign = allows_trailing_sign(c);
    while (end < n_ && is_op_char(s_[end])) {
      if (end + 1 < n_ && ((s_[end] == '-' && s_[end + 1] == '-') || (s_[end] == '/' && s_[end + 1] == '*'))) break;
      may_end_in_sign = may_end_in_sign || allows_trailing_sign(s_[end]);
      ++end;
    }
    const auto sign = [](unsigned char b) { return b == '+' || b == '-'; };
    if (end - i == 1 || !sign(s_[end - 1]) || may_end_in_sign) return count_operator(i) ? end : n_;
    size_t signs = end;  // start of the trailing run of + and -
    while (signs > i && sign(s_[signs - 1])) --signs;
    if (signs > i && !count_operator(i)) return n_;
    for (size_t k = signs; k < end; ++k)
      if (!count_operator(k)) return n_;
    return end;
  }

  const unsigned char* s_;
  size_t n_;
  const SqlLimits& limits_;
  uint32_t depth_ = 0;
  GuardVerdict verdict_;
};

}  // namespace

GuardVerdict guard_sql(std::string_view sql, const SqlLimits& limits) {
  if (sql.size() > limits.max_statement_bytes) return GuardVerdict{GuardResult::too_long, 0, 0, 0};
  return Scanner(sql, limits).run();
}

GuardError describe(const GuardVerdict& verdict, std::string_view sql, const SqlLimits& limits) {
  GuardError error;
  switch (verdict.result) {
    case GuardResult::ok:
      break;
    case GuardResult::too_long:
      error.sqlstate = "54000";  // program_limit_exceeded
      error.message = "statement of " + std::to_string(sql.size()) + " bytes exceeds sluice's limit of " +
                      std::to_string(limits.max_statement_bytes) + " bytes";
      error.hint = "Send a shorter statement, or ask the operator to raise [policy] max_statement_bytes.";
      break;
    case GuardResult::invalid_utf8: {
      error.sqlstate = "22021";  // character_not_in_repertoire
      // As PostgreSQL's report_invalid_encoding: the bytes of the bad character, as
      // many as its lead byte announces (at most 4 in UTF-8), no more than remain.
      std::string bytes;
      if (verdict.offset < sql.size()) {
        const size_t remaining = sql.size() - verdict.offset;
        const size_t count = std::min(pg_utf_mblen(static_cast<unsigned char>(sql[verdict.offset])), remaining);
        for (size_t k = 0; k < count; ++k) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "%s0x%02x", k == 0 ? "" : " ",
                        static_cast<unsigned char>(sql[verdict.offset + k]));
          bytes += hex;
        }
      }
      error.message = "invalid byte sequence for encoding \"UTF8\": " + bytes;
      // No hint: PostgreSQL gives none, and clients may compare the error with the server's.
      break;
    }
    case GuardResult::too_deeply_nested:
      error.sqlstate = "54001";  // statement_too_complex
      error.message = "statement is too complex for sluice to analyse safely: nesting depth " +
                      std::to_string(verdict.max_depth_seen) + " exceeds " + std::to_string(limits.max_nesting);
      error.hint = "Nest fewer parentheses and brackets, or ask the operator to raise [policy] max_nesting.";
      break;
    case GuardResult::too_many_operators:
      error.sqlstate = "54001";
      error.message = "statement is too complex for sluice to analyse safely: more than " +
                      std::to_string(limits.max_operators) + " operators";
      error.hint = "Split the statement or use fewer operators (an IN list or an array counts as one), or ask the "
                   "operator to raise [policy] max_operators.";
      break;
  }
  return error;
}

}  // namespace sluice::policy
