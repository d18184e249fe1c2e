// SCRAM-SHA-256 and md5 password answers, written to accept and produce exactly what
// PostgreSQL's server (auth-scram.c) and libpq (fe-auth-scram.c) exchange. Every
// message parsed here comes from a peer: it is length-capped first, parsed without
// exceptions, and any deviation is Step::malformed.
#include "protocol/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cassert>
#include <stdexcept>
#include <utility>

#include "core/base64.h"

namespace sluice::protocol::scram {
namespace {

// Exchange stages, shared by ServerExchange and ClientExchange (stage_ holds one).
constexpr int kStageStart = 0;       // nothing exchanged yet
constexpr int kStageFirstDone = 1;   // server: server-first sent; client: client-first sent
constexpr int kStageFinalSent = 2;   // client only: client-final sent, server-final expected
constexpr int kStageDone = 3;        // finished, whatever the outcome: any further message is malformed
constexpr int kStageNoRandom = 4;    // client only: the CSPRNG failed, the exchange fails closed

constexpr size_t kRawNonceBytes = 18;      // as PostgreSQL's SCRAM_RAW_NONCE_LEN
constexpr size_t kDefaultSaltBytes = 16;   // as PostgreSQL's SCRAM_DEFAULT_SALT_LEN
constexpr uint32_t kMockIterations = 4096;  // PostgreSQL's default scram_iterations
constexpr size_t kMaxVerifierLength = 2048;
constexpr size_t kMaxSaltBytes = 1024;
constexpr uint32_t kMaxVerifierIterations = 0x7fffffff;  // PostgreSQL stores an int
constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

// --- crypto primitives (OpenSSL 3). Each returns false if OpenSSL reports an error.

bool hmac_sha256(std::span<const uint8_t> key, std::string_view data, Key& out) {
  unsigned int length = 0;
  const unsigned char* result =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &length);
  return result != nullptr && length == out.size();
}

bool sha256(std::span<const uint8_t> data, Key& out) {
  return SHA256(data.data(), data.size(), out.data()) != nullptr;
}

bool pbkdf2_sha256(std::string_view password, std::span<const uint8_t> salt, uint32_t iterations,
                   Key& out) {
  if (iterations < 1 || iterations > kMaxVerifierIterations) return false;
  return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                           static_cast<int>(salt.size()), static_cast<int>(iterations),
                           EVP_sha256(), static_cast<int>(out.size()), out.data()) == 1;
}

bool keys_equal(const Key& a, const Key& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

// Wipes key material from the stack when it goes out of scope.
class KeyWiper {
 public:
  template <typename... Keys>
  explicit KeyWiper(Keys&... keys) : keys_{&keys...}, count_(sizeof...(Keys)) {
    static_assert(sizeof...(Keys) <= 4);
  }
  ~KeyWiper() {
    for (size_t i = 0; i < count_; ++i) OPENSSL_cleanse(keys_[i]->data(), keys_[i]->size());
  }
  KeyWiper(const KeyWiper&) = delete;
  KeyWiper& operator=(const KeyWiper&) = delete;

 private:
  std::array<Key*, 4> keys_{};
  size_t count_;
};

// SASLprep (RFC 4013) of a password, to the extent sluice implements it: none, the
// password's bytes are used as given. Compared with PostgreSQL's pg_saslprep (used by
// the server for CREATE ROLE ... PASSWORD and by libpq):
//  - Pure ASCII: identical. pg_saslprep returns ASCII input unchanged (control
//    characters and spaces included; nothing is mapped or rejected).
//  - Not valid UTF-8, or valid UTF-8 that SASLprep rejects (prohibited or unassigned
//    code points, bidi rules): identical, PostgreSQL falls back to the raw bytes too.
//  - Other valid UTF-8: PostgreSQL maps non-ASCII spaces (RFC 3454 C.1.2) to U+0020,
//    deletes the "mapped to nothing" characters (B.1: soft hyphen, zero-width joiners,
//    variation selectors...) and applies NFKC. sluice has no Unicode tables, so it
//    agrees only when that leaves the password unchanged (NFC-composed accented
//    letters, CJK...) and disagrees otherwise ("a\u00A0b", fullwidth letters,
//    ligatures, decomposed accents): such a password does not authenticate between
//    sluice and PostgreSQL/libpq.
//  - PostgreSQL refuses passwords over 1024 bytes at this point; sluice does not.
std::string_view saslprep(std::string_view password) { return password; }

// Salted password and the two keys derived from it (RFC 5802 section 3).
bool derive_keys(std::string_view password, std::span<const uint8_t> salt, uint32_t iterations,
                 Key& salted_password, Key& client_key, Key& stored_key) {
  return pbkdf2_sha256(saslprep(password), salt, iterations, salted_password) &&
         hmac_sha256(salted_password, "Client Key", client_key) && sha256(client_key, stored_key);
}

// PBKDF2 for the client side, remembered per thread. PostgreSQL keeps a role's salt
// and iteration count until its password changes, so every login of a shard to the
// same target derives the same SaltedPassword: without this cache each new session
// would spend ~1.3 ms of the shard's thread (4096 iterations) before serving anyone.
// thread_local = one cache per shard, no locks. Entries are keyed by a digest of the
// password (never the password itself), the salt and the iteration count.
bool cached_salted_password(std::string_view password, std::span<const uint8_t> salt, uint32_t iterations,
                            Key& salted_password) {
  struct Entry {
    Key password_digest{};
    std::vector<uint8_t> salt;
    uint32_t iterations = 0;
    Key salted_password{};
  };
  static constexpr size_t kEntries = 16;
  thread_local std::array<Entry, kEntries> cache;
  thread_local size_t next_victim = 0;

  Key digest;
  if (!sha256({reinterpret_cast<const uint8_t*>(password.data()), password.size()}, digest)) return false;
  for (const Entry& e : cache) {
    if (e.iterations == iterations && keys_equal(e.password_digest, digest) &&
        std::equal(e.salt.begin(), e.salt.end(), salt.begin(), salt.end())) {
      salted_password = e.salted_password;
      return true;
    }
  }
  if (!pbkdf2_sha256(saslprep(password), salt, iterations, salted_password)) return false;
  Entry& slot = cache[next_victim++ % kEntries];
  slot.password_digest = digest;
  slot.salt.assign(salt.begin(), salt.end());
  slot.iterations = iterations;
  slot.salted_password = salted_password;
  return true;
}

// --- message parsing

// A character allowed in a nonce: printable ASCII except ',' (RFC 5802 "printable").
bool is_printable(char c) { return c >= 0x21 && c <= 0x7e && c != ','; }

bool is_printable(std::string_view text) {
  for (char c : text) {
    if (!is_printable(c)) return false;
  }
  return true;
}

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Common checks on every peer message before it is parsed.
bool acceptable_message(std::string_view message) {
  // PostgreSQL rejects a SASL message whose length disagrees with strlen(): no NULs.
  return !message.empty() && message.size() <= kMaxMessageLength &&
         message.find('\0') == std::string_view::npos;
}

// Every step of an exchange starts the same way: it is legal only at `expected`, it
// ends the exchange unless it succeeds (the caller advances the stage on success),
// and its message must be an acceptable SASL message.
bool enter_step(int& stage, int expected, std::string_view message) {
  const bool in_order = stage == expected;
  stage = kStageDone;
  return in_order && acceptable_message(message);
}

// Reads a SCRAM message as "<letter>=<value>" attributes separated by ','. A value runs
// to the next ',' (values never contain one). A trailing ',' leaves an empty attribute
// to read, which fails: "r=abc," is malformed.
class AttributeReader {
 public:
  explicit AttributeReader(std::string_view text) : text_(text) {}

  // True once the last attribute has been read (no ',' followed it).
  bool at_end() const { return at_end_; }
  // Offset in the text where the most recently read attribute began.
  size_t last_start() const { return last_start_; }

  std::optional<std::string_view> read(char name) {
    auto attribute = read_any();
    if (!attribute || attribute->first != name) return std::nullopt;
    return attribute->second;
  }

  std::optional<std::pair<char, std::string_view>> read_any() {
    if (at_end_ || text_.size() - position_ < 2) return std::nullopt;
    const char name = text_[position_];
    if (!is_alpha(name) || text_[position_ + 1] != '=') return std::nullopt;
    last_start_ = position_;
    const size_t value_start = position_ + 2;
    const size_t comma = text_.find(',', value_start);
    if (comma == std::string_view::npos) {
      position_ = text_.size();
      at_end_ = true;
      return std::pair{name, text_.substr(value_start)};
    }
    position_ = comma + 1;
    return std::pair{name, text_.substr(value_start, comma - value_start)};
  }

 private:
  std::string_view text_;
  size_t position_ = 0;
  size_t last_start_ = 0;
  bool at_end_ = false;
};

// Decodes a base64 value into exactly one key; nullopt for bad base64 or another length.
std::optional<Key> decode_key(std::string_view text) {
  if (text.size() != 44) return std::nullopt;  // 32 bytes encode to 44 characters
  auto bytes = base64_decode(text);
  if (!bytes || bytes->size() != Key{}.size()) return std::nullopt;
  Key key;
  std::copy(bytes->begin(), bytes->end(), key.begin());
  return key;
}

// Decimal digits only (no sign, no spaces), value in [1, max].
std::optional<uint32_t> parse_iterations(std::string_view text, uint32_t max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value < 1 || value > max) return std::nullopt;
  return static_cast<uint32_t>(value);
}

std::optional<std::string> random_nonce() {
  std::array<uint8_t, kRawNonceBytes> raw{};
  if (!random_bytes(raw)) return std::nullopt;
  return base64_encode(raw);
}

Key xor_keys(const Key& a, const Key& b) {
  Key out;
  for (size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

}  // namespace

// --- base64

std::string base64_encode(std::span<const uint8_t> data) {
  return core::base64::encode(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()),
                              core::base64::Variant::standard_padded);
}

std::optional<std::vector<uint8_t>> base64_decode(std::string_view text) {
  const std::optional<std::string> bytes = core::base64::decode(text, core::base64::Variant::standard_padded);
  if (!bytes) return std::nullopt;
  return std::vector<uint8_t>(bytes->begin(), bytes->end());
}

bool random_bytes(std::span<uint8_t> out) {
  if (out.empty()) return true;
  return RAND_bytes(out.data(), static_cast<int>(out.size())) == 1;
}

// --- verifiers

std::optional<Verifier> parse_verifier(std::string_view text) {
  if (text.size() > kMaxVerifierLength || !text.starts_with(kVerifierPrefix)) return std::nullopt;
  text.remove_prefix(kVerifierPrefix.size());
  // <iterations>:<salt>$<StoredKey>:<ServerKey>
  const size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  const std::string_view iterations_and_salt = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);
  const size_t colon1 = iterations_and_salt.find(':');
  const size_t colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) return std::nullopt;

  Verifier verifier;
  auto iterations = parse_iterations(iterations_and_salt.substr(0, colon1), kMaxVerifierIterations);
  // Extra '$' or ':' separators end up inside a base64 field, which then fails to decode.
  auto salt = base64_decode(iterations_and_salt.substr(colon1 + 1));
  auto stored_key = decode_key(keys.substr(0, colon2));
  auto server_key = decode_key(keys.substr(colon2 + 1));
  if (!iterations || !salt || salt->empty() || salt->size() > kMaxSaltBytes || !stored_key ||
      !server_key) {
    return std::nullopt;
  }
  verifier.iterations = *iterations;
  verifier.salt = std::move(*salt);
  verifier.stored_key = *stored_key;
  verifier.server_key = *server_key;
  return verifier;
}

std::string format_verifier(const Verifier& verifier) {
  return std::string(kVerifierPrefix) + std::to_string(verifier.iterations) + ":" +
         base64_encode(verifier.salt) + "$" + base64_encode(verifier.stored_key) + ":" +
         base64_encode(verifier.server_key);
}

Verifier make_verifier(std::string_view password, uint32_t iterations, std::span<const uint8_t> salt) {
  assert(iterations >= 1 && iterations <= kMaxVerifierIterations && !salt.empty());
  Verifier verifier;
  verifier.iterations = iterations;
  verifier.salt.assign(salt.begin(), salt.end());
  Key salted_password{}, client_key{};
  KeyWiper wiper(salted_password, client_key);
  if (!derive_keys(password, salt, iterations, salted_password, client_key, verifier.stored_key) ||
      !hmac_sha256(salted_password, "Server Key", verifier.server_key)) {
    // Only an OpenSSL failure gets here; this runs at configuration time, not per message.
    throw std::runtime_error("SCRAM verifier: OpenSSL failed to derive the keys");
  }
  return verifier;
}

Verifier make_verifier(std::string_view password, uint32_t iterations) {
  std::array<uint8_t, kDefaultSaltBytes> salt{};
  if (!random_bytes(salt)) throw std::runtime_error("SCRAM verifier: the CSPRNG failed to produce a salt");
  return make_verifier(password, iterations, salt);
}

// --- server side

ServerExchange::ServerExchange(const Verifier* verifier, std::string_view username,
                               const Key& mock_secret)
    : user_known_(verifier != nullptr) {
  if (verifier != nullptr) {
    assert(verifier->iterations >= 1 && !verifier->salt.empty());
    verifier_ = *verifier;
    return;
  }
  // Unknown user: a salt that is stable per user name (so two attempts show the same
  // server-first-message, as for a real user) but unpredictable without mock_secret.
  // The keys are random; the exchange is doomed by user_known_ anyway.
  std::string seed(mock_secret.begin(), mock_secret.end());
  seed.append(username);
  Key digest{};
  sha256(std::span(reinterpret_cast<const uint8_t*>(seed.data()), seed.size()), digest);
  verifier_.iterations = kMockIterations;
  verifier_.salt.assign(digest.begin(), digest.begin() + kDefaultSaltBytes);
  random_bytes(verifier_.stored_key);  // on failure the zero keys are as good: always failure
  random_bytes(verifier_.server_key);
}

void ServerExchange::set_server_nonce_for_test(std::string nonce) {
  assert(!nonce.empty() && is_printable(nonce));
  server_nonce_ = std::move(nonce);
}

// client-first-message = gs2-header client-first-message-bare
//   gs2-header = ("n" / "y") "," "," (no authzid; "p" would ask for channel binding,
//   which sluice does not offer)
//   client-first-message-bare = "n=" saslname "," "r=" c-nonce *("," extension)
Step ServerExchange::on_client_first(std::string_view message, std::string& output) {
  output.clear();
  if (!enter_step(stage_, kStageStart, message) || message.size() < 3) return Step::malformed;
  const char flag = message[0];
  // 'y': the client could bind but thinks we cannot; true, since we offer no PLUS.
  if ((flag != 'n' && flag != 'y') || message[1] != ',') return Step::malformed;
  // An authzid ("a=...") is not supported, as in PostgreSQL.
  if (message[2] != ',') return Step::malformed;
  const std::string_view bare = message.substr(3);

  AttributeReader reader(bare);
  // "m=" (a mandatory extension) fails here: the first attribute must be "n".
  // The user name itself is ignored: PostgreSQL authenticates the startup user.
  if (!reader.read('n')) return Step::malformed;
  const auto client_nonce = reader.read('r');
  if (!client_nonce || client_nonce->empty() || !is_printable(*client_nonce)) return Step::malformed;
  // Optional extensions after the nonce are ignored, as PostgreSQL does, but must be
  // well-formed attributes.
  while (!reader.at_end()) {
    if (!reader.read_any()) return Step::malformed;
  }

  if (server_nonce_.empty()) {
    auto nonce = random_nonce();
    if (!nonce) return Step::failure;  // no CSPRNG: fail closed
    server_nonce_ = std::move(*nonce);
  }
  gs2_cbind_flag_ = flag;
  client_first_bare_.assign(bare);
  combined_nonce_.assign(*client_nonce);
  combined_nonce_ += server_nonce_;
  server_first_ = "r=" + combined_nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  output = server_first_;
  stage_ = kStageFirstDone;
  return Step::continue_exchange;
}

// client-final-message = "c=" base64(gs2-header) "," "r=" nonce *("," extension) "," "p=" proof
Step ServerExchange::on_client_final(std::string_view message, std::string& output) {
  output.clear();
  if (!enter_step(stage_, kStageFirstDone, message)) return Step::malformed;

  AttributeReader reader(message);
  // Without channel binding the client echoes its gs2 header: "n,," or "y,,".
  const auto channel_binding = reader.read('c');
  const std::string_view expected_binding = gs2_cbind_flag_ == 'y' ? "eSws" : "biws";
  if (!channel_binding || *channel_binding != expected_binding) return Step::malformed;
  const auto nonce = reader.read('r');
  if (!nonce || *nonce != combined_nonce_) return Step::malformed;
  // Extensions before the proof are ignored (and signed, being part of AuthMessage).
  std::optional<std::pair<char, std::string_view>> attribute;
  do {
    attribute = reader.read_any();
    if (!attribute) return Step::malformed;
  } while (attribute->first != 'p');
  if (!reader.at_end()) return Step::malformed;  // the proof comes last
  const auto proof = decode_key(attribute->second);
  if (!proof) return Step::malformed;
  const size_t proof_start = reader.last_start();  // > 0: "c=" and "r=" come before
  const std::string_view without_proof = message.substr(0, proof_start - 1);

  std::string auth_message;
  auth_message.reserve(client_first_bare_.size() + server_first_.size() + without_proof.size() + 2);
  auth_message.append(client_first_bare_).append(",").append(server_first_).append(",").append(without_proof);

  // ClientKey = proof XOR HMAC(StoredKey, AuthMessage); it is right iff H(ClientKey) = StoredKey.
  Key client_signature{}, client_key{}, stored_key{};
  KeyWiper wiper(client_signature, client_key);
  if (!hmac_sha256(verifier_.stored_key, auth_message, client_signature)) return Step::failure;
  client_key = xor_keys(*proof, client_signature);
  if (!sha256(client_key, stored_key)) return Step::failure;
  // The comparison runs for unknown users too, so timing does not tell them apart.
  const bool proof_matches = keys_equal(stored_key, verifier_.stored_key);
  if (!proof_matches || !user_known_) return Step::failure;

  Key server_signature{};
  if (!hmac_sha256(verifier_.server_key, auth_message, server_signature)) return Step::failure;
  output = "v=" + base64_encode(server_signature);
  return Step::success;
}

// --- client side

ClientExchange::ClientExchange(std::string password) : password_(std::move(password)) {}

void ClientExchange::set_client_nonce_for_test(std::string nonce) {
  assert(!nonce.empty() && is_printable(nonce));
  client_nonce_ = std::move(nonce);
}

void ClientExchange::set_user_name_for_test(std::string name) {
  assert(name.find(',') == std::string::npos && name.find('=') == std::string::npos);
  user_name_ = std::move(name);
}

std::string ClientExchange::client_first() {
  if (stage_ == kStageStart) {
    if (client_nonce_.empty()) {
      auto nonce = random_nonce();
      if (!nonce) {
        stage_ = kStageNoRandom;  // on_server_first will fail the exchange
        return {};
      }
      client_nonce_ = std::move(*nonce);
    }
    client_first_bare_ = "n=" + user_name_ + ",r=" + client_nonce_;
    stage_ = kStageFirstDone;
  }
  return "n,," + client_first_bare_;
}

// server-first-message = "r=" c-nonce s-nonce "," "s=" salt "," "i=" iteration-count
// (no extensions: PostgreSQL sends none and libpq rejects trailing data).
Step ClientExchange::on_server_first(std::string_view message, std::string& output) {
  output.clear();
  if (stage_ == kStageNoRandom) return Step::failure;
  if (!enter_step(stage_, kStageFirstDone, message)) return Step::malformed;

  AttributeReader reader(message);
  const auto nonce = reader.read('r');
  if (!nonce || nonce->size() <= client_nonce_.size() || !nonce->starts_with(client_nonce_) ||
      !is_printable(*nonce)) {
    return Step::malformed;
  }
  const auto salt_text = reader.read('s');
  if (!salt_text) return Step::malformed;
  const auto salt = base64_decode(*salt_text);
  if (!salt || salt->empty() || salt->size() > kMaxSaltBytes) return Step::malformed;
  const auto iterations_text = reader.read('i');
  if (!iterations_text) return Step::malformed;
  const auto iterations = parse_iterations(*iterations_text, kMaxClientIterations);
  if (!iterations || !reader.at_end()) return Step::malformed;

  Key client_key{}, stored_key{}, client_signature{};
  KeyWiper wiper(client_key, client_signature);
  if (!cached_salted_password(password_, *salt, *iterations, salted_password_) ||
      !hmac_sha256(salted_password_, "Client Key", client_key) || !sha256(client_key, stored_key)) {
    return Step::failure;
  }
  std::string final_without_proof = "c=biws,r=";
  final_without_proof.append(*nonce);
  auth_message_.reserve(client_first_bare_.size() + message.size() + final_without_proof.size() + 2);
  auth_message_.assign(client_first_bare_).append(",").append(message).append(",").append(final_without_proof);
  if (!hmac_sha256(stored_key, auth_message_, client_signature)) return Step::failure;
  const Key proof = xor_keys(client_key, client_signature);
  output = std::move(final_without_proof);
  output += ",p=";
  output += base64_encode(proof);
  stage_ = kStageFinalSent;
  return Step::continue_exchange;
}

// server-final-message = "v=" base64(ServerSignature) / "e=" server-error-value
Step ClientExchange::on_server_final(std::string_view message) {
  if (!enter_step(stage_, kStageFinalSent, message)) return Step::malformed;
  AttributeReader reader(message);
  const auto attribute = reader.read_any();
  if (!attribute) return Step::malformed;
  if (attribute->first == 'e') return Step::failure;  // the server says why; we only fail
  if (attribute->first != 'v' || !reader.at_end()) return Step::malformed;
  const auto signature = decode_key(attribute->second);
  if (!signature) return Step::malformed;

  Key server_key{}, expected{};
  KeyWiper wiper(server_key);
  if (!hmac_sha256(salted_password_, "Server Key", server_key) ||
      !hmac_sha256(server_key, auth_message_, expected)) {
    return Step::failure;
  }
  return keys_equal(*signature, expected) ? Step::success : Step::failure;
}

// --- md5

std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::span<const uint8_t, 4> salt) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Writes the 32 lowercase hex digits of md5(data) to out.
  auto md5_hex = [](std::string_view data, char* out) {
    unsigned char digest[16];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr) != 1 ||
        length != sizeof digest) {
      return false;
    }
    for (size_t i = 0; i < sizeof digest; ++i) {
      out[2 * i] = kHex[digest[i] >> 4];
      out[2 * i + 1] = kHex[digest[i] & 15];
    }
    return true;
  };
  std::string inner(password);
  inner.append(user);
  char inner_hex_and_salt[32 + 4];
  std::string response = "md5";
  response.resize(3 + 32);
  bool ok = md5_hex(inner, inner_hex_and_salt);
  if (ok) {
    std::copy(salt.begin(), salt.end(), inner_hex_and_salt + 32);
    ok = md5_hex(std::string_view(inner_hex_and_salt, sizeof inner_hex_and_salt), response.data() + 3);
  }
  OPENSSL_cleanse(inner.data(), inner.size());
  OPENSSL_cleanse(inner_hex_and_salt, sizeof inner_hex_and_salt);
  if (!ok) return {};
  return response;
}

}  // namespace sluice::protocol::scram
