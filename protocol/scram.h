// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, both sides, plus
// the md5 password response. sluice is the SCRAM *server* for gateway users and
// the SCRAM *client* toward PostgreSQL with the target's credential.
// Channel binding is not offered (no TLS yet): the server accepts gs2 flags
// "n" and "y" and rejects "p".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::protocol::scram {

using Key = std::array<uint8_t, 32>;

// A SCRAM-SHA-256 verifier as PostgreSQL stores it in pg_authid.rolpassword:
//   SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
// Invariant: iterations >= 1, salt non-empty.
struct Verifier {
  uint32_t iterations = 0;
  std::vector<uint8_t> salt;
  Key stored_key{};
  Key server_key{};
};

// Returns nullopt for anything not of exactly that shape (hostile input: bounded,
// no exceptions).
std::optional<Verifier> parse_verifier(std::string_view text);
std::string format_verifier(const Verifier& verifier);
// Derives a verifier from a plaintext password (SASLprep is applied where the
// password is valid UTF-8 and normalization is a no-op for ASCII; non-ASCII is used
// as raw bytes, as PostgreSQL does when SASLprep fails).
Verifier make_verifier(std::string_view password, uint32_t iterations, std::span<const uint8_t> salt);
// Same with 16 random bytes of salt. Both throw std::runtime_error if OpenSSL fails
// (configuration time only, never on the data path).
Verifier make_verifier(std::string_view password, uint32_t iterations = 4096);

// Fills out with cryptographically secure random bytes; false if the CSPRNG failed.
bool random_bytes(std::span<uint8_t> out);

// Upper bound on client-supplied SCRAM messages; anything longer is malformed.
inline constexpr size_t kMaxMessageLength = 1024;
// Upper bound on iterations we accept from a (possibly hostile) backend.
inline constexpr uint32_t kMaxClientIterations = 1u << 20;

enum class Step {
  continue_exchange,  // output holds the next server/client message to send
  success,            // exchange finished and authenticated; output may hold a final message
  failure,            // wrong password (or unknown user): answer 28P01
  malformed,          // message does not follow the protocol: answer 08P01
};

// One server-side conversation. If verifier is null the user is unknown: the exchange
// is carried out with a mock salt derived from (mock_secret, username), so a client
// cannot tell unknown users from wrong passwords, and it always ends in failure.
class ServerExchange {
 public:
  ServerExchange(const Verifier* verifier, std::string_view username, const Key& mock_secret);
  // For tests: use this server nonce (printable, no ',') instead of a random one.
  void set_server_nonce_for_test(std::string nonce);

  // client-first-message -> server-first-message in output.
  Step on_client_first(std::string_view message, std::string& output);
  // client-final-message -> server-final-message ("v=...") in output on success.
  // The proof is compared in constant time.
  Step on_client_final(std::string_view message, std::string& output);

 private:
  Verifier verifier_;
  bool user_known_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string combined_nonce_;
  std::string server_nonce_;
  char gs2_cbind_flag_ = 'n';  // 'n' or 'y' from the client-first-message; c= must echo it
  int stage_ = 0;
};

// One client-side conversation toward PostgreSQL.
class ClientExchange {
 public:
  explicit ClientExchange(std::string password);
  void set_client_nonce_for_test(std::string nonce);
  // For tests (the RFC 7677 vector): send this SCRAM user name instead of an empty one.
  // No ',' or '=' (they would need saslname escaping).
  void set_user_name_for_test(std::string name);

  // "n,,n=,r=<nonce>" (PostgreSQL ignores the SCRAM user name; libpq sends it empty).
  std::string client_first();
  // server-first-message -> client-final-message in output. Rejects a nonce that
  // does not extend ours, iterations outside [1, kMaxClientIterations], bad base64.
  Step on_server_first(std::string_view message, std::string& output);
  // Checks the server signature in constant time: success or failure/malformed.
  Step on_server_final(std::string_view message);

 private:
  std::string password_;
  std::string user_name_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
  Key salted_password_{};
  int stage_ = 0;
};

// "md5" + hex(md5(hex(md5(password + user)) + salt)), the AuthenticationMD5Password answer.
// Empty if OpenSSL cannot compute MD5 (e.g. a FIPS-only provider).
std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::span<const uint8_t, 4> salt);

// Base64 helpers (standard alphabet, with padding). decode returns nullopt on bad input.
std::string base64_encode(std::span<const uint8_t> data);
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);

}  // namespace sluice::protocol::scram
