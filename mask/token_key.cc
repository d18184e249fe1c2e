// Token key loading (startup; errors in a result, never thrown) and HMAC-SHA256 on the
// data path with one EVP_MAC_CTX per thread, keyed once and re-initialised per value.
#include "mask/token_key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "core/config_values.h"
#include "core/small_file.h"

namespace sluice::mask {
namespace {

std::atomic<uint64_t> g_next_key_id{1};

EVP_MAC* hmac_algorithm() {
  static EVP_MAC* const algorithm = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return algorithm;
}

// The calling thread's HMAC context and the key it currently holds. Switching keys
// re-keys it; the same key only resets it (EVP_MAC_init with a NULL key).
struct ThreadMac {
  EVP_MAC_CTX* ctx = nullptr;
  uint64_t key_id = 0;  // 0: not keyed
  ThreadMac() = default;
  ThreadMac(const ThreadMac&) = delete;
  ThreadMac& operator=(const ThreadMac&) = delete;
  ~ThreadMac() { EVP_MAC_CTX_free(ctx); }
};
thread_local ThreadMac t_mac;

// Wipes a buffer that held key material before it is freed.
void cleanse(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string named(std::string_view path) { return "token key file " + core::quote(path, 4096); }

// A key that cannot MAC (OpenSSL without HMAC-SHA256, e.g. a restricted provider) is
// refused at startup rather than turning every token into a redaction later.
TokenKeyLoad probed(TokenKeyLoad result) {
  uint8_t ignored[TokenKey::kMacBytes];
  if (result.key && !result.key->mac("probe", "", ignored)) {
    result.key.reset();
    result.error = "OpenSSL cannot compute HMAC-SHA256 for the token key; check the OpenSSL providers configured";
  }
  return result;
}

constexpr const char* kHowToMake = "create one with: openssl rand -hex 32 > FILE; chmod 600 FILE";

}  // namespace

TokenKey::TokenKey(std::string_view bytes)
    : bytes_(bytes.begin(), bytes.end()), id_(g_next_key_id.fetch_add(1, std::memory_order_relaxed)) {}

TokenKey::TokenKey(TokenKey&& other) noexcept : bytes_(std::move(other.bytes_)), id_(other.id_) {
  other.bytes_.clear();
  other.id_ = 0;
}

TokenKey& TokenKey::operator=(TokenKey&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
    id_ = other.id_;
    other.bytes_.clear();
    other.id_ = 0;
  }
  return *this;
}

TokenKey::~TokenKey() { wipe(); }

void TokenKey::wipe() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
  bytes_.clear();
  id_ = 0;
}

std::optional<TokenKey> TokenKey::from_bytes(std::string_view bytes) {
  if (bytes.size() < kMinBytes) return std::nullopt;
  return TokenKey(bytes);
}

bool TokenKey::mac(std::string_view kind, std::string_view value, uint8_t (&out)[kMacBytes]) const {
  if (id_ == 0 || hmac_algorithm() == nullptr) return false;
  ThreadMac& t = t_mac;
  if (t.ctx == nullptr) {
    t.ctx = EVP_MAC_CTX_new(hmac_algorithm());
    if (t.ctx == nullptr) return false;
    t.key_id = 0;
  }
  int ok;
  if (t.key_id == id_) {
    ok = EVP_MAC_init(t.ctx, nullptr, 0, nullptr);
  } else {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    t.key_id = 0;
    ok = EVP_MAC_init(t.ctx, bytes_.data(), bytes_.size(), params);
    if (ok == 1) t.key_id = id_;
  }
  static constexpr unsigned char kSeparator = 0;
  size_t length = 0;
  ok = ok == 1 && EVP_MAC_update(t.ctx, reinterpret_cast<const unsigned char*>(kind.data()), kind.size()) == 1 &&
       EVP_MAC_update(t.ctx, &kSeparator, 1) == 1 &&
       EVP_MAC_update(t.ctx, reinterpret_cast<const unsigned char*>(value.data()), value.size()) == 1 &&
       EVP_MAC_final(t.ctx, out, &length, kMacBytes) == 1 && length == kMacBytes;
  if (!ok) t.key_id = 0;  // start from a fresh key next time
  return ok;
}

TokenKeyLoad TokenKey::from_file_content(std::string_view content, std::string_view path) {
  TokenKeyLoad result;
  if (content.size() > kMaxFileBytes) {
    result.error = named(path) + " is larger than 4 KiB; it should hold only the key (" + kHowToMake + ")";
    return result;
  }
  std::string_view trimmed = content;
  while (!trimmed.empty() && is_space(trimmed.front())) trimmed.remove_prefix(1);
  while (!trimmed.empty() && is_space(trimmed.back())) trimmed.remove_suffix(1);
  if (trimmed.empty()) {
    result.error = named(path) + " is empty; " + kHowToMake;
    return result;
  }

  bool all_hex = true;
  bool all_text = true;
  for (char c : trimmed) {
    all_hex = all_hex && hex_value(c) >= 0;
    all_text = all_text && ((c >= 0x20 && c < 0x7F) || is_space(c));
  }
  if (all_hex) {
    if (trimmed.size() % 2 != 0) {
      result.error = named(path) + " holds an odd number of hex digits; " + kHowToMake;
      return result;
    }
    if (trimmed.size() / 2 < kMinBytes) {
      result.error = named(path) + " holds " + std::to_string(trimmed.size() / 2) +
                     " bytes in hex; a token key needs at least 32 bytes (64 hex digits); " + kHowToMake;
      return result;
    }
    std::string decoded(trimmed.size() / 2, '\0');
    for (size_t i = 0; i < decoded.size(); ++i) {
      decoded[i] = static_cast<char>(hex_value(trimmed[2 * i]) * 16 + hex_value(trimmed[2 * i + 1]));
    }
    result.key.emplace(TokenKey(decoded));
    cleanse(decoded);
    return probed(std::move(result));
  }
  if (all_text) {
    result.error = named(path) +
                   " holds text that is not hex (a passphrase or base64 is not accepted as a key); "
                   "write 64 hex digits or 32 random bytes; " + kHowToMake;
    return result;
  }
  if (content.size() < kMinBytes) {
    result.error = named(path) + " holds " + std::to_string(content.size()) +
                   " bytes; a token key needs at least 32 random bytes; " + kHowToMake;
    return result;
  }
  result.key.emplace(TokenKey(content));
  return probed(std::move(result));
}

TokenKeyLoad TokenKey::load_file(const std::string& path) {
  TokenKeyLoad result;
  if (path.empty() || path.find('\0') != std::string::npos) {
    result.error = "the token key file must be a file path";
    return result;
  }
  core::SmallFile file = core::read_small_file(path, kMaxFileBytes);
  if (file.status != core::SmallFile::Status::ok) {
    cleanse(file.content);
    if (file.status == core::SmallFile::Status::cannot_open) {
      result.error = "cannot open " + named(path) + ": " + file.problem;
    } else {
      if (file.problem.starts_with("larger than")) file.problem += "; it should hold only the key";
      result.error = "cannot read " + named(path) + ": " + file.problem;
    }
    return result;
  }
  std::string& content = file.content;
  char mode[12];
  std::snprintf(mode, sizeof mode, "%04o", file.mode);
  if ((file.mode & S_IRWXO) != 0) {
    cleanse(content);
    result.error = named(path) + " is accessible by other users (mode " + mode +
                   "); anyone who reads it can reverse tokens of guessable values; run: chmod 600 " +
                   core::quote(path, 4096);
    return result;
  }
  result = from_file_content(content, path);
  cleanse(content);
  if (result.key && (file.mode & S_IRWXG) != 0) {
    result.warning = named(path) + " is accessible by its group (mode " + mode + "); run: chmod 600 " +
                     core::quote(path, 4096) + " unless the group is trusted";
  }
  return result;
}

}  // namespace sluice::mask
