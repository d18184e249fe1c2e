// The secret behind deterministic tokens: loaded once at startup from a key file, then
// used for HMAC-SHA256 on the data path (one keyed OpenSSL context per thread, reused).
// The key's bytes are never logged, never put in a message, and wiped when freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::mask {

struct TokenKeyLoad;

// Key file format (decided here, documented in docs/masking.md):
//   - hex: only hex digits, at least 64 of them (32 bytes), an even count, optionally
//     followed by whitespace/newline -> the decoded bytes (`openssl rand -hex 32`);
//   - otherwise raw bytes, at least 32, used exactly as stored (`head -c 32 /dev/urandom`).
// Rejected, each with one sentence naming the file: missing or unreadable, not a
// regular file, empty, larger than 4 KiB, fewer than 32 key bytes, an odd number of
// hex digits, printable text that is not hex (a passphrase or base64 is not a key),
// and a file any "other" user may access (mode & 0007). Group access is a warning.
class TokenKey {
 public:
  static constexpr size_t kMinBytes = 32;
  static constexpr size_t kMaxFileBytes = 4096;
  static constexpr size_t kMacBytes = 32;

  // Reads and checks a key file. Never throws; problems are in the result.
  static TokenKeyLoad load_file(const std::string& path);
  // The same rules applied to a file's content; `path` only names it in messages.
  static TokenKeyLoad from_file_content(std::string_view content, std::string_view path);
  // A key of at least kMinBytes raw bytes (tests, embedding); nullopt when shorter.
  static std::optional<TokenKey> from_bytes(std::string_view bytes);

  TokenKey(TokenKey&& other) noexcept;
  TokenKey& operator=(TokenKey&& other) noexcept;
  TokenKey(const TokenKey&) = delete;
  TokenKey& operator=(const TokenKey&) = delete;
  ~TokenKey();

  // HMAC-SHA256(key, kind || 0x00 || value) -> out. False only if OpenSSL fails (or the
  // key was moved from); callers then fall back to redact.
  bool mac(std::string_view kind, std::string_view value, uint8_t (&out)[kMacBytes]) const;

 private:
  explicit TokenKey(std::string_view bytes);
  void wipe();

  std::vector<uint8_t> bytes_;
  // Identifies this key in the per-thread HMAC cache; never reused, 0 = no key.
  uint64_t id_ = 0;
};

struct TokenKeyLoad {
  std::optional<TokenKey> key;  // set on success
  std::string error;            // set exactly when `key` is empty: names the file, says what to do
  std::string warning;          // may accompany a key (group-accessible file)
};

}  // namespace sluice::mask
