// Validators: pure functions that confirm (or refute) a candidate a pattern matched.
// A regular expression finds the shape; these check what a shape cannot say: a
// checksum (Luhn, mod-97, CRC32), an issuing range, a decodable header, randomness,
// or that the "secret" is a placeholder someone wrote in its place.
//
// Every function takes any bytes (invalid UTF-8, NUL, empty) and never reads outside
// the string_view it was given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::mask {

// A half-open byte range [begin, end) inside one value. Offsets are 32-bit: a
// PostgreSQL value is at most 1 GiB.
struct Span {
  uint32_t begin = 0;
  uint32_t end = 0;
  uint32_t size() const { return end - begin; }
  bool operator==(const Span&) const = default;
};

// --- checksums and issuing ranges: the candidate alone -------------------------

// Payment card number: 13 to 19 digits passing the Luhn check. Spaces and dashes
// between digits are ignored; any other byte makes it invalid.
bool luhn_valid(std::string_view candidate);

// US Social Security number, "AAA-GG-SSSS" or nine digits: area 001-899 except 666,
// group 01-99, serial 0001-9999, and not one of the numbers famous for having been
// printed as examples (078-05-1120, 219-09-9999, 123-45-6789).
bool us_ssn_valid(std::string_view candidate);

// IBAN: known country, that country's length, check digits passing mod-97 (ISO 13616).
// Spaces are ignored; letters may be either case.
bool iban_valid(std::string_view candidate);
// The IBAN length for a two-letter country code (SEPA countries, GB, CH, NO and other
// IBAN countries); 0 for a country we do not know.
size_t iban_length(std::string_view country);

// GitHub classic token: ghp_/gho_/ghu_/ghs_/ghr_, 30 base62 characters, then the
// CRC32 of those 30 characters in base62 (0-9A-Za-z), left-padded with '0' to six.
bool github_classic_token_valid(std::string_view token);
uint32_t crc32(std::string_view data);  // IEEE 802.3, as zlib computes it

// JWT (JWS compact form): three base64url parts separated by '.', the first decoding
// to a JSON object with an "alg" member, the second non-empty; the third (signature)
// may be empty (alg "none").
bool jwt_shape_valid(std::string_view token);

// --- randomness and placeholders -------------------------------------------------

// Shannon entropy of the byte distribution, in bits per byte (0 for empty input).
double shannon_entropy(std::string_view text);

struct CharClasses {
  uint32_t lower = 0, upper = 0, digit = 0, other = 0;
  int kinds() const { return (lower > 0) + (upper > 0) + (digit > 0) + (other > 0); }
};
CharClasses char_classes(std::string_view text);

// A bare base64-alphabet string that looks machine-generated: at least 16 bytes,
// upper and lower case letters, a digit or '+' or '/', not all hexadecimal (a hash or
// a git SHA is not a secret), entropy >= 4.2 bits per byte for 40+ bytes (scaled
// down for shorter ones), and not a placeholder.
bool looks_random_secret(std::string_view candidate);

// A text someone wrote where a secret would go: "XXXX...", "xxxx", "****", "${VAR}",
// "{{ var }}", "<redacted>", "REDACTED", "your-token-here", "...EXAMPLE" (AWS docs),
// "[masked:...]" (our own output), a value that is all one character, and words such
// as "null", "none", "string" or "password" standing for a value.
bool is_placeholder(std::string_view candidate);

// The value of a `key = value` assignment looks like a credential rather than a
// setting: not a placeholder, not a number, date or boolean, not a variable or call
// (`$VAR`, `os.getenv(...)`), and either two or more character classes or 12+ bytes.
// `min_length` is the shortest value accepted.
bool looks_like_secret_value(std::string_view value, size_t min_length);

// --- candidates that need their surroundings ------------------------------------
// These take the whole value and the span the pattern matched, because what decides
// is often the byte before or after ("1.2.3.4.5" is a version, not an address).

// IPv4 dotted quad at `span` (exactly "a.b.c.d"): octets 0-255, not 0.x.x.x, not
// loopback 127.x, not 255.255.255.255; not part of a longer dotted or alphanumeric run
// (versions such as 10.0.19041.1, "v1.2.3.4"); not the host of a URL
// ("scheme://10.0.0.1", "scheme://user@10.0.0.1": the URL patterns own URLs).
bool ipv4_plausible(std::string_view value, Span span);

// E-mail address at `span`: local part and domain within RFC limits, a domain with a
// dot whose last label is 2+ letters and not a file extension (image@2x.png,
// lodash@4.17.21), not the user of an scp-style git remote (git@github.com:org/repo),
// not the userinfo of a URL (postgresql://app@db.internal).
bool email_plausible(std::string_view value, Span span);

// --- shared helpers for span-adjusting validators --------------------------------

// True when the byte before `pos` does not continue a token: start of value, a byte
// that is not ASCII alphanumeric, or the letter of a backslash escape ("\n", "\t" in
// JSON-encoded text), which a reader sees as a line break.
bool token_starts_at(std::string_view value, size_t pos);

}  // namespace sluice::mask
