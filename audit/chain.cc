#include "audit/chain.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <charconv>
#include <cstdio>

namespace sluice::audit {

namespace {
constexpr std::string_view kPrefixN = "{\"n\":";
constexpr std::string_view kPrefixPrev = ",\"prev\":\"";
constexpr std::string_view kSegmentPrefix = "audit-";
constexpr std::string_view kSegmentSuffix = ".jsonl";
constexpr size_t kSegmentDigits = 20;
}  // namespace

namespace {
// OpenSSL 3's one-shot SHA256() looks the algorithm up and allocates a context on
// every call, which costs more than hashing a record. Each thread keeps its own.
struct Sha256Context {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Sha256Context() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
};
}  // namespace

Hash hash_line(std::string_view line) {
  thread_local Sha256Context sha;
  Hash hash{};
  unsigned int length = 0;
  if (sha.md == nullptr || sha.ctx == nullptr || EVP_DigestInit_ex2(sha.ctx, sha.md, nullptr) != 1 ||
      EVP_DigestUpdate(sha.ctx, line.data(), line.size()) != 1 || EVP_DigestFinal_ex(sha.ctx, hash.data(), &length) != 1) {
    // Not expected with a working libcrypto; the one-shot call is the fallback.
    SHA256(reinterpret_cast<const unsigned char*>(line.data()), line.size(), hash.data());
  }
  return hash;
}

std::string to_hex(const Hash& hash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < hash.size(); ++i) {
    out[2 * i] = kHex[hash[i] >> 4];
    out[2 * i + 1] = kHex[hash[i] & 0xF];
  }
  return out;
}

bool from_hex(std::string_view hex, Hash& hash) {
  if (hex.size() != 64) return false;
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < hash.size(); ++i) {
    const int high = digit(hex[2 * i]), low = digit(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    hash[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

void append_line(std::string& out, uint64_t n, const Hash& prev, std::string_view body) {
  out += kPrefixN;
  out += std::to_string(n);
  out += kPrefixPrev;
  out += to_hex(prev);
  out += "\",";
  out += body;
  out += '\n';
}

bool parse_chain_prefix(std::string_view line, uint64_t& n, Hash& prev) {
  if (!line.starts_with(kPrefixN)) return false;
  line.remove_prefix(kPrefixN.size());
  // Digits only, no sign or leading zero (except "0" itself is never a record number).
  if (line.empty() || line[0] < '1' || line[0] > '9') return false;
  const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), n);
  if (error != std::errc{}) return false;
  line.remove_prefix(static_cast<size_t>(end - line.data()));
  if (!line.starts_with(kPrefixPrev)) return false;
  line.remove_prefix(kPrefixPrev.size());
  if (line.size() < 66 || !from_hex(line.substr(0, 64), prev)) return false;
  return line.substr(64, 2) == "\",";
}

std::string segment_file_name(uint64_t first_record) {
  char digits[32];
  snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(first_record));
  return std::string(kSegmentPrefix) + digits + std::string(kSegmentSuffix);
}

std::optional<uint64_t> parse_segment_file_name(std::string_view name) {
  if (!name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) return std::nullopt;
  name.remove_prefix(kSegmentPrefix.size());
  name.remove_suffix(kSegmentSuffix.size());
  if (name.size() != kSegmentDigits) return std::nullopt;
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), value);
  if (error != std::errc{} || end != name.data() + name.size() || value == 0) return std::nullopt;
  return value;
}

}  // namespace sluice::audit
