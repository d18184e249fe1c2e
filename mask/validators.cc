// Validators: checksums, issuing ranges, randomness and placeholder checks that turn
// a pattern's raw match into a finding (or drop it). See validators.h.
#include "mask/validators.h"

#include <array>
#include <cmath>
#include <string>

#include "core/json.h"

namespace sluice::mask {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_alpha(char c) { return is_upper(c) || is_lower(c); }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_base64url(char c) { return is_alnum(c) || c == '-' || c == '_'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
char to_lower(char c) { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
char to_upper(char c) { return is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c; }

bool equals_ci(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// Case-insensitive search of an ASCII needle.
bool contains_ci(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (equals_ci(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

constexpr std::array<uint32_t, 256> make_crc32_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32Table = make_crc32_table();

constexpr std::string_view kBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int base64url_value(char c) {
  if (is_upper(c)) return c - 'A';
  if (is_lower(c)) return c - 'a' + 26;
  if (is_digit(c)) return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Decodes unpadded base64url; false on a byte outside the alphabet or an impossible
// length (one leftover character carries fewer than 8 bits).
bool decode_base64url(std::string_view text, std::string& out) {
  if (text.size() % 4 == 1) return false;
  out.clear();
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    int v = base64url_value(c);
    if (v < 0) return false;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return true;
}

struct IbanCountry {
  char code[3];
  uint8_t length;
};
// ISO 13616 registry lengths: the SEPA countries first, then other IBAN countries.
constexpr IbanCountry kIbanCountries[] = {
    {"AD", 24}, {"AT", 20}, {"BE", 16}, {"BG", 22}, {"CH", 21}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"EE", 20}, {"ES", 24}, {"FI", 18}, {"FR", 27}, {"GB", 22}, {"GI", 23}, {"GR", 27},
    {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IS", 26}, {"IT", 27}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"MC", 27}, {"MT", 31}, {"NL", 18}, {"NO", 15}, {"PL", 28}, {"PT", 25}, {"RO", 24},
    {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"VA", 22},
    {"AE", 23}, {"AL", 28}, {"AZ", 28}, {"BA", 20}, {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CR", 22},
    {"DO", 28}, {"EG", 29}, {"FO", 18}, {"GE", 22}, {"GL", 18}, {"GT", 28}, {"IL", 23}, {"JO", 30},
    {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MU", 30},
    {"PK", 24}, {"QA", 29}, {"RS", 22}, {"SA", 24}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"XK", 20},
};

// Words that stand for a value rather than being one, compared case-insensitively
// with the whole candidate.
constexpr std::string_view kPlaceholderWords[] = {
    "null",   "none",     "nil",    "undefined", "true",   "false", "string", "str",  "secret", "password",
    "passwd", "pass",     "token",  "key",       "value",  "empty", "hidden", "required", "optional",
    "sample", "dummy",    "test",   "todo",      "tbd",    "n/a",   "xxx",    "redacted", "masked",
};

// File extensions that are not top-level domains: "image@2x.png" is an asset name.
constexpr std::string_view kFileExtensions[] = {
    "png",  "jpg", "jpeg", "gif", "svg", "webp", "bmp",  "ico", "tif", "tiff", "heic", "avif", "js",
    "mjs",  "cjs", "jsx",  "ts",  "tsx", "css",  "scss", "less", "json", "yaml", "yml", "toml", "xml",
    "html", "htm", "txt",  "csv", "lock", "log", "pdf",  "gz",  "tgz", "rar", "exe", "dll", "dylib",
    "jar",  "wasm",
};

bool is_url_userinfo_char(char c) { return !is_space(c) && c != '/' && c != '@' && c != '\0'; }

// True when `pos` is inside a URL's authority: just after "//", after "//userinfo@",
// or inside the userinfo itself ("//user:" before a password).
bool preceded_by_url_authority(std::string_view value, size_t pos) {
  size_t p = pos;
  if (p > 0 && value[p - 1] == '@') --p;
  size_t budget = 256;
  while (p > 0 && budget-- > 0 && is_url_userinfo_char(value[p - 1])) --p;
  return p >= 2 && value[p - 1] == '/' && value[p - 2] == '/';
}

}  // namespace

bool luhn_valid(std::string_view candidate) {
  if (candidate.empty() || !is_digit(candidate.front()) || !is_digit(candidate.back())) return false;
  uint8_t digits[19];
  size_t n = 0;
  for (char c : candidate) {
    if (is_digit(c)) {
      if (n == sizeof digits) return false;
      digits[n++] = static_cast<uint8_t>(c - '0');
    } else if (c != ' ' && c != '-') {
      return false;
    }
  }
  if (n < 13) return false;
  int sum = 0;
  bool doubled = false;
  for (size_t i = n; i-- > 0;) {
    int d = digits[i];
    if (doubled) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    doubled = !doubled;
  }
  return sum % 10 == 0;
}

bool us_ssn_valid(std::string_view candidate) {
  char d[9];
  if (candidate.size() == 11) {
    if (candidate[3] != '-' || candidate[6] != '-') return false;
    size_t n = 0;
    for (size_t i = 0; i < 11; ++i) {
      if (i == 3 || i == 6) continue;
      d[n++] = candidate[i];
    }
  } else if (candidate.size() == 9) {
    for (size_t i = 0; i < 9; ++i) d[i] = candidate[i];
  } else {
    return false;
  }
  for (char c : d) {
    if (!is_digit(c)) return false;
  }
  const int area = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
  const int group = (d[3] - '0') * 10 + (d[4] - '0');
  const int serial = (d[5] - '0') * 1000 + (d[6] - '0') * 100 + (d[7] - '0') * 10 + (d[8] - '0');
  if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) return false;
  const std::string_view digits(d, 9);
  // Printed on a wallet insert (1938), in an advertisement, and the sequence everyone types.
  return digits != "078051120" && digits != "219099999" && digits != "123456789";
}

size_t iban_length(std::string_view country) {
  if (country.size() != 2) return 0;
  const char a = to_upper(country[0]), b = to_upper(country[1]);
  for (const IbanCountry& c : kIbanCountries) {
    if (c.code[0] == a && c.code[1] == b) return c.length;
  }
  return 0;
}

bool iban_valid(std::string_view candidate) {
  char chars[34];
  size_t n = 0;
  for (char c : candidate) {
    if (c == ' ') continue;
    if (!is_alnum(c) || n == sizeof chars) return false;
    chars[n++] = to_upper(c);
  }
  if (n < 5 || !is_upper(chars[0]) || !is_upper(chars[1]) || !is_digit(chars[2]) || !is_digit(chars[3])) {
    return false;
  }
  if (iban_length(std::string_view(chars, 2)) != n) return false;
  // mod-97 of the number formed by moving the first four characters to the end and
  // writing each letter as two digits (A=10 ... Z=35), computed digit by digit.
  uint32_t remainder = 0;
  for (size_t k = 0; k < n; ++k) {
    const char c = chars[(k + 4) % n];
    if (is_digit(c)) {
      remainder = (remainder * 10 + static_cast<uint32_t>(c - '0')) % 97;
    } else {
      remainder = (remainder * 100 + static_cast<uint32_t>(c - 'A' + 10)) % 97;
    }
  }
  return remainder == 1;
}

uint32_t crc32(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) c = kCrc32Table[(c ^ static_cast<uint8_t>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool github_classic_token_valid(std::string_view token) {
  if (token.size() != 40 || token[3] != '_' || token[0] != 'g' || token[1] != 'h') return false;
  const char kind = token[2];
  if (kind != 'p' && kind != 'o' && kind != 'u' && kind != 's' && kind != 'r') return false;
  const std::string_view body = token.substr(4, 30);
  const std::string_view checksum = token.substr(34, 6);
  for (char c : token.substr(4)) {
    if (!is_alnum(c)) return false;
  }
  uint32_t crc = crc32(body);
  char expected[6];
  for (int i = 5; i >= 0; --i) {
    expected[i] = kBase62[crc % 62];
    crc /= 62;
  }
  return checksum == std::string_view(expected, 6);
}

bool jwt_shape_valid(std::string_view token) {
  const size_t first = token.find('.');
  if (first == std::string_view::npos) return false;
  const size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) return false;
  const std::string_view header = token.substr(0, first);
  const std::string_view payload = token.substr(first + 1, second - first - 1);
  const std::string_view signature = token.substr(second + 1);
  // A header is a few dozen bytes; a huge one is not worth decoding.
  if (header.empty() || header.size() > 4096 || payload.empty()) return false;
  for (char c : payload) {
    if (!is_base64url(c)) return false;
  }
  for (char c : signature) {
    if (!is_base64url(c)) return false;
  }
  if (payload.size() % 4 == 1 || signature.size() % 4 == 1) return false;
  std::string decoded;
  if (!decode_base64url(header, decoded)) return false;
  core::JsonDocument json(8);
  if (!json.load_json(decoded)) return false;
  const auto root = json.root();
  return root.is_object() && root["alg"].is_string();
}

double shannon_entropy(std::string_view text) {
  if (text.empty()) return 0;
  uint32_t counts[256] = {};
  for (char c : text) ++counts[static_cast<uint8_t>(c)];
  const double n = static_cast<double>(text.size());
  double bits = 0;
  for (uint32_t count : counts) {
    if (count == 0) continue;
    const double p = count / n;
    bits -= p * std::log2(p);
  }
  return bits;
}

CharClasses char_classes(std::string_view text) {
  CharClasses classes;
  for (char c : text) {
    if (is_lower(c)) {
      ++classes.lower;
    } else if (is_upper(c)) {
      ++classes.upper;
    } else if (is_digit(c)) {
      ++classes.digit;
    } else {
      ++classes.other;
    }
  }
  return classes;
}

bool looks_random_secret(std::string_view candidate) {
  if (candidate.size() < 16) return false;
  const CharClasses classes = char_classes(candidate);
  uint32_t symbols = 0;
  bool all_hex = true;
  for (char c : candidate) {
    symbols += (c == '+' || c == '/');
    all_hex = all_hex && is_hex(c);
  }
  if (all_hex || classes.upper == 0 || classes.lower == 0 || (classes.digit == 0 && symbols == 0)) return false;
  // Random base64 of 40 bytes measures 4.78 bits per byte on average and above 4.25 in
  // 99.99% of draws; English words and camelCase identifiers of that length stay near
  // 4.0-4.4 (so this filters prose, not every identifier). Shorter strings cannot reach
  // log2(length), hence the scaling.
  const double n = static_cast<double>(candidate.size());
  const double threshold = n >= 40 ? 4.2 : 4.2 * std::log2(n) / std::log2(40.0);
  if (shannon_entropy(candidate) < threshold) return false;
  return !is_placeholder(candidate);
}

bool is_placeholder(std::string_view candidate) {
  if (candidate.empty()) return true;
  // Masking characters only: "XXXX-XXXX", "****", "####", "0000", "x.x".
  bool mask_only = true;
  bool all_same = true;
  for (char c : candidate) {
    mask_only = mask_only && (c == 'x' || c == 'X' || c == '*' || c == '#' || c == '0' || c == '-' || c == '_' ||
                              c == '.' || c == ' ');
    all_same = all_same && c == candidate.front();
  }
  if (mask_only || all_same) return true;
  if (candidate.find("****") != std::string_view::npos || contains_ci(candidate, "xxxx") ||
      candidate.find("...") != std::string_view::npos || candidate.find("\xE2\x80\xA6") != std::string_view::npos) {
    return true;  // partly masked or elided: "sk-abc...xyz", "sk-…"
  }
  // Template and variable references: ${VAR}, {{ var }}, %(name)s, %s, $VAR, <your token>.
  if (candidate.starts_with("${") || candidate.starts_with("{{") || candidate.starts_with("%(") ||
      candidate == "%s" || candidate.starts_with("[masked:") || candidate.starts_with("[REDACTED") ||
      (candidate.front() == '<' && candidate.back() == '>')) {
    return true;
  }
  if (candidate.front() == '$' && candidate.size() > 1 && (is_alpha(candidate[1]) || candidate[1] == '_')) {
    bool identifier = true;
    for (char c : candidate.substr(1)) identifier = identifier && (is_alnum(c) || c == '_');
    if (identifier) return true;
  }
  // AWS documentation examples end in EXAMPLE or EXAMPLEKEY; sample configs say so.
  if (candidate.find("EXAMPLE") != std::string_view::npos || contains_ci(candidate, "example") ||
      contains_ci(candidate, "redacted") || contains_ci(candidate, "placeholder")) {
    return true;
  }
  // "your-token-here", "YOUR_API_KEY", "<your key>", "xoxb-your-token".
  for (size_t i = 0; i + 4 < candidate.size(); ++i) {
    if (!equals_ci(candidate.substr(i, 4), "your")) continue;
    const std::string_view rest = candidate.substr(i + 4);
    const char next = rest.front();
    if (next == '-' || next == '_' || next == ' ' || next == '.' || contains_ci(rest.substr(0, 4), "key") ||
        contains_ci(rest.substr(0, 4), "tok") || contains_ci(rest.substr(0, 4), "sec") ||
        contains_ci(rest.substr(0, 4), "pass") || contains_ci(rest.substr(0, 4), "api")) {
      return true;
    }
  }
  if (candidate.size() >= 5) {
    const std::string_view tail = candidate.substr(candidate.size() - 5);
    if ((tail[0] == '-' || tail[0] == '_' || tail[0] == '.') && equals_ci(tail.substr(1), "here")) return true;
  }
  for (std::string_view word : kPlaceholderWords) {
    if (equals_ci(candidate, word)) return true;
  }
  return false;
}

bool looks_like_secret_value(std::string_view value, size_t min_length) {
  if (value.size() < min_length || is_placeholder(value)) return false;
  // Numbers, dates and times: "3600", "2024-06-01T00:00:00Z", "1.5".
  size_t digits = 0;
  bool numeric = true;
  for (char c : value) {
    if (is_digit(c)) {
      ++digits;
    } else if (!(c == '-' || c == ':' || c == '.' || c == '+' || c == '/' || c == 'T' || c == 'Z' || c == ' ' ||
                 c == '_' || c == ',')) {
      numeric = false;
    }
  }
  if (numeric && digits * 2 >= value.size()) return false;
  // Code rather than a value: os.getenv("X"), process.env.TOKEN, settings.SECRET_KEY.
  if (is_alpha(value.front()) || value.front() == '_') {
    size_t i = 0;
    size_t dots = 0;
    while (i < value.size() && (is_alnum(value[i]) || value[i] == '_' || value[i] == '.')) {
      dots += value[i] == '.';
      ++i;
    }
    if (i < value.size() && (value[i] == '(' || value[i] == '[')) return false;
    if (i == value.size() && dots > 0 && value.back() != '.') {
      // "a.b.c" made of identifiers: a reference unless it mixes in digits-only parts.
      bool identifiers = true;
      size_t start = 0;
      while (start <= value.size()) {
        size_t dot = value.find('.', start);
        if (dot == std::string_view::npos) dot = value.size();
        const std::string_view part = value.substr(start, dot - start);
        identifiers = identifiers && !part.empty() && (is_alpha(part.front()) || part.front() == '_');
        start = dot + 1;
      }
      if (identifiers) return false;
    }
  }
  const CharClasses classes = char_classes(value);
  return classes.kinds() >= 2 || value.size() >= 12;
}

bool token_starts_at(std::string_view value, size_t pos) {
  if (pos == 0) return true;
  if (pos > value.size()) return false;
  const char before = value[pos - 1];
  if (!is_alnum(before)) return true;
  return pos >= 2 && value[pos - 2] == '\\' && (before == 'n' || before == 'r' || before == 't');
}

bool ipv4_plausible(std::string_view value, Span span) {
  if (span.end > value.size() || span.begin >= span.end) return false;
  const std::string_view text = value.substr(span.begin, span.size());
  int octets[4];
  size_t n = 0;
  size_t i = 0;
  while (n < 4) {
    size_t start = i;
    int v = 0;
    while (i < text.size() && is_digit(text[i]) && i - start < 3) v = v * 10 + (text[i++] - '0');
    if (i == start || v > 255) return false;
    octets[n++] = v;
    if (n < 4) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
  }
  if (i != text.size()) return false;
  if (octets[0] == 0 || octets[0] == 127) return false;
  if (octets[0] == 255 && octets[1] == 255 && octets[2] == 255 && octets[3] == 255) return false;
  // Part of a longer dotted or alphanumeric run: a version, a build number, an OID.
  if (span.begin > 0) {
    const char before = value[span.begin - 1];
    if (before == '.' || !token_starts_at(value, span.begin)) return false;
  }
  if (span.end < value.size()) {
    const char after = value[span.end];
    if (is_alnum(after)) return false;
    if (after == '.' && span.end + 1 < value.size() && is_digit(value[span.end + 1])) return false;
  }
  return !preceded_by_url_authority(value, span.begin);
}

bool email_plausible(std::string_view value, Span span) {
  if (span.end > value.size() || span.begin >= span.end) return false;
  const std::string_view text = value.substr(span.begin, span.size());
  const size_t at = text.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64) return false;
  const std::string_view local = text.substr(0, at);
  const std::string_view domain = text.substr(at + 1);
  if (local.front() == '.' || local.back() == '.' || local.front() == '\'' ||
      local.find("..") != std::string_view::npos) {
    return false;
  }
  if (domain.empty() || domain.size() > 253) return false;
  size_t labels = 0;
  std::string_view last;
  size_t start = 0;
  while (start <= domain.size()) {
    size_t dot = domain.find('.', start);
    if (dot == std::string_view::npos) dot = domain.size();
    const std::string_view label = domain.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!is_alnum(c) && c != '-') return false;
    }
    ++labels;
    last = label;
    start = dot + 1;
  }
  if (labels < 2 || last.size() < 2) return false;
  for (char c : last) {
    if (!is_alpha(c)) return false;  // lodash@4.17.21
  }
  for (std::string_view ext : kFileExtensions) {
    if (equals_ci(last, ext)) return false;  // image@2x.png
  }
  // Maximal on both sides: the pattern's character classes decide where it stops.
  if (span.end < value.size()) {
    const char after = value[span.end];
    if (is_alnum(after) || after == '-' || after == '_') return false;
    if (after == '.' && span.end + 1 < value.size() && is_alnum(value[span.end + 1])) return false;
    // scp-style git remote: git@github.com:org/repo.git
    if (after == ':' && local == "git") return false;
  }
  // The userinfo of a URL (postgresql://app@db.internal, https://user:pw@host.example):
  // the URL patterns decide about credentials in URLs.
  if (preceded_by_url_authority(value, span.begin)) return false;
  return true;
}

}  // namespace sluice::mask
