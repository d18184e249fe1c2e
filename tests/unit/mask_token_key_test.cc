// Tests for mask/token_key: the key file rules (hex or raw bytes, at least 32 bytes,
// file mode), messages that name the file and never show key material, and the HMAC
// (checked against OpenSSL's one-shot HMAC, across key switches and threads).
#include "mask/token_key.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/unit/test_support.h"

namespace sluice::mask {
namespace {

using testing_support::TempDir;

constexpr const char* kHexKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

std::string raw_key_bytes() {
  std::string key;
  for (int i = 0; i < 32; ++i) key.push_back(static_cast<char>(0x80 + i * 3));  // not text
  return key;
}

std::string expected_mac(std::string_view key, std::string_view kind, std::string_view value) {
  std::string message = std::string(kind) + std::string(1, '\0') + std::string(value);
  unsigned char out[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), out, &length);
  return std::string(reinterpret_cast<char*>(out), length);
}

std::string mac_of(const TokenKey& key, std::string_view kind, std::string_view value) {
  uint8_t out[TokenKey::kMacBytes];
  if (!key.mac(kind, value, out)) return "<failed>";
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string decoded_hex_key() {
  std::string out;
  for (size_t i = 0; i < 64; i += 2) out.push_back(static_cast<char>(std::stoi(std::string(kHexKey + i, 2), nullptr, 16)));
  return out;
}

TEST(MaskTokenKey, HexFileWithNewline) {
  TempDir dir;
  TokenKeyLoad load = TokenKey::load_file(dir.write("key", std::string(kHexKey) + "\n"));
  ASSERT_TRUE(load.key) << load.error;
  EXPECT_TRUE(load.error.empty());
  EXPECT_TRUE(load.warning.empty());
  EXPECT_EQ(mac_of(*load.key, "ssn", "123-45-6789"), expected_mac(decoded_hex_key(), "ssn", "123-45-6789"));
  // Upper-case hex, CRLF, surrounding blanks: the same key.
  TokenKeyLoad upper = TokenKey::from_file_content("  " + std::string(kHexKey) + "\r\n", "k");
  ASSERT_TRUE(upper.key);
  EXPECT_EQ(mac_of(*upper.key, "a", "b"), mac_of(*load.key, "a", "b"));
}

TEST(MaskTokenKey, RawBytesFile) {
  TempDir dir;
  const std::string raw = raw_key_bytes() + "\n\x01";  // used exactly as stored
  TokenKeyLoad load = TokenKey::load_file(dir.write("key", raw));
  ASSERT_TRUE(load.key) << load.error;
  EXPECT_EQ(mac_of(*load.key, "k", "v"), expected_mac(raw, "k", "v"));
  // A long key (more than HMAC's 64-byte block) is fine too.
  std::string long_key(200, '\xAA');
  TokenKeyLoad long_load = TokenKey::from_file_content(long_key, "long");
  ASSERT_TRUE(long_load.key);
  EXPECT_EQ(mac_of(*long_load.key, "k", "v"), expected_mac(long_key, "k", "v"));
}

TEST(MaskTokenKey, RejectedContentNamesTheFile) {
  struct Case {
    std::string content;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"", "is empty"},
      {" \n\n", "is empty"},
      {std::string(kHexKey).substr(0, 32) + "\n", "holds 16 bytes in hex; a token key needs at least 32 bytes"},
      {std::string(kHexKey) + "a", "odd number of hex digits"},
      {raw_key_bytes().substr(0, 16), "holds 16 bytes; a token key needs at least 32 random bytes"},
      {"correct horse battery staple, a passphrase\n", "holds text that is not hex"},
      {"3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "holds text that is not hex"},  // base64
      {std::string(5000, '\x99'), "is larger than 4 KiB"},
  };
  for (const Case& c : cases) {
    TokenKeyLoad load = TokenKey::from_file_content(c.content, "/etc/sluice/token.key");
    EXPECT_FALSE(load.key) << c.message;
    EXPECT_NE(load.error.find("token key file '/etc/sluice/token.key'"), std::string::npos) << load.error;
    EXPECT_NE(load.error.find(c.message), std::string::npos) << load.error;
    EXPECT_NE(load.error.find("openssl rand -hex 32"), std::string::npos) << load.error;
    // Never any of the content in the message.
    if (c.content.size() > 8) {
      EXPECT_EQ(load.error.find(c.content.substr(0, 8)), std::string::npos) << load.error;
    }
  }
}

TEST(MaskTokenKey, FileProblems) {
  TempDir dir;
  TokenKeyLoad missing = TokenKey::load_file(dir.path() + "/nope");
  EXPECT_FALSE(missing.key);
  EXPECT_NE(missing.error.find("cannot open token key file '" + dir.path() + "/nope'"), std::string::npos)
      << missing.error;
  EXPECT_NE(missing.error.find("No such file"), std::string::npos) << missing.error;

  TokenKeyLoad directory = TokenKey::load_file(dir.path());
  EXPECT_FALSE(directory.key);
  EXPECT_NE(directory.error.find("not a regular file"), std::string::npos) << directory.error;

  // A FIFO in place of the file neither hangs nor loads.
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  TokenKeyLoad from_fifo = TokenKey::load_file(fifo);
  EXPECT_FALSE(from_fifo.key);
  EXPECT_NE(from_fifo.error.find("not a regular file"), std::string::npos) << from_fifo.error;

  TokenKeyLoad big = TokenKey::load_file(dir.write("big", std::string(4097, '\x99')));
  EXPECT_FALSE(big.key);
  EXPECT_NE(big.error.find("larger than 4 KiB"), std::string::npos) << big.error;

  EXPECT_FALSE(TokenKey::load_file("").key);
}

TEST(MaskTokenKey, FileModes) {
  TempDir dir;
  TokenKeyLoad others = TokenKey::load_file(dir.write("key", kHexKey, 0644));
  EXPECT_FALSE(others.key);
  EXPECT_NE(others.error.find("is accessible by other users (mode 0644)"), std::string::npos) << others.error;
  EXPECT_NE(others.error.find("chmod 600"), std::string::npos) << others.error;
  EXPECT_FALSE(TokenKey::load_file(dir.write("key2", kHexKey, 0604)).key);
  EXPECT_FALSE(TokenKey::load_file(dir.write("key3", kHexKey, 0601)).key);

  TokenKeyLoad group = TokenKey::load_file(dir.write("key4", kHexKey, 0640));
  ASSERT_TRUE(group.key) << group.error;
  EXPECT_NE(group.warning.find("accessible by its group (mode 0640)"), std::string::npos) << group.warning;

  TokenKeyLoad owner = TokenKey::load_file(dir.write("key5", kHexKey, 0400));
  ASSERT_TRUE(owner.key) << owner.error;
  EXPECT_TRUE(owner.warning.empty());
}

TEST(MaskTokenKey, FromBytes) {
  EXPECT_FALSE(TokenKey::from_bytes(std::string(31, 'x')));
  auto key = TokenKey::from_bytes(std::string(32, 'x'));
  ASSERT_TRUE(key);
  EXPECT_EQ(mac_of(*key, "", ""), expected_mac(std::string(32, 'x'), "", ""));
  // The separator keeps kind and value apart: ("ab", "c") is not ("a", "bc").
  EXPECT_NE(mac_of(*key, "ab", "c"), mac_of(*key, "a", "bc"));
  // Values with NUL bytes are hashed whole.
  EXPECT_EQ(mac_of(*key, "k", std::string("a\0b", 3)), expected_mac(std::string(32, 'x'), "k", std::string("a\0b", 3)));
}

TEST(MaskTokenKey, MovedFromKeyRefusesToMac) {
  auto key = TokenKey::from_bytes(std::string(32, 'x'));
  ASSERT_TRUE(key);
  TokenKey moved = std::move(*key);
  EXPECT_EQ(mac_of(*key, "k", "v"), "<failed>");  // NOLINT(bugprone-use-after-move): on purpose
  EXPECT_EQ(mac_of(moved, "k", "v"), expected_mac(std::string(32, 'x'), "k", "v"));
  TokenKey other = std::move(*TokenKey::from_bytes(std::string(32, 'y')));
  other = std::move(moved);
  EXPECT_EQ(mac_of(other, "k", "v"), expected_mac(std::string(32, 'x'), "k", "v"));
}

// The per-thread context is re-keyed when another key is used, and each thread has its own.
TEST(MaskTokenKey, SwitchingKeysAndThreads) {
  auto a = TokenKey::from_bytes(std::string(32, 'a'));
  auto b = TokenKey::from_bytes(std::string(40, 'b'));
  ASSERT_TRUE(a && b);
  const std::string want_a = expected_mac(std::string(32, 'a'), "k", "value");
  const std::string want_b = expected_mac(std::string(40, 'b'), "k", "value");
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(mac_of(*a, "k", "value"), want_a);
    ASSERT_EQ(mac_of(*a, "k", "value"), want_a);
    ASSERT_EQ(mac_of(*b, "k", "value"), want_b);
  }
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const TokenKey& key = (i + t) % 3 == 0 ? *b : *a;
        const std::string& want = (i + t) % 3 == 0 ? want_b : want_a;
        if (mac_of(key, "k", "value") != want) ++failures[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int f : failures) EXPECT_EQ(f, 0);
  // A key destroyed and another created: the new one is never mistaken for the old.
  {
    auto temporary = TokenKey::from_bytes(std::string(32, 't'));
    ASSERT_EQ(mac_of(*temporary, "k", "v"), expected_mac(std::string(32, 't'), "k", "v"));
  }
  auto next = TokenKey::from_bytes(std::string(32, 'n'));
  EXPECT_EQ(mac_of(*next, "k", "v"), expected_mac(std::string(32, 'n'), "k", "v"));
}

}  // namespace
}  // namespace sluice::mask
