// The built-in pattern pack and the span-settling validators behind it. Regular
// expressions here find a shape cheaply (Hyperscan); the validators below decide,
// looking at the bytes around the match, whether it is the real thing and exactly
// which bytes to mask. Formats are written from their issuers' public descriptions.
//
// Rules the regexes keep (the scanner relies on them):
//  - nothing matches across a NUL: the scanner frames each value with NUL bytes, so
//    a match never runs from one column into the next. A NUL may be matched as the
//    first or last byte, meaning "start or end of the value" (us_ssn_bare);
//  - tier 1 patterns start with, or contain, a literal (a prefix or a keyword), so
//    clean text costs little; a variable-length body is matched at its minimum length
//    and extended by the validator (one Hyperscan match per token rather than one per
//    extra byte), and fixed-width or end-anchored shapes spare Hyperscan the cost of
//    tracking where matches start (PatternSpec::match_start).
#include "mask/patterns.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

namespace sluice::mask {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_lower_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }
bool is_base64url(char c) { return is_alnum(c) || c == '-' || c == '_'; }
bool is_base64(char c) { return is_alnum(c) || c == '+' || c == '/'; }
bool is_base32_upper(char c) { return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'); }
bool is_dotted_token(char c) { return is_base64url(c) || c == '.'; }
bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

using CharTest = bool (*)(char);

std::string_view text_of(std::string_view value, Span span) { return value.substr(span.begin, span.size()); }

// A token that starts at span.begin with a literal prefix: the body is extended from
// the match's end over `body` bytes, up to `max_total` bytes in all (a longer run is
// some other blob that happens to contain the prefix). A trailing '.' is a sentence's
// full stop, not part of the token. The token must not be glued to a word on either
// side, and must not be a placeholder.
bool token_at(std::string_view value, Span& span, CharTest body, uint32_t max_total) {
  if (!token_starts_at(value, span.begin)) return false;
  // A '-', '_' or '.' of the token's own alphabet before it: a slice of a longer run
  // ("x-glpat-..."). This also keeps a hostile "glpat-glpat-glpat-..." linear: only the
  // first prefix of the run is extended.
  if (span.begin > 0 && body(value[span.begin - 1]) && !is_alnum(value[span.begin - 1])) return false;
  const size_t limit = std::min<size_t>(value.size(), size_t{span.begin} + max_total + 1);
  size_t end = span.end;
  while (end < limit && body(value[end])) ++end;
  while (end > span.end && value[end - 1] == '.') --end;
  if (end - span.begin > max_total) return false;
  if (end < value.size() && is_alnum(value[end])) return false;
  span.end = static_cast<uint32_t>(end);
  return !is_placeholder(text_of(value, span));
}

// Skips line breaks as they appear in stored text: real ones, and the two-byte escapes
// "\n" / "\r" of JSON-encoded values (a service-account key in a JSON column).
size_t skip_breaks(std::string_view value, size_t pos) {
  while (pos < value.size()) {
    if (is_space(value[pos])) {
      ++pos;
    } else if (value[pos] == '\\' && pos + 1 < value.size() && (value[pos + 1] == 'n' || value[pos + 1] == 'r')) {
      pos += 2;
    } else {
      break;
    }
  }
  return pos;
}

// The value of an assignment whose "key =" ends at span.end (patterns with
// match_start == false): optional blanks, then a quoted string or a bare word.
bool assigned_value(std::string_view value, Span& span, size_t min_length) {
  constexpr size_t kMaxValue = 256;
  size_t pos = span.end;
  while (pos < value.size() && is_blank(value[pos])) ++pos;
  if (pos >= value.size()) return false;
  size_t begin = pos, end = pos;
  const char quote = value[pos];
  if (quote == '"' || quote == '\'' || quote == '`') {
    begin = ++pos;
    const size_t limit = std::min(value.size(), begin + kMaxValue);
    while (pos < limit && value[pos] != quote && value[pos] != '\n' && value[pos] != '\0') ++pos;
    end = pos;
  } else {
    const size_t limit = std::min(value.size(), begin + kMaxValue);
    while (pos < limit) {
      const char c = value[pos];
      if (is_space(c) || c == '"' || c == '\'' || c == ',' || c == ';' || c == '&' || c == '<' || c == '>' ||
          c == ')' || c == '}' || c == ']' || c == '\0') {
        break;
      }
      ++pos;
    }
    end = pos;
  }
  if (end <= begin) return false;
  const std::string_view text = value.substr(begin, end - begin);
  if (!looks_like_secret_value(text, min_length)) return false;
  span = {static_cast<uint32_t>(begin), static_cast<uint32_t>(end)};
  return true;
}

// --- secrets -----------------------------------------------------------------------

bool aws_access_key_id(std::string_view v, Span& s) { return token_at(v, s, is_base32_upper, 20); }

// "aws_secret_access_key = <40 base64>": the regex ends at the 40th byte of the value.
bool aws_secret_in_context(std::string_view v, Span& s) {
  if (s.end < 40) return false;
  if (s.end < v.size() && (is_base64(v[s.end]) || v[s.end] == '=')) return false;
  s.begin = s.end - 40;
  const std::string_view key = text_of(v, s);
  return !is_placeholder(key) && shannon_entropy(key) >= 3.5;
}

// 40 base64 bytes on their own, with no keyword: only a random-looking string counts
// (a git SHA-1 is 40 hex, a sha256 is 64: neither passes). Neighbours from the base64
// or base64url alphabets mean the 40 bytes are a slice of a longer blob. (Consuming
// the boundary bytes in the regex would spare the callbacks inside long blobs, but
// makes the pattern four times slower on ordinary text; rejecting here costs O(1).)
bool bare_base64_40(std::string_view v, Span& s) {
  auto part_of_blob = [](char c) { return is_base64(c) || c == '=' || c == '-' || c == '_'; };
  if (s.begin > 0 && part_of_blob(v[s.begin - 1]) && !(is_alpha(v[s.begin - 1]) && token_starts_at(v, s.begin))) {
    return false;  // (a letter before it is fine when it ends a "\n" escape)
  }
  if (s.end < v.size() && part_of_blob(v[s.end])) return false;
  return looks_random_secret(text_of(v, s));
}

bool github_classic(std::string_view v, Span& s) {
  return token_at(v, s, is_alnum, 40) && github_classic_token_valid(text_of(v, s));
}
bool alnum_token_any(std::string_view v, Span& s) { return token_at(v, s, is_alnum, 256); }
bool alnum_token_fixed(std::string_view v, Span& s) { return token_at(v, s, is_alnum, s.size()); }
bool base64url_token_fixed(std::string_view v, Span& s) { return token_at(v, s, is_base64url, s.size()); }
bool lower_hex_token_fixed(std::string_view v, Span& s) { return token_at(v, s, is_lower_hex, s.size()); }
bool hex_token_fixed(std::string_view v, Span& s) { return token_at(v, s, is_hex, s.size()); }
bool gitlab_token(std::string_view v, Span& s) { return token_at(v, s, is_dotted_token, 256); }
// Bounds are generous for the formats (OpenAI keys ~170 bytes, PyPI macaroons ~220,
// Google access tokens up to 2048) and keep a hostile run of prefixes linear.
bool long_base64url_token(std::string_view v, Span& s) { return token_at(v, s, is_base64url, 512); }
bool long_dotted_token(std::string_view v, Span& s) { return token_at(v, s, is_dotted_token, 2048); }

// Fixed-width tokens the issuer made mixed-case; a run of one case is a word.
bool mixed_case_token_fixed(std::string_view v, Span& s) {
  if (!token_at(v, s, is_alnum, s.size())) return false;
  const CharClasses classes = char_classes(text_of(v, s).substr(3));  // after "hf_"
  return classes.lower > 0 && classes.upper > 0;
}

// "AccountKey=<86 base64>==": the key itself is masked, not the setting's name.
bool azure_account_key(std::string_view v, Span& s) {
  if (s.end < v.size() && (is_base64(v[s.end]) || v[s.end] == '=')) return false;
  s.begin += static_cast<uint32_t>(std::string_view("AccountKey=").size());
  return !is_placeholder(text_of(v, s));
}

bool databricks(std::string_view v, Span& s) {
  // An optional "-<digit>" suffix belongs to the token.
  if (s.end + 1 < v.size() && v[s.end] == '-' && is_digit(v[s.end + 1]) &&
      (s.end + 2 == v.size() || !is_alnum(v[s.end + 2]))) {
    s.end += 2;
    return token_starts_at(v, s.begin) && !is_placeholder(text_of(v, s));
  }
  return token_at(v, s, is_lower_hex, s.size());
}

// "eyJ<header>.<payload>.": the signature after the second '.' may be empty.
bool jwt(std::string_view v, Span& s) {
  if (!token_starts_at(v, s.begin)) return false;
  if (s.begin > 0 && (v[s.begin - 1] == '-' || v[s.begin - 1] == '_' || v[s.begin - 1] == '.')) return false;
  const size_t limit = std::min<size_t>(v.size(), size_t{s.end} + 8192);
  size_t end = s.end;
  while (end < limit && is_base64url(v[end])) ++end;
  if (end < v.size() && is_base64url(v[end])) return false;
  s.end = static_cast<uint32_t>(end);
  return jwt_shape_valid(text_of(v, s));
}

// "-----BEGIN ... PRIVATE KEY-----" followed by a body: optional armor headers
// ("Proc-Type: 4,ENCRYPTED", "Version: ..."), then at least 32 base64 bytes. The span
// runs to the END line when there is one, else to the end of the body (a truncated
// key is still a key). Bodies are base64, so the walk stops at the next "-----": two
// blocks are never walked twice.
bool pem_private_key(std::string_view v, Span& s) {
  size_t pos = skip_breaks(v, s.end);
  for (int header = 0; header < 8 && pos < v.size() && is_alpha(v[pos]); ++header) {
    size_t p = pos;
    while (p < v.size() && p - pos < 64 && (is_alnum(v[p]) || v[p] == '-')) ++p;
    if (p >= v.size() || v[p] != ':') break;
    while (p < v.size() && p - pos < 512 && v[p] != '\n' && v[p] != '\0' &&
           !(v[p] == '\\' && p + 1 < v.size() && v[p + 1] == 'n')) {
      ++p;
    }
    pos = skip_breaks(v, p);
  }
  size_t base64_bytes = 0;
  size_t body_end = pos;
  while (pos < v.size()) {
    if (is_base64(v[pos]) || v[pos] == '=') {
      base64_bytes += v[pos] != '=';
      body_end = ++pos;
    } else {
      const size_t next = skip_breaks(v, pos);
      if (next == pos) break;
      pos = next;
    }
  }
  if (base64_bytes < 32) return false;
  pos = skip_breaks(v, body_end);
  size_t end = body_end;
  if (v.substr(pos).starts_with("-----END ")) {
    const size_t close = v.find("-----", pos + 9);
    if (close != std::string_view::npos && close - pos <= 64) end = close + 5;
  }
  s.end = static_cast<uint32_t>(end);
  return true;
}

// "scheme://user:password@" (match_start == false; the match ends at '@'): the
// password is what is masked. "${DB_PASSWORD}", "****" and "password" are not
// passwords.
bool uri_password(std::string_view v, Span& s) {
  if (s.end == 0 || v[s.end - 1] != '@') return false;
  const size_t at = s.end - 1;
  size_t p = at;
  size_t budget = 512;
  while (p > 0 && budget-- > 0 && !is_space(v[p - 1]) && v[p - 1] != '/' && v[p - 1] != '@' && v[p - 1] != '\0') {
    --p;
  }
  if (p < 2 || v[p - 1] != '/' || v[p - 2] != '/') return false;
  const size_t colon = v.find(':', p);
  if (colon == std::string_view::npos || colon >= at) return false;
  const std::string_view password = v.substr(colon + 1, at - colon - 1);
  if (password.empty() || is_placeholder(password)) return false;
  s = {static_cast<uint32_t>(colon + 1), static_cast<uint32_t>(at)};
  return true;
}

bool password_value(std::string_view v, Span& s) { return assigned_value(v, s, 4); }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool ends_with_ci(std::string_view text, size_t end, std::string_view word) {
  if (end < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (lower(text[end - word.size() + i]) != word[i]) return false;
  }
  return true;
}

bool is_dsn_boundary(char c) { return is_space(c) || c == ';' || c == '"' || c == '\'' || c == '?' || c == '&'; }

// "password=" or "pwd=" (the match ends at '=') inside a connection string: a key of
// libpq (host=, hostaddr=, dbname=, user=) or ADO.NET/JDBC (Server=, Data Source=,
// Database=, User Id=, Uid=) comes earlier in the same value, at most 512 bytes back.
// The regex anchors on the rarer "password"/"pwd" literal; the context is checked here.
bool dsn_password(std::string_view v, Span& s) {
  static constexpr std::string_view kKeys[] = {"host", "hostaddr", "dbname", "user", "server", "data source",
                                               "database", "user id", "uid"};
  size_t p = s.end - 1;  // the '='
  while (p > 0 && is_blank(v[p - 1])) --p;
  size_t keyword = 0;
  if (ends_with_ci(v, p, "password")) {
    keyword = p - 8;
  } else if (ends_with_ci(v, p, "pwd")) {
    keyword = p - 3;
  } else {
    return false;
  }
  if (keyword > 0 && !is_dsn_boundary(v[keyword - 1])) return false;
  const size_t window = keyword > 512 ? keyword - 512 : 0;
  bool context = false;
  for (size_t eq = keyword; !context && eq-- > window;) {
    if (v[eq] != '=') continue;
    size_t q = eq;
    while (q > window && is_blank(v[q - 1])) --q;
    for (std::string_view key : kKeys) {
      if (ends_with_ci(v, q, key) && (q - key.size() == 0 || is_dsn_boundary(v[q - key.size() - 1]))) {
        context = true;
        break;
      }
    }
  }
  return context && assigned_value(v, s, 4);
}
bool secret_value(std::string_view v, Span& s) { return assigned_value(v, s, 8); }
bool credential_value(std::string_view v, Span& s) { return assigned_value(v, s, 12); }

// --- PII -----------------------------------------------------------------------------

// Issuer identification numbers of the card networks that use 13-19 digit numbers:
// Mir and Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard/Maestro, Discover/
// UnionPay/Maestro. Airline (1) and petroleum/other (7-9) ranges are not payment cards.
bool card_issuer_known(std::string_view digits) {
  const int two = (digits[0] - '0') * 10 + (digits[1] - '0');
  const int four = two * 100 + (digits[2] - '0') * 10 + (digits[3] - '0');
  switch (digits[0]) {
    case '2': return (four >= 2200 && four <= 2204) || (four >= 2221 && four <= 2720);
    case '3': return two == 30 || two >= 34;
    case '4':
    case '5':
    case '6': return true;
    default: return false;
  }
}

bool card_number(std::string_view v, Span& s) {
  if (s.begin > 0) {
    const char before = v[s.begin - 1];
    if (!token_starts_at(v, s.begin) || before == '.' || before == '+' || before == '/' || before == ',') return false;
    // Not the middle of a sequence of four-character groups (an IBAN's
    // "DE89 3704 0044 ..."); a date or a word before it is fine ("2024-06-15 4111...").
    if (before == ' ' || before == '-') {
      size_t group = s.begin - 1;
      while (group > 0 && s.begin - 1 - group < 5 && is_alnum(v[group - 1])) --group;
      const std::string_view previous = v.substr(group, s.begin - 1 - group);
      if (previous.size() == 4 && std::any_of(previous.begin(), previous.end(), is_digit)) return false;
    }
  }
  if (s.end < v.size()) {
    const char after = v[s.end];
    if (is_alnum(after)) return false;
    if ((after == '.' || after == ',') && s.end + 1 < v.size() && is_digit(v[s.end + 1])) return false;
  }
  const std::string_view text = text_of(v, s);
  char buffer[19];
  size_t n = 0;
  char separator = 0;
  for (char c : text) {
    if (is_digit(c)) {
      if (n == sizeof buffer) return false;
      buffer[n++] = c;
    } else if (separator == 0) {
      separator = c;
    } else if (c != separator) {
      return false;  // "4111 1111-1111 1111": not one number
    }
  }
  const std::string_view digits(buffer, n);
  if (n < 13 || !card_issuer_known(digits)) return false;
  if (std::all_of(digits.begin(), digits.end(), [&](char c) { return c == digits[0]; })) return false;
  return luhn_valid(text);
}

bool ssn_dashed(std::string_view v, Span& s) {
  if (s.begin > 0) {
    const char before = v[s.begin - 1];
    if (!token_starts_at(v, s.begin) || before == '-' || before == '.' || before == '/') return false;
  }
  if (s.end < v.size()) {
    const char after = v[s.end];
    if (is_alnum(after)) return false;
    if ((after == '-' || after == '.' || after == '/') && s.end + 1 < v.size() && is_digit(v[s.end + 1])) return false;
  }
  return us_ssn_valid(text_of(v, s));
}

// Nine digits and nothing else in the value: without dashes, only a value that is
// exactly an SSN is taken for one (a 9-digit run in text is an order number, a ZIP+4,
// a phone fragment).
bool ssn_whole_value(std::string_view v, Span& s) {
  if (v.size() != 9 || s.begin != 0 || s.end != 9) return false;
  return us_ssn_valid(v);
}

// The regex finds "CCdd" plus the first characters; the country's registered length
// decides where the IBAN ends, in plain or space-grouped form.
bool iban(std::string_view v, Span& s) {
  if (!token_starts_at(v, s.begin)) return false;
  const size_t length = iban_length(v.substr(s.begin, 2));
  if (length == 0) return false;
  size_t pos = s.begin;
  size_t count = 0;
  while (pos < v.size() && count < length) {
    if (is_alnum(v[pos])) {
      ++count;
      ++pos;
    } else if (v[pos] == ' ' && count > 0 && pos + 1 < v.size() && is_alnum(v[pos + 1]) && v[pos - 1] != ' ') {
      ++pos;
    } else {
      break;
    }
  }
  if (count != length) return false;
  if (pos < v.size() && is_alnum(v[pos])) return false;
  s.end = static_cast<uint32_t>(pos);
  return iban_valid(text_of(v, s));
}

bool is_email_local(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\'';
}

// The regex ends two letters into the first label after the domain's first dot
// (match_start == false: Hyperscan need not track the start). The local part is found
// by walking back from '@', the domain by walking forward.
bool email(std::string_view v, Span& s) {
  size_t at = s.end;
  while (at > 0 && s.end - at < 72 && v[at - 1] != '@') --at;
  if (at == 0 || v[at - 1] != '@') return false;
  --at;
  size_t begin = at;
  while (begin > 0 && at - begin <= 64 && is_email_local(v[begin - 1])) --begin;
  if (at - begin > 64 || begin == at) return false;  // an RFC 5321 local part is at most 64 bytes
  while (begin < at && (v[begin] == '.' || v[begin] == '-' || v[begin] == '+' || v[begin] == '\'')) ++begin;
  size_t end = s.end;
  while (end < v.size() && end - at < 256 && (is_alnum(v[end]) || v[end] == '-' || v[end] == '.')) ++end;
  while (end > s.end && (v[end - 1] == '.' || v[end - 1] == '-')) --end;
  Span candidate{static_cast<uint32_t>(begin), static_cast<uint32_t>(end)};
  if (!email_plausible(v, candidate)) return false;
  s = candidate;
  return true;
}

// Phone numbers in the forms people write: "(201) 555-0123", "201-555-0123",
// "+1 201 555 0123", "+447912345678", "+49 30 1234567". E.164 allows at most 15
// digits; fewer than 8 is a short code or an extension.
bool phone_number(std::string_view v, Span& s) {
  if (s.begin > 0) {
    const char before = v[s.begin - 1];
    if (!token_starts_at(v, s.begin) || before == '+' || before == '-' || before == '.' || before == '/' ||
        before == '_') {
      return false;
    }
  }
  if (s.end < v.size()) {
    const char after = v[s.end];
    if (is_alnum(after) || after == '_') return false;
    if ((after == '-' || after == '.' || after == '/') && s.end + 1 < v.size() && is_digit(v[s.end + 1])) {
      return false;
    }
  }
  const std::string_view text = text_of(v, s);
  size_t digits = 0;
  int open = 0;
  char previous = 0;
  for (char c : text) {
    if (is_digit(c)) {
      ++digits;
    } else if (c == '(') {
      if (++open > 1) return false;
    } else if (c == ')') {
      if (--open < 0) return false;
    } else if (c != '+' && (previous == ' ' || previous == '-' || previous == '.')) {
      return false;  // two separators in a row: "1 - 2"
    }
    previous = c;
  }
  return open == 0 && digits >= 10 - (text.front() == '+' ? 2 : 0) && digits <= 15;
}

bool ipv4(std::string_view v, Span& s) { return ipv4_plausible(v, s); }

bool ipv6_char(char c) { return is_hex(c) || c == ':' || c == '.'; }

// The regex finds "::" or three colon-separated groups; the address is the run of hex
// digits, colons and dots around it. Only the match nearest the run's start is taken
// (later ones in the same run would find the same address), which keeps a hostile
// "1:1:1:1:..." linear.
bool ipv6(std::string_view v, Span& s) {
  size_t begin = s.end;
  while (begin > 0 && s.end - begin < 16 && ipv6_char(v[begin - 1])) --begin;
  if (begin > 0 && (is_alnum(v[begin - 1]) || v[begin - 1] == '_' || ipv6_char(v[begin - 1]))) return false;
  size_t end = s.end;
  while (end < v.size() && end - begin < 46 && ipv6_char(v[end])) ++end;
  while (end > begin && v[end - 1] == '.') --end;
  if (end - begin > 45 || end - begin < 3) return false;
  if (end < v.size() && is_alnum(v[end])) return false;
  std::string address(v.substr(begin, end - begin));
  if (address.back() == ':' && address[address.size() - 2] != ':') address.pop_back();
  in6_addr parsed;
  if (inet_pton(AF_INET6, address.c_str(), &parsed) != 1) return false;
  static constexpr uint8_t kUnspecified[16] = {};
  static constexpr uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (std::equal(parsed.s6_addr, parsed.s6_addr + 16, kUnspecified) ||
      std::equal(parsed.s6_addr, parsed.s6_addr + 16, kLoopback)) {
    return false;
  }
  // "Abc::def" is a C++ qualified name more often than an address: require a digit.
  if (std::none_of(address.begin(), address.end(), is_digit)) return false;
  s = {static_cast<uint32_t>(begin), static_cast<uint32_t>(begin + address.size())};
  return true;
}

// --- validators an operator can name ------------------------------------------------
// These confirm a match without moving its span: an operator's regex says exactly what
// to mask.

bool user_luhn(std::string_view v, Span& s) { return luhn_valid(text_of(v, s)); }
bool user_us_ssn(std::string_view v, Span& s) { return us_ssn_valid(text_of(v, s)); }
bool user_iban(std::string_view v, Span& s) { return iban_valid(text_of(v, s)); }
bool user_entropy(std::string_view v, Span& s) { return looks_random_secret(text_of(v, s)); }
bool user_not_placeholder(std::string_view v, Span& s) { return !is_placeholder(text_of(v, s)); }
bool user_token(std::string_view v, Span& s) {
  return token_starts_at(v, s.begin) && (s.end == v.size() || !is_alnum(v[s.end])) &&
         !is_placeholder(text_of(v, s));
}
bool user_jwt(std::string_view v, Span& s) { return jwt_shape_valid(text_of(v, s)); }
bool user_email(std::string_view v, Span& s) { return email_plausible(v, s); }

struct NamedValidator {
  std::string_view name;
  Validator validator;
};
constexpr NamedValidator kNamedValidators[] = {
    {"none", nullptr},
    {"luhn", user_luhn},
    {"us_ssn", user_us_ssn},
    {"iban", user_iban},
    {"entropy", user_entropy},
    {"not_placeholder", user_not_placeholder},
    {"token", user_token},
    {"jwt", user_jwt},
    {"email", user_email},
    {"ipv4", ipv4},
};

StrategySpec redact() { return {Strategy::redact, 0}; }
StrategySpec partial(uint8_t keep_last) { return {Strategy::partial, keep_last}; }

PatternSpec secret(std::string kind, std::string description, std::string example, std::string regex,
                   Validator validator, std::string validator_name, bool match_start = true) {
  PatternSpec p;
  p.kind = std::move(kind);
  p.description = std::move(description);
  p.example = std::move(example);
  p.regex = std::move(regex);
  p.tier = Tier::secret;
  p.validator = validator;
  p.validator_name = std::move(validator_name);
  p.strategy = redact();
  p.match_start = match_start;
  return p;
}

PatternSpec pii(std::string kind, std::string description, std::string example, std::string regex,
                Validator validator, std::string validator_name, StrategySpec strategy, bool match_start = true) {
  PatternSpec p = secret(std::move(kind), std::move(description), std::move(example), std::move(regex), validator,
                         std::move(validator_name), match_start);
  p.tier = Tier::pii;
  p.strategy = strategy;
  return p;
}

// Examples are synthetic: random bodies in the right alphabet, with correct checksums
// where the format has one. None was ever issued.
std::vector<PatternSpec> make_builtin_patterns() {
  const char* kToken = "prefix, length, alphabet; not a placeholder";
  std::vector<PatternSpec> p;

  // AWS. Key ids: AKIA (long-term), ASIA (STS temporary), ABIA (STS bearer), ACCA
  // (context-specific), then 16 base32 characters.
  p.push_back(secret("aws_access_key_id", "AWS access key id (AKIA/ASIA/ABIA/ACCA + 16 base32)", "AKIAVQJXXVBOTHD2WTFL",
                     "(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}", aws_access_key_id,
                     "word boundaries; AWS documentation examples (...EXAMPLE) rejected"));
  p.push_back(secret("aws_secret_access_key", "AWS secret access key after its setting name (aws_secret_access_key = ...)",
                     "aws_secret_access_key = pdzPaEMM1ZA7V0FhHVJWDBt2hWdQZUm14QhoxhLP",
                     "(?i)(?:aws[_.-]?secret[_.-]?(?:access[_.-]?)?key|secret[_.-]?access[_.-]?key)[\"']?\\s{0,4}(?:[:=]|=>)"
                     "\\s{0,4}[\"']?[A-Za-z0-9/+]{40}",
                     aws_secret_in_context, "exactly 40 base64 bytes; not a placeholder", false));

  // GitHub. Classic tokens carry a CRC32 of their body; fine-grained ones have no public
  // checksum.
  const char* kGithubCrc = "CRC32 checksum (last 6 base62 characters)";
  p.push_back(secret("github_token", "GitHub personal access token, classic (ghp_)", "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",
                     "ghp_[A-Za-z0-9]{36}", github_classic, kGithubCrc));
  p.push_back(secret("github_oauth_token", "GitHub OAuth access token (gho_)", "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",
                     "gho_[A-Za-z0-9]{36}", github_classic, kGithubCrc));
  p.push_back(secret("github_user_token", "GitHub App user-to-server token (ghu_)",
                     "ghu_vdiQBBId3luqZvzz3jSpmpoLhip4ON1qc1lx", "ghu_[A-Za-z0-9]{36}", github_classic, kGithubCrc));
  p.push_back(secret("github_app_token", "GitHub App installation (server-to-server) token (ghs_)",
                     "ghs_uQ6yiI0NjCADK9wuQnwlcs4McKRowH0ZIazt", "ghs_[A-Za-z0-9]{36}", github_classic, kGithubCrc));
  p.push_back(secret("github_refresh_token", "GitHub App refresh token (ghr_)", "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",
                     "ghr_[A-Za-z0-9]{36}", github_classic, kGithubCrc));
  p.push_back(secret("github_fine_grained_token", "GitHub fine-grained personal access token (github_pat_)",
                     "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",
                     "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}", alnum_token_fixed, kToken));

  // GitLab: glpat- personal/project/group tokens, glptt- pipeline triggers, glrt-
  // runners, gldt- deploy tokens, glft- feed tokens, gloas- OAuth application secrets.
  p.push_back(secret("gitlab_pat", "GitLab personal, project or group access token (glpat-)", "glpat-tKnP_VSGVBrYSuIb9OZi",
                     "glpat-[A-Za-z0-9_-]{20}", gitlab_token, kToken));
  p.push_back(secret("gitlab_pipeline_trigger_token", "GitLab pipeline trigger token (glptt-)",
                     "glptt-7cd8995efeba9032050d09c5892503e12b47fa42", "glptt-[A-Za-z0-9_-]{20}", gitlab_token, kToken));
  p.push_back(secret("gitlab_runner_token", "GitLab runner authentication token (glrt-)", "glrt-_LnZ5R-j_8U_m7aSz7NR",
                     "glrt-[A-Za-z0-9_-]{20}", gitlab_token, kToken));
  p.push_back(secret("gitlab_deploy_token", "GitLab deploy token (gldt-)", "gldt-SOtv75y4SXvE9rwLbAtf",
                     "gldt-[A-Za-z0-9_-]{20}", gitlab_token, kToken));
  p.push_back(secret("gitlab_feed_token", "GitLab feed token (glft-)", "glft-6e9cpCGybY9lMR4pAwBp",
                     "glft-[A-Za-z0-9_-]{20}", gitlab_token, kToken));
  p.push_back(secret("gitlab_oauth_secret", "GitLab OAuth application secret (gloas-)",
                     "gloas-d8b6da25a43a846eb31e7ea468c6414ce9da201e0c0d1a0dc00f0e71a714a16e", "gloas-[A-Za-z0-9_-]{40}",
                     gitlab_token, kToken));

  // Slack: xoxb- bot, xoxp- user, xoxa-/xoxr- workspace access and refresh (legacy),
  // xoxe- configuration and rotating refresh tokens, xapp- app-level tokens; numeric
  // team/user ids come first, the random part last.
  p.push_back(secret("slack_bot_token", "Slack bot token (xoxb-)", "xoxb-814330992618-922217975610-4cKuuBNf0gmUBUhWRQdIAUDF",
                     "xoxb-[0-9]{6,15}-[0-9]{6,15}-[A-Za-z0-9]{20}", alnum_token_any, kToken));
  p.push_back(secret("slack_user_token", "Slack user token (xoxp-)",
                     "xoxp-405261242216-475139624142-349613456214-93134b65ab3adf32b1cc8fa650bdf659",
                     "xoxp-[0-9]{6,15}-[0-9]{6,15}-[0-9]{6,15}-[A-Za-z0-9]{24}", alnum_token_any, kToken));
  p.push_back(secret("slack_legacy_token", "Slack workspace access or refresh token (xoxa-, xoxr-)",
                     "xoxa-2-474382924397-613497877886-1b61b4b171b2f3a9f889eeaf77ee09a4",
                     "xox[ar]-[0-9]{1,2}-[0-9]{6,15}-[0-9]{6,15}-[A-Za-z0-9]{24}", alnum_token_any, kToken));
  p.push_back(secret("slack_config_token", "Slack configuration or rotating refresh token (xoxe-, xoxe.xoxp-)",
                     "xoxe.xoxp-1-1jsmCaDAoZuSEyDvvWq03mSM9B8zhIPT2QFhQOjWmjriYGsu72rikBd0YG5KE7X5ozhONva1lZp814HtFbtfeeHv0"
                     "fG2xPVD8AfOTovYGkYSrIiBSed1S3wlj46Fuq3sXRo5QhgYrZJd",
                     "xoxe(?:\\.xox[bp])?-[0-9]-[A-Za-z0-9]{40}", alnum_token_any, kToken));
  p.push_back(secret("slack_app_token", "Slack app-level token (xapp-)",
                     "xapp-1-A5IDEUAUI5T-6967784098990-423350b233931da53f50a0be52d057e0bd04ab3005440698c83998e1705bb7a7",
                     "xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{9,15}-[a-f0-9]{32}", alnum_token_any, kToken));
  p.push_back(secret("slack_webhook_url", "Slack incoming webhook or workflow trigger URL (hooks.slack.com)",
                     "https://hooks.slack.com/services/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",
                     "https://hooks\\.slack\\.com/(?:services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}|"
                     "(?:workflows|triggers)/T[A-Z0-9]{6,12}/A[A-Z0-9]{6,12}/[0-9]{6,20})/[A-Za-z0-9]{20}",
                     alnum_token_any, "URL shape; secret part not a placeholder"));

  // Stripe: secret and restricted keys (live and test mode: both are credentials) and
  // webhook signing secrets. Publishable keys (pk_) are public by design.
  p.push_back(secret("stripe_secret_key", "Stripe secret key, live or test (sk_live_, sk_test_)",
                     "sk_live_E1zKLiSpYMZElLTCPPAwVv82", "sk_(?:live|test)_[A-Za-z0-9]{20}", alnum_token_any, kToken));
  p.push_back(secret("stripe_restricted_key", "Stripe restricted key (rk_live_, rk_test_)",
                     "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",
                     "rk_(?:live|test)_[A-Za-z0-9]{20}", alnum_token_any, kToken));
  p.push_back(secret("stripe_webhook_secret", "Stripe webhook signing secret (whsec_)", "whsec_gUsWlY8A1myEVIR6LFYhOTduCDuaOHZg",
                     "whsec_[A-Za-z0-9]{32}", alnum_token_any, kToken));

  // OpenAI: project, service-account and admin keys carry "T3BlbkFJ" (base64 of
  // "OpenAI") in their body; legacy user keys are sk- + 20 + T3BlbkFJ + 20.
  p.push_back(secret("openai_project_key", "OpenAI project API key (sk-proj-)",
                     "sk-proj-T1TOkzfR1wKbPXTXx8TTx4XUMGmTtfc6y-xI25MTL3xzfMg5lJYj-loHI3Yhc1OxT_8QY4_3BMT3BlbkFJDogiSTRIiP9LJm7R0"
                     "4ZhbGSdGWoZ6axl7KBGgMVGOYn7B3-5SApYXfE_1ds3vbgqMMvFuz4zf3",
                     "sk-proj-[A-Za-z0-9_-]{40}", long_base64url_token, kToken));
  p.push_back(secret("openai_service_account_key", "OpenAI service account key (sk-svcacct-)",
                     "sk-svcacct-ATNeY2Pseh093Fj9fOptqCWCsuZrJZaVLaPeAU5moHH5F_grANC_aBcnwDDOOAZvw6d3eK3pxFT3BlbkFJkhJA5uFyeUh"
                     "wksU8dSaNrFWv5SRclfFhhqCmzhp59yZk4d6_GlThw-ZqyC85Nn7Jf30xIOdZh-",
                     "sk-svcacct-[A-Za-z0-9_-]{40}", long_base64url_token, kToken));
  p.push_back(secret("openai_admin_key", "OpenAI admin key (sk-admin-)",
                     "sk-admin-NRwhUTv3L-Smo927U2aT1yVPMm5nYtffRcvy0Dxo5pCJFz2B30M8KVM-w8MDaD3vSS1Mmn7qOiT3BlbkFJqh1yudML66Ybgq"
                     "aD7XBPgUbqr2RbwXOq43IedbtWe27WH77hBlyqz_9PNldsWhXK64VtGHZA2P",
                     "sk-admin-[A-Za-z0-9_-]{40}", long_base64url_token, kToken));
  p.push_back(secret("openai_api_key", "OpenAI user API key, legacy format (sk- ... T3BlbkFJ ...)",
                     "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", "sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
                     alnum_token_fixed, kToken));

  // Anthropic: sk-ant-api03- and sk-ant-admin01-, 93 base64url characters, then "AA".
  p.push_back(secret("anthropic_api_key", "Anthropic API key (sk-ant-api03-)",
                     "sk-ant-api03-8_luteLKWMFmkkBTDijysfSa5Jhl7LiECB7lavfWXTKTiVQ47qsxG72VnY6wGD4tylc_Y3oLOr0GlsP5S-KXv5Zzjhe3"
                     "pAA",
                     "sk-ant-api03-[A-Za-z0-9_-]{93}AA", base64url_token_fixed, kToken));
  p.push_back(secret("anthropic_admin_key", "Anthropic admin key (sk-ant-admin01-)",
                     "sk-ant-admin01-1g1aKfux6fX1L3dd4u2dDGqt1NvVeIWmQmcVFzbjcoP95wL0rKA53zmg7srxirfu19Ac_kKd2Lq1D595WXjjOt6v3rz"
                     "KEAA",
                     "sk-ant-admin01-[A-Za-z0-9_-]{93}AA", base64url_token_fixed, kToken));

  // Google: API keys (AIza + 35), OAuth access tokens (ya29.), OAuth client secrets
  // (GOCSPX-).
  p.push_back(secret("google_api_key", "Google API key (AIza + 35)", "AIza4RNo88yLVvlwEpgnR74KLO10yZ2ChVIHNaQ",
                     "AIza[A-Za-z0-9_-]{35}", base64url_token_fixed, kToken));
  p.push_back(secret("google_oauth_access_token", "Google OAuth 2.0 access token (ya29.)",
                     "ya29.zlMKYdILjCZO4uEHrIxdNb9UixrXkOKKjOwTTozqvCnAKjsmvnwK24pD8eg5NwFD2D0wQS82YTyr-n_dryG4cBIRlNmbh-_3UHdgB"
                     "DJppkFFEZciCQP00U87",
                     "ya29\\.[A-Za-z0-9_-]{30}", long_dotted_token, kToken));
  p.push_back(secret("google_oauth_client_secret", "Google OAuth client secret (GOCSPX-)", "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",
                     "GOCSPX-[A-Za-z0-9_-]{28}", base64url_token_fixed, kToken));

  // JSON Web Tokens: base64url of '{"' is "eyJ", so header and (JSON) payload start so.
  p.push_back(secret("jwt", "JSON Web Token (three base64url parts; header is JSON with \"alg\")",
                     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IlRlc3QgVXNlciIsImlhdCI6MTcwMDAw"
                     "MDAwMH0.u-vPcH282G_EpBrJbZwp7K03hEcg5FsGs1aSUY8suAY",
                     "eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{4,}\\.", jwt,
                     "header decodes to a JSON object with \"alg\"; signature may be empty"));

  p.push_back(secret("pem_private_key", "PEM or OpenSSH/PGP private key block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP, PKCS#8)",
                     "-----BEGIN RSA PRIVATE KEY-----\nEzOwecl6EatLk2CS0AkA9hIzX3QuKPvcV4Ji8EuawzUk1r8KhbkYiK8OXpyxjyyN\nF7AqAX4"
                     "CMDn7WTwl9qujoJlhp7qN8zWlQLZdteukaQ1xd9QVmNjBOC76Dq1BcCKK\n3Fn3422n5TRzCdqnd+qnJf80KdpTPkcR\n-----END RS"
                     "A PRIVATE KEY-----",
                     "-----BEGIN (?:(?:RSA|EC|DSA|OPENSSH|ENCRYPTED|PGP|ANY) )?PRIVATE KEY(?: BLOCK)?-----", pem_private_key,
                     "a body of 32+ base64 bytes follows the header; masked through the END line"));

  // Connection URIs with a password: the password is what is masked.
  const char* kUri = "userinfo has a password that is not a placeholder (${VAR}, ****)";
  p.push_back(secret("postgres_uri_password", "PostgreSQL connection URI with a password",
                     "postgresql://app:N7v!q2-Xw_9rLm4z@db.internal:5432/appdb",
                     "(?i)postgres(?:ql)?://[^\\s:@/\\x00]{0,128}:[^\\s@/\\x00]{1,256}@", uri_password, kUri, false));
  p.push_back(secret("mysql_uri_password", "MySQL or MariaDB connection URI with a password (also mysql+driver://)",
                     "mysql://root:Qm3vT8xWb2LpRz@10.0.3.17:3306/shop",
                     "(?i)(?:mysql|mariadb)(?:\\+[a-z0-9]{1,20})?://[^\\s:@/\\x00]{0,128}:[^\\s@/\\x00]{1,256}@", uri_password,
                     kUri, false));
  p.push_back(secret("mongodb_uri_password", "MongoDB connection URI with a password (mongodb://, mongodb+srv://)",
                     "mongodb+srv://app:Zk4pW9sQe2RtYb7N@cluster0.a1b2c.mongodb.net/",
                     "(?i)mongodb(?:\\+srv)?://[^\\s:@/\\x00]{0,128}:[^\\s@/\\x00]{1,256}@", uri_password, kUri, false));
  p.push_back(secret("redis_uri_password", "Redis connection URI with a password (redis://, rediss://)",
                     "redis://:Hq8sLw2ZmR4tVb9XkP3n@cache.internal:6379/0",
                     "(?i)rediss?://[^\\s:@/\\x00]{0,128}:[^\\s@/\\x00]{1,256}@", uri_password, kUri, false));
  p.push_back(secret("amqp_uri_password", "AMQP (RabbitMQ) connection URI with a password (amqp://, amqps://)",
                     "amqps://worker:Tf6yQp2LmZ8wXr4s@mq.internal:5671/vhost",
                     "(?i)amqps?://[^\\s:@/\\x00]{0,128}:[^\\s@/\\x00]{1,256}@", uri_password, kUri, false));
  p.push_back(secret("uri_password", "Any other URI with a password in its userinfo (scheme://user:password@host)",
                     "https://deploy:Vb7nQ2xLp9Zs4Rt@git.internal/repo.git",
                     "[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\\s:@/\\x00]{0,128}:[^\\s@/\\x00]{1,256}@", uri_password, kUri, false));

  // libpq key=value and ADO.NET/JDBC style connection strings.
  p.push_back(secret("db_connection_string_password",
                     "Database connection string with a password (libpq key=value, ADO.NET/JDBC Password=/Pwd=)",
                     "host=db.internal port=5432 dbname=appdb user=app password=Xr7kP2qLm9Zt",
                     "(?i)(?:password|pwd)[ \\t]{0,3}=", dsn_password,
                     "a connection-string key (host=, Server=, ...) comes before; the password is not a placeholder",
                     false));

  // Generic assignments: a keyword, '=' or ':', a value that looks like a credential.
  p.push_back(secret("password_assignment", "A password assigned in text, config or code (password=, \"passwd\": ...)",
                     "DB_PASSWORD=Tr0ub4dor!3x", "(?i)(?:password|passwd|passphrase)[\"']?\\s{0,3}(?::=|=>|[:=])",
                     password_value, "value: 4+ bytes, not a placeholder, date, number or code reference", false));
  p.push_back(secret("secret_assignment", "A secret, API key or token assigned in text (api_key=, \"client_secret\": ...)",
                     "api_key: 9fQ2xLr7ZpK4mW8t",
                     "(?i)(?:secret|secret[_-]?key|api[_-]?key|apikey|api[_-]?secret|access[_-]?key|access[_-]?token|"
                     "auth[_-]?token|token|private[_-]?key|credentials?)[\"']?\\s{0,3}(?::=|=>|[:=])",
                     secret_value, "value: 8+ bytes, not a placeholder, date, number or code reference", false));
  p.push_back(secret("authorization_header", "HTTP Authorization credentials (Authorization: Bearer/Basic ..., Bearer ...)",
                     "Authorization: Basic dXNlcjpzM2NyZXQtcGFzcw==",
                     "(?i)(?:authorization[\"']?\\s{0,3}[:=]\\s{0,3}[\"']?(?:bearer|basic|token|digest)?|bearer)\\s{1,3}",
                     credential_value, "value: 12+ bytes, not a placeholder", false));

  // Package registries and other services; each prefix is the issuer's own.
  p.push_back(secret("npm_token", "npm access token (npm_)", "npm_PtDxzhelOIxBssMid76gJcqNo6GHm3aZ9jSN",
                     "npm_[A-Za-z0-9]{36}", alnum_token_fixed, kToken));
  p.push_back(secret("pypi_token", "PyPI API token (pypi-AgEIcHlwaS5vcmc..., a macaroon for pypi.org)",
                     "pypi-AgEIcHlwaS5vcmc5G7-eSeiOJcT_HHqodEvUF0f-UzpWcP1mLMwT3zWLA825gFKEOU0Ekm5h-Kt9sbg9bAjtb",
                     "pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50}", long_base64url_token, kToken));
  p.push_back(secret("twilio_api_key", "Twilio API key SID (SK + 32 hex)", "SK7bd8ecef4e670d262b1e23cc47c3ee38",
                     "SK[0-9a-f]{32}", lower_hex_token_fixed, kToken));
  p.push_back(secret("sendgrid_api_key", "SendGrid API key (SG.<22>.<43>)",
                     "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",
                     "SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}", base64url_token_fixed, kToken));
  p.push_back(secret("vault_token", "HashiCorp Vault token (hvs. service, hvb. batch, hvr. recovery)",
                     "hvs.no5VB180ACFa0qn6dQj_QKhCHD4__UjgjfXudzTQXGqi-x8PikL2t_yiRbiMdYN2fFq6oCoS1UFyVlYONgEUsYx1ih",
                     "hv[sbr]\\.[A-Za-z0-9_-]{24}", long_base64url_token, kToken));
  p.push_back(secret("digitalocean_token", "DigitalOcean personal, OAuth or refresh token (dop_v1_, doo_v1_, dor_v1_)",
                     "dop_v1_718cde22967e79f252019e78d0e2292d76334d306f5ef11798d409eb75962fd3", "do[opr]_v1_[a-f0-9]{64}",
                     lower_hex_token_fixed, kToken));
  p.push_back(secret("shopify_token", "Shopify access token (shpat_, shpca_, shppa_, shpss_)",
                     "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", "shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}", hex_token_fixed, kToken));
  p.push_back(secret("dockerhub_token", "Docker Hub personal or organization access token (dckr_pat_, dckr_oat_)",
                     "dckr_pat_XwMt1fDRDJnRdzQQWk8Hd_KFbfU", "dckr_(?:pat|oat)_[A-Za-z0-9_-]{27}", long_base64url_token,
                     kToken));
  p.push_back(secret("huggingface_token", "Hugging Face access token (hf_ + 34 letters)", "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",
                     "hf_[A-Za-z0-9]{34}", mixed_case_token_fixed, "length; mixed case; not a placeholder"));
  p.push_back(secret("azure_storage_key", "Azure storage account key in a connection string (AccountKey=)",
                     "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=wvoSFxhfrEw0bVCTvmiaXcaAK9G0Wuiw6rWIj0LEiRlwYjq"
                     "zertEmtWSgz3FSDw0wO0sOZgjON+ytr2FhhKtnE==;EndpointSuffix=core.windows.net",
                     "AccountKey=[A-Za-z0-9+/]{86}==", azure_account_key, "86 base64 bytes and '=='; not a placeholder"));
  p.push_back(secret("age_secret_key", "age encryption secret key (AGE-SECRET-KEY-1, bech32)",
                     "AGE-SECRET-KEY-1JFUS9GNHR7SJZ4FTM9RSH4LCHK55FJR8YN3YWDNZPP49G4DTZFEKH0N9S5",
                     "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", alnum_token_fixed, kToken));
  p.push_back(secret("linear_api_key", "Linear API key (lin_api_)", "lin_api_zi0MBXUqwXR366l4blF6VIFhH4vOHL3lWIze9iXc",
                     "lin_api_[A-Za-z0-9]{40}", alnum_token_fixed, kToken));
  p.push_back(secret("postman_api_key", "Postman API key (PMAK-)", "PMAK-f7e19d98e652463b9af6db66-f211fed21c5e19e1afc0f106d090678f8d",
                     "PMAK-[a-f0-9]{24}-[a-f0-9]{34}", lower_hex_token_fixed, kToken));
  p.push_back(secret("databricks_token", "Databricks personal access token (dapi + 32 hex)",
                     "dapie8642499f717c63ed5b47fd113e37fee", "dapi[a-f0-9]{32}", databricks, kToken));
  p.push_back(secret("newrelic_user_key", "New Relic user API key (NRAK-)", "NRAK-SPNLG2B0DLJ6FOT6122D0KTVR0J",
                     "NRAK-[A-Z0-9]{27}", alnum_token_fixed, kToken));
  p.push_back(secret("grafana_service_account_token", "Grafana service account token (glsa_)",
                     "glsa_2ahM4e8yxXs4ZBVkakQtoXnco1tc6x3O_353b191f", "glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}", hex_token_fixed,
                     kToken));
  p.push_back(secret("doppler_token", "Doppler personal token (dp.pt.)", "dp.pt.VASaxQvPRCkMDn6oxURwGV191t8BOXfH4Xpks48f7hl",
                     "dp\\.pt\\.[A-Za-z0-9]{43}", alnum_token_fixed, kToken));
  p.push_back(secret("square_access_token", "Square access token (sq0atp-)", "sq0atp-LpFPPwmSVMmEExYuemQxHL",
                     "sq0atp-[A-Za-z0-9_-]{22}", base64url_token_fixed, kToken));
  p.push_back(secret("square_oauth_secret", "Square OAuth application secret (sq0csp-)",
                     "sq0csp-dXxr6X4wH7QoY-lM4egoBy4oz6-njrxSQN5ONc8_4Dp", "sq0csp-[A-Za-z0-9_-]{43}", base64url_token_fixed,
                     kToken));

  // --- tier 2: PII and bare secrets, free-text columns only ---
  p.push_back(pii("aws_secret_access_key_bare",
                  "40 random-looking base64 bytes on their own (an AWS secret key without its setting name)",
                  "dZDr3MMT9362mwmfaC2sNl8ZZh4Ul41Evtj5n9Cg", "[A-Za-z0-9/+]{40}",
                  bare_base64_40,
                  "entropy >= 4.2 bits/byte, mixed case and a digit or symbol; not hex (SHA-1), not a placeholder",
                  redact()));
  p.push_back(pii("card_number", "Payment card number, 13-19 digits, plain or grouped with spaces or dashes",
                  "4539 1488 0343 6467",
                  "[2-6][0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{1,7}|3[0-9]{3}[ -][0-9]{6}[ -][0-9]{4,5}",
                  card_number, "Luhn; known issuer range; one separator style", partial(4)));
  p.push_back(pii("us_ssn", "US Social Security number, dashed (AAA-GG-SSSS)", "536-90-4399", "[0-9]{3}-[0-9]{2}-[0-9]{4}",
                  ssn_dashed, "issuing ranges; known example numbers rejected", redact()));
  p.push_back(pii("us_ssn_bare", "US Social Security number without dashes, when the whole value is the nine digits",
                  "536904399", "\\x00[0-9]{9}\\x00", ssn_whole_value, "whole value; issuing ranges", redact()));
  p.push_back(pii("iban", "International Bank Account Number, plain or in groups of four", "DE89 3704 0044 0532 0130 00",
                  "[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11}| [A-Z0-9]{4} [A-Z0-9]{4} [A-Z0-9])", iban,
                  "country length; mod-97 check digits", partial(4)));
  p.push_back(pii("email", "E-mail address", "alice.smith@example.com",
                  "[A-Za-z0-9._%+'-]@[A-Za-z0-9-]{1,63}\\.[A-Za-z]{2}", email,
                  "domain has a dot and an alphabetic TLD that is not a file extension; not a git remote or URL userinfo",
                  redact(), false));
  p.push_back(pii("phone_number", "Telephone number: US formats and international E.164 (+CC ...)", "+1 415 555 0132",
                  "\\([2-9][0-9]{2}\\) ?[2-9][0-9]{2}[ .-][0-9]{4}|[2-9][0-9]{2}[.-][2-9][0-9]{2}[.-][0-9]{4}|"
                  "\\+[1-9][0-9 ().-]{6,20}[0-9]",
                  phone_number, "8-15 digits (10 without +); separators well formed; not inside a longer number",
                  partial(2)));
  p.push_back(pii("ipv4_address", "IPv4 address, private or public (not loopback, not a URL's host)", "10.20.30.40",
                  "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}", ipv4,
                  "octets 0-255; not 0.x, 127.x or part of a version number; not a URL's host", redact()));
  p.push_back(pii("ipv6_address", "IPv6 address (not :: or ::1)", "2001:db8:85a3::8a2e:370:7334",
                  "[0-9A-Fa-f]{1,4}::|::[0-9A-Fa-f]{1,4}|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:", ipv6, "parses as IPv6 (inet_pton); has a digit",
                  redact(), false));
  return p;
}

}  // namespace

const std::vector<PatternSpec>& builtin_patterns() {
  static const std::vector<PatternSpec> patterns = make_builtin_patterns();
  return patterns;
}

Validator find_validator(std::string_view name, bool* found) {
  for (const NamedValidator& v : kNamedValidators) {
    if (v.name == name) {
      if (found != nullptr) *found = true;
      return v.validator;
    }
  }
  if (found != nullptr) *found = false;
  return nullptr;
}

std::string validator_names() {
  std::string names;
  for (const NamedValidator& v : kNamedValidators) {
    if (!names.empty()) names += ", ";
    names += v.name;
  }
  return names;
}

}  // namespace sluice::mask
