// SCRAM-SHA-256 and md5: the RFC 7677 vector on both sides, verifiers produced by a
// real PostgreSQL 15, round trips, unknown users, and malformed messages of every kind.
#include "protocol/scram.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <string>
#include <vector>

namespace sluice::protocol::scram {
namespace {

using namespace std::string_literals;

// RFC 7677 section 3.
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Verifiers read from pg_authid.rolpassword of a throwaway PostgreSQL 15.4 cluster
// (initdb, then CREATE ROLE alice LOGIN PASSWORD 'correct horse battery staple' and
// likewise for the others; psql sent the passwords as UTF-8).
constexpr std::string_view kPgAlice =
    "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==$U/C76uw0n8vNV4srMhHHKV+kW6kf63hJnB6byICo8rs=:"
    "wdJt4UioWKNX2t9sr5Tu66fjRBYqr9dFMJytA7TxYrM=";
constexpr std::string_view kPgAlicePassword = "correct horse battery staple";
// 'pässwörd' (NFC, valid UTF-8): SASLprep leaves it unchanged, so raw bytes agree.
constexpr std::string_view kPgCarol =
    "SCRAM-SHA-256$4096:EcGlAKm66wLqmRVXMxo3Hw==$NYRbLCIZNKRtmvzin0hNKwPtTQYkVy848FWG+tDfbrs=:"
    "FqQyzN1dQZHXA5NwrjaJaFftyp5nbkVt2RdLcXhXLn8=";
constexpr std::string_view kPgCarolPassword = "p\xc3\xa4ssw\xc3\xb6rd";
// 'a b': ASCII is used as is (no mapping of the space).
constexpr std::string_view kPgDave =
    "SCRAM-SHA-256$4096:yz+JH85R8Hg2jYgkciFbRg==$FtwMbKhCphu7hDhw26HzX+oT7ZLCsqxtSaiA0dxWIKM=:"
    "ZLzU87K9y+FBoawDgVsGNAuSMaTzbZZtNApDtFt3SRk=";

// An exchange with kPgAlice computed independently with Python's hashlib/hmac
// (hashlib.pbkdf2_hmac('sha256', pw, salt, 4096), then RFC 5802's formulas) for
// client nonce kAliceClientNonce and server nonce kAliceServerNonce.
constexpr std::string_view kAliceClientNonce = "cliNonce+1234567890abcd";
constexpr std::string_view kAliceServerNonce = "srvNonce/ABCDEFGHIJKLMNO";
constexpr std::string_view kAliceServerFirst =
    "r=cliNonce+1234567890abcdsrvNonce/ABCDEFGHIJKLMNO,s=ZvUT1QagjthtcF8TpihHiA==,i=4096";
constexpr std::string_view kAliceClientFinal =
    "c=biws,r=cliNonce+1234567890abcdsrvNonce/ABCDEFGHIJKLMNO,"
    "p=DPhMOOtfb7PfTp6mFNNkYi1v0L+4MMlXOF2M/gVB/QQ=";
constexpr std::string_view kAliceServerFinal = "v=HaqLTrB43RUteE9g2iolOw/go2EptJUUV8pqfVFqLSs=";

const Key kMockSecret = [] {
  Key key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  return key;
}();

std::vector<uint8_t> bytes(std::string_view text) { return {text.begin(), text.end()}; }

Verifier parse_or_die(std::string_view text) {
  auto verifier = parse_verifier(text);
  EXPECT_TRUE(verifier.has_value()) << text;
  return verifier.value_or(Verifier{});
}

Verifier rfc_verifier() {
  auto salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
  return make_verifier("pencil", 4096, salt.value());
}

// An independent SCRAM client computation (OpenSSL directly, not the code under test),
// to craft client-final-messages the ClientExchange never sends (other gs2 headers,
// extensions before the proof).
std::string proof_for(std::string_view password, std::span<const uint8_t> salt, int iterations,
                      std::string_view auth_message) {
  uint8_t salted[32], client_key[32], stored_key[32], signature[32], proof[32];
  unsigned int length = 0;
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), 32, salted);
  HMAC(EVP_sha256(), salted, 32, reinterpret_cast<const uint8_t*>("Client Key"), 10, client_key, &length);
  SHA256(client_key, 32, stored_key);
  HMAC(EVP_sha256(), stored_key, 32, reinterpret_cast<const uint8_t*>(auth_message.data()),
       auth_message.size(), signature, &length);
  for (int i = 0; i < 32; ++i) proof[i] = client_key[i] ^ signature[i];
  return base64_encode(std::span<const uint8_t>(proof, 32));
}

// A server exchange with a fixed server nonce ("SERVERNONCE"), to be driven up to the
// point under test; the client side is crafted by the test.
struct ServerUnderTest {
  explicit ServerUnderTest(const Verifier* verifier, std::string_view user = "alice")
      : exchange(verifier, user, kMockSecret) {
    exchange.set_server_nonce_for_test("SERVERNONCE");
  }
  ServerExchange exchange;
  std::string output;
};

constexpr std::string_view kClientFirst = "n,,n=,r=clientnonce";

// A correct client-final for kClientFirst (bare "n=,r=clientnonce") given a server-first.
std::string signed_final(std::string_view password, const Verifier& verifier, std::string_view server_first,
                         std::string_view without_proof, std::string_view bare = "n=,r=clientnonce") {
  std::string auth_message = std::string(bare) + "," + std::string(server_first) + "," + std::string(without_proof);
  return std::string(without_proof) + ",p=" +
         proof_for(password, verifier.salt, static_cast<int>(verifier.iterations), auth_message);
}

// --- base64

TEST(Scram, Base64Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(bytes(plain)), encoded);
    auto decoded = base64_decode(encoded);
    ASSERT_TRUE(decoded.has_value()) << encoded;
    EXPECT_EQ(*decoded, bytes(plain));
  }
  std::vector<uint8_t> all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(base64_decode(base64_encode(all)).value(), all);
}

TEST(Scram, Base64RejectsBadInput) {
  for (std::string_view bad : {"Z", "Zg", "Zg=", "Zm9vY", "Z===", "====", "Zg==Zg==", "Z=g=", "Zm=v",
                               "Zm9v\n", " Zm9v", "Zm9-", "Zm9_", "Zh==", "Zm9="}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(base64_decode("Zm\0v"s).has_value());
  EXPECT_FALSE(base64_decode("Zm\xc3\xa9"s).has_value());
}

// --- the RFC 7677 vector

TEST(Scram, Rfc7677Client) {
  ClientExchange client("pencil");
  client.set_client_nonce_for_test(std::string(kRfcClientNonce));
  client.set_user_name_for_test("user");
  EXPECT_EQ(client.client_first(), kRfcClientFirst);
  std::string client_final;
  ASSERT_EQ(client.on_server_first(kRfcServerFirst, client_final), Step::continue_exchange);
  EXPECT_EQ(client_final, kRfcClientFinal);
  EXPECT_EQ(client.on_server_final(kRfcServerFinal), Step::success);
}

TEST(Scram, Rfc7677Server) {
  const Verifier verifier = rfc_verifier();
  ServerExchange server(&verifier, "user", kMockSecret);
  server.set_server_nonce_for_test(std::string(kRfcServerNonce));
  std::string output;
  ASSERT_EQ(server.on_client_first(kRfcClientFirst, output), Step::continue_exchange);
  EXPECT_EQ(output, kRfcServerFirst);
  ASSERT_EQ(server.on_client_final(kRfcClientFinal, output), Step::success);
  EXPECT_EQ(output, kRfcServerFinal);
}

TEST(Scram, Rfc7677ClientRejectsForgedServerSignature) {
  ClientExchange client("pencil");
  client.set_client_nonce_for_test(std::string(kRfcClientNonce));
  client.set_user_name_for_test("user");
  client.client_first();
  std::string client_final;
  ASSERT_EQ(client.on_server_first(kRfcServerFirst, client_final), Step::continue_exchange);
  // Last base64 digit changed: a different, well-formed signature.
  EXPECT_EQ(client.on_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G0="), Step::failure);
}

// --- verifiers

TEST(Scram, PostgresVerifiersParseAndRoundTrip) {
  for (std::string_view text : {kPgAlice, kPgCarol, kPgDave}) {
    auto verifier = parse_verifier(text);
    ASSERT_TRUE(verifier.has_value()) << text;
    EXPECT_EQ(verifier->iterations, 4096u);
    EXPECT_EQ(verifier->salt.size(), 16u);
    EXPECT_EQ(format_verifier(*verifier), text);
  }
}

TEST(Scram, MakeVerifierMatchesPostgres) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {kPgAlicePassword, kPgAlice}, {kPgCarolPassword, kPgCarol}, {"a b", kPgDave}};
  for (auto [password, text] : cases) {
    const Verifier pg = parse_or_die(text);
    EXPECT_EQ(format_verifier(make_verifier(password, pg.iterations, pg.salt)), text);
  }
}

TEST(Scram, MakeVerifierWithRandomSalt) {
  const Verifier a = make_verifier("secret");
  const Verifier b = make_verifier("secret", 1000);
  EXPECT_EQ(a.iterations, 4096u);
  EXPECT_EQ(b.iterations, 1000u);
  EXPECT_EQ(a.salt.size(), 16u);
  EXPECT_NE(a.salt, b.salt);
  EXPECT_NE(a.stored_key, b.stored_key);
  auto parsed = parse_verifier(format_verifier(a));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->salt, a.salt);
  EXPECT_EQ(parsed->stored_key, a.stored_key);
  EXPECT_EQ(parsed->server_key, a.server_key);
}

TEST(Scram, ParseVerifierRejects) {
  const std::string key = "U/C76uw0n8vNV4srMhHHKV+kW6kf63hJnB6byICo8rs=";
  const std::string keys = "$" + key + ":" + key;
  const std::string bad[] = {
      "",
      "SCRAM-SHA-256$",
      "scram-sha-256$4096:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-1$4096:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "md5e9b7072d7c7ccc7b5f9a7b7d60c9a2f9",
      "SCRAM-SHA-256$0:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$-1:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$+4096:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$ 4096:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$4096x:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$abc:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$2147483648:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$4294967297:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$99999999999999999999:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$4096:" + keys,                                   // empty salt
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA=" + keys,            // bad padding
      "SCRAM-SHA-256$4096:ZvUT1Qag!thtcF8TpihHiA==" + keys,           // bad character
      "SCRAM-SHA-256$4096" + keys,                                    // no salt field
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==$" + key,           // one key
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==$" + key + ":",
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==$:" + key,
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==$AAAA:" + key,      // 3-byte key
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==$" + key + ":" + key + "AAAA",  // 35 bytes
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==$" + key + ":" + key + ":" + key,
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==$" + key + ":" + key + "$x",
      "SCRAM-SHA-256$4096:1:ZvUT1QagjthtcF8TpihHiA==" + keys,
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==" + keys + " ",
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==" + keys + "\n",
      "SCRAM-SHA-256$4096:ZvUT1QagjthtcF8TpihHiA==\0"s + keys,
      // Longer than 2048 characters (a 1500-byte salt, otherwise well formed).
      "SCRAM-SHA-256$4096:" + base64_encode(std::vector<uint8_t>(1500, 7)) + keys,
  };
  for (const std::string& text : bad) EXPECT_FALSE(parse_verifier(text).has_value()) << text;
  // The largest PostgreSQL accepts (an int) is fine.
  EXPECT_TRUE(parse_verifier("SCRAM-SHA-256$2147483647:ZvUT1QagjthtcF8TpihHiA==" + keys).has_value());
  // Every truncation of a valid verifier is rejected.
  for (size_t n = 0; n < kPgAlice.size(); ++n) {
    EXPECT_FALSE(parse_verifier(kPgAlice.substr(0, n)).has_value()) << n;
  }
}

// --- server against independent client computations

TEST(Scram, ServerVerifiesProofAgainstPostgresVerifier) {
  const Verifier verifier = parse_or_die(kPgAlice);
  ServerExchange server(&verifier, "alice", kMockSecret);
  server.set_server_nonce_for_test(std::string(kAliceServerNonce));
  std::string output;
  ASSERT_EQ(server.on_client_first("n,,n=,r=" + std::string(kAliceClientNonce), output),
            Step::continue_exchange);
  EXPECT_EQ(output, kAliceServerFirst);
  ASSERT_EQ(server.on_client_final(kAliceClientFinal, output), Step::success);
  EXPECT_EQ(output, kAliceServerFinal);
}

TEST(Scram, ClientMatchesIndependentComputation) {
  ClientExchange client(std::string{kPgAlicePassword});
  client.set_client_nonce_for_test(std::string(kAliceClientNonce));
  EXPECT_EQ(client.client_first(), "n,,n=,r=" + std::string(kAliceClientNonce));
  std::string output;
  ASSERT_EQ(client.on_server_first(kAliceServerFirst, output), Step::continue_exchange);
  EXPECT_EQ(output, kAliceClientFinal);
  EXPECT_EQ(client.on_server_final(kAliceServerFinal), Step::success);
}

TEST(Scram, ServerAcceptsGs2FlagY) {
  const Verifier verifier = parse_or_die(kPgAlice);
  ServerUnderTest server(&verifier);
  const std::string server_first = "r=clientnonceSERVERNONCE,s=ZvUT1QagjthtcF8TpihHiA==,i=4096";
  ASSERT_EQ(server.exchange.on_client_first("y,,n=,r=clientnonce", server.output), Step::continue_exchange);
  EXPECT_EQ(server.output, server_first);
  const std::string final = signed_final(kPgAlicePassword, verifier, server_first, "c=eSws,r=clientnonceSERVERNONCE");
  EXPECT_EQ(server.exchange.on_client_final(final, server.output), Step::success);
  EXPECT_TRUE(server.output.starts_with("v="));
}

TEST(Scram, ServerChannelBindingMustEchoTheGs2Header) {
  const Verifier verifier = parse_or_die(kPgAlice);
  const std::string server_first = "r=clientnonceSERVERNONCE,s=ZvUT1QagjthtcF8TpihHiA==,i=4096";
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"y,,n=,r=clientnonce", "c=biws"}, {"n,,n=,r=clientnonce", "c=eSws"},
      {"n,,n=,r=clientnonce", "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws"}, {"n,,n=,r=clientnonce", "c="},
      {"n,,n=,r=clientnonce", "c=biws="}, {"n,,n=,r=clientnonce", "c=bi"}};
  for (auto [first, binding] : cases) {
    ServerUnderTest server(&verifier);
    ASSERT_EQ(server.exchange.on_client_first(first, server.output), Step::continue_exchange);
    const std::string final = signed_final(kPgAlicePassword, verifier, server_first,
                                           std::string(binding) + ",r=clientnonceSERVERNONCE");
    EXPECT_EQ(server.exchange.on_client_final(final, server.output), Step::malformed) << first << " " << binding;
    EXPECT_TRUE(server.output.empty());
  }
}

TEST(Scram, ServerIgnoresWellFormedExtensions) {
  // As PostgreSQL: optional extensions after the client nonce and before the proof are
  // skipped; the latter are part of AuthMessage and so covered by the proof.
  const Verifier verifier = parse_or_die(kPgAlice);
  ServerUnderTest server(&verifier);
  ASSERT_EQ(server.exchange.on_client_first("n,,n=someone,r=clientnonce,x=1,Y=a=b", server.output),
            Step::continue_exchange);
  const std::string without_proof = "c=biws,r=clientnonceSERVERNONCE,z=zz,q=";
  const std::string final = signed_final(kPgAlicePassword, verifier, server.output, without_proof,
                                         "n=someone,r=clientnonce,x=1,Y=a=b");
  EXPECT_EQ(server.exchange.on_client_final(final, server.output), Step::success);
}

TEST(Scram, ServerRejectsProofOverDifferentExtensions) {
  // The proof signs the extensions: dropping one after signing makes it a wrong proof.
  const Verifier verifier = parse_or_die(kPgAlice);
  ServerUnderTest server(&verifier);
  ASSERT_EQ(server.exchange.on_client_first(kClientFirst, server.output), Step::continue_exchange);
  std::string final = signed_final(kPgAlicePassword, verifier, server.output, "c=biws,r=clientnonceSERVERNONCE,z=zz");
  final.erase(final.find(",z=zz"), 5);
  EXPECT_EQ(server.exchange.on_client_final(final, server.output), Step::failure);
}

// --- client <-> server

struct RoundTrip {
  Step server_first_step;
  Step server_final_step;
  Step client_final_step;
  std::string server_first;
};

RoundTrip run_exchange(const Verifier* verifier, std::string_view user, std::string password,
                       const Key& mock_secret = kMockSecret) {
  RoundTrip result{};
  ClientExchange client(std::move(password));
  ServerExchange server(verifier, user, mock_secret);
  std::string server_message, client_message;
  result.server_first_step = server.on_client_first(client.client_first(), server_message);
  result.server_first = server_message;
  if (result.server_first_step != Step::continue_exchange) return result;
  EXPECT_EQ(client.on_server_first(server_message, client_message), Step::continue_exchange);
  result.server_final_step = server.on_client_final(client_message, server_message);
  result.client_final_step =
      result.server_final_step == Step::success ? client.on_server_final(server_message) : Step::failure;
  return result;
}

TEST(Scram, RoundTripWithRandomNonces) {
  const Verifier verifier = make_verifier("s3cret-pass", 4096);
  const RoundTrip a = run_exchange(&verifier, "bob", "s3cret-pass");
  EXPECT_EQ(a.server_first_step, Step::continue_exchange);
  EXPECT_EQ(a.server_final_step, Step::success);
  EXPECT_EQ(a.client_final_step, Step::success);
  const RoundTrip b = run_exchange(&verifier, "bob", "s3cret-pass");
  EXPECT_EQ(b.server_final_step, Step::success);
  EXPECT_NE(a.server_first, b.server_first);  // fresh nonces
}

TEST(Scram, ClientFirstHasRandomNonce) {
  ClientExchange a("x"), b("x");
  const std::string first_a = a.client_first(), first_b = b.client_first();
  ASSERT_TRUE(first_a.starts_with("n,,n=,r="));
  const std::string nonce = first_a.substr(8);
  EXPECT_EQ(nonce.size(), 24u);  // 18 random bytes in base64
  EXPECT_EQ(base64_decode(nonce).value_or(std::vector<uint8_t>{}).size(), 18u);
  EXPECT_NE(first_a, first_b);
  EXPECT_EQ(a.client_first(), first_a);  // asking again gives the same message
}

TEST(Scram, ServerNonceIsRandomBase64) {
  const Verifier verifier = parse_or_die(kPgAlice);
  ServerExchange server(&verifier, "alice", kMockSecret);
  std::string output;
  ASSERT_EQ(server.on_client_first("n,,n=,r=abc", output), Step::continue_exchange);
  ASSERT_TRUE(output.starts_with("r=abc"));
  const std::string server_nonce = output.substr(5, output.find(',') - 5);
  EXPECT_EQ(server_nonce.size(), 24u);
  EXPECT_EQ(base64_decode(server_nonce).value_or(std::vector<uint8_t>{}).size(), 18u);
}

TEST(Scram, WrongPasswordFails) {
  const Verifier verifier = make_verifier("right", 4096);
  const RoundTrip result = run_exchange(&verifier, "bob", "wrong");
  EXPECT_EQ(result.server_first_step, Step::continue_exchange);
  EXPECT_EQ(result.server_final_step, Step::failure);
  // Also against a PostgreSQL verifier, and with an empty password.
  const Verifier pg = parse_or_die(kPgAlice);
  EXPECT_EQ(run_exchange(&pg, "alice", "correct horse battery stapl").server_final_step, Step::failure);
  EXPECT_EQ(run_exchange(&pg, "alice", "").server_final_step, Step::failure);
  EXPECT_EQ(run_exchange(&pg, "alice", std::string(kPgAlicePassword)).server_final_step, Step::success);
}

TEST(Scram, NonAsciiPasswordAgainstPostgresVerifier) {
  const Verifier pg = parse_or_die(kPgCarol);
  EXPECT_EQ(run_exchange(&pg, "carol", std::string(kPgCarolPassword)).client_final_step, Step::success);
  EXPECT_EQ(run_exchange(&pg, "carol", "passwort").server_final_step, Step::failure);
}

TEST(Scram, ServerFinalFailureSendsNothing) {
  const Verifier verifier = parse_or_die(kPgAlice);
  ServerUnderTest server(&verifier);
  ASSERT_EQ(server.exchange.on_client_first(kClientFirst, server.output), Step::continue_exchange);
  const std::string final = signed_final("not the password", verifier, server.output, "c=biws,r=clientnonceSERVERNONCE");
  EXPECT_EQ(server.exchange.on_client_final(final, server.output), Step::failure);
  EXPECT_TRUE(server.output.empty());
}

// Returns the "s=...,i=..." part of a server-first-message.
std::string salt_and_iterations(const std::string& server_first) {
  return server_first.substr(server_first.find(",s="));
}

TEST(Scram, UnknownUserLooksLikeAKnownOne) {
  const RoundTrip first = run_exchange(nullptr, "mallory", "guess");
  EXPECT_EQ(first.server_first_step, Step::continue_exchange);
  EXPECT_EQ(first.server_final_step, Step::failure);
  // A plausible server-first: 16-byte salt, the default 4096 iterations.
  const std::string tail = salt_and_iterations(first.server_first);
  ASSERT_TRUE(tail.ends_with(",i=4096")) << tail;
  const std::string salt = tail.substr(3, tail.size() - 3 - 7);
  EXPECT_EQ(base64_decode(salt).value_or(std::vector<uint8_t>{}).size(), 16u) << salt;

  // Stable for the same user name, so a second attempt does not reveal a mock.
  const RoundTrip again = run_exchange(nullptr, "mallory", "other guess");
  EXPECT_EQ(salt_and_iterations(again.server_first), tail);
  EXPECT_EQ(again.server_final_step, Step::failure);
  // Different for another user name and for another mock secret.
  EXPECT_NE(salt_and_iterations(run_exchange(nullptr, "trent", "x").server_first), tail);
  Key other_secret = kMockSecret;
  other_secret[0] ^= 1;
  EXPECT_NE(salt_and_iterations(run_exchange(nullptr, "mallory", "x", other_secret).server_first), tail);
}

TEST(Scram, UnknownUserFailsEvenWithAProofForTheMockSalt) {
  // Whatever the client computes from the mock salt, the stored key is random.
  ServerUnderTest server(nullptr, "mallory");
  ASSERT_EQ(server.exchange.on_client_first(kClientFirst, server.output), Step::continue_exchange);
  const std::string server_first = server.output;
  Verifier mock;
  mock.iterations = 4096;
  mock.salt = base64_decode(server_first.substr(server_first.find(",s=") + 3, 24)).value();
  const std::string final = signed_final("anything", mock, server_first, "c=biws,r=clientnonceSERVERNONCE");
  EXPECT_EQ(server.exchange.on_client_final(final, server.output), Step::failure);
  EXPECT_TRUE(server.output.empty());
}

TEST(Scram, UnknownUserStillReportsMalformedMessages) {
  ServerUnderTest bad_first(nullptr, "mallory");
  EXPECT_EQ(bad_first.exchange.on_client_first("p=tls-server-end-point,,n=,r=abc", bad_first.output),
            Step::malformed);
  ServerUnderTest bad_final(nullptr, "mallory");
  ASSERT_EQ(bad_final.exchange.on_client_first(kClientFirst, bad_final.output), Step::continue_exchange);
  EXPECT_EQ(bad_final.exchange.on_client_final("c=biws,r=clientnonceSERVERNONCE,p=AAAA", bad_final.output),
            Step::malformed);
}

// --- malformed client messages

TEST(Scram, ServerRejectsMalformedClientFirst) {
  const Verifier verifier = parse_or_die(kPgAlice);
  const std::string bad[] = {
      "",
      "n",
      "n,",
      "n,,",
      "n,,n=",
      "n,,n=,",
      "n,,n=,r=",                              // empty nonce
      "n,,n=,r",
      "n,,r=abc",                              // no user name attribute
      "n,,n=,s=abc",
      "n,,n=user r=abc",
      "n,,n=,r=abc,",                          // trailing comma
      "n,,n=,r=abc,,",
      "n,,n=,r=abc,=x",
      "n,,n=,r=abc,1=x",
      "n,,n=,r=abc,xx=1",
      "n,,n=,r=abc,x",
      "n,,n=,r=ab c",                          // nonce not printable
      "n,,n=,r=ab\x01" "c",
      "n,,n=,r=ab\x7f",
      "n,,n=,r=ab\xc3\xa9",
      "n,,n=,r=ab\0c"s,                        // NUL
      "\0,,n=,r=abc"s,
      "n,,n=,r=abc\0"s,
      "p=tls-server-end-point,,n=,r=abc",      // channel binding requested
      "p,,n=,r=abc",
      "x,,n=,r=abc",
      "N,,n=,r=abc",
      " n,,n=,r=abc",
      "n ,,n=,r=abc",
      "n,a=bob,n=,r=abc",                      // authzid
      "n,a=,n=,r=abc",
      "n,x,n=,r=abc",
      "n,,m=ext,n=,r=abc",                     // mandatory extension
      "n,,,n=,r=abc",
      "biws",
      "n,,n=,r=" + std::string(kMaxMessageLength, 'a'),   // too long
      std::string(100000, 'n'),
  };
  for (const std::string& message : bad) {
    ServerExchange server(&verifier, "alice", kMockSecret);
    std::string output = "stale";
    EXPECT_EQ(server.on_client_first(message, output), Step::malformed) << message;
    EXPECT_TRUE(output.empty());
    // The exchange is over: nothing more is accepted.
    EXPECT_EQ(server.on_client_final(kAliceClientFinal, output), Step::malformed);
  }
  // Just inside the limit is fine.
  ServerExchange server(&verifier, "alice", kMockSecret);
  std::string output;
  const std::string longest = "n,,n=,r=" + std::string(kMaxMessageLength - 8, 'a');
  EXPECT_EQ(server.on_client_first(longest, output), Step::continue_exchange);
}

TEST(Scram, ServerRejectsMalformedClientFinal) {
  const Verifier verifier = parse_or_die(kPgAlice);
  const std::string nonce(kAliceClientNonce.data(), kAliceClientNonce.size());
  const std::string combined = nonce + std::string(kAliceServerNonce);
  const std::string proof = "DPhMOOtfb7PfTp6mFNNkYi1v0L+4MMlXOF2M/gVB/QQ=";
  const std::string proof31 = base64_encode(std::vector<uint8_t>(31, 1));
  const std::string proof33 = base64_encode(std::vector<uint8_t>(33, 1));
  const std::string bad[] = {
      "",
      "c=biws",
      "c=biws,",
      "c=biws,r=" + combined,
      "c=biws,r=" + combined + ",",
      "c=biws,r=" + combined + ",p=",
      "c=biws,r=" + combined + ",p=" + proof31,          // proof too short
      "c=biws,r=" + combined + ",p=" + proof33,          // proof too long
      "c=biws,r=" + combined + ",p=" + proof.substr(0, 43),
      "c=biws,r=" + combined + ",p=" + proof + "=",
      "c=biws,r=" + combined + ",p=" + proof.substr(0, 42) + "!=",
      "c=biws,r=" + combined + ",p=" + proof + ",",      // trailing comma
      "c=biws,r=" + combined + ",p=" + proof + ",x=1",   // proof not last
      "c=biws,r=" + combined + ",p=" + proof + "\0"s,
      "c=biws,r=" + combined + ",x,p=" + proof,
      "c=biws,r=" + nonce + ",p=" + proof,               // client nonce only
      "c=biws,r=" + combined + "x,p=" + proof,           // nonce extended
      "c=biws,r=" + combined.substr(1) + ",p=" + proof,
      "c=biws,r=,p=" + proof,
      "c=biws,p=" + proof,                                // nonce missing
      "r=" + combined + ",c=biws,p=" + proof,             // order swapped
      "r=" + combined + ",p=" + proof,                    // binding missing
      "c=biws,c=biws,r=" + combined + ",p=" + proof,
      "c=biws,r=" + combined + ",p=" + proof + std::string(kMaxMessageLength, 'A'),
      "c=biws,r=" + combined + ",x=" + std::string(kMaxMessageLength, 'A') + ",p=" + proof,  // too long
      "p=" + proof,
      "\0"s,
  };
  for (const std::string& message : bad) {
    ServerExchange server(&verifier, "alice", kMockSecret);
    server.set_server_nonce_for_test(std::string(kAliceServerNonce));
    std::string output;
    ASSERT_EQ(server.on_client_first("n,,n=,r=" + nonce, output), Step::continue_exchange);
    EXPECT_EQ(server.on_client_final(message, output), Step::malformed) << message;
    EXPECT_TRUE(output.empty());
  }
}

TEST(Scram, ServerRejectsEveryTruncationOfTheFinal) {
  const Verifier verifier = parse_or_die(kPgAlice);
  for (size_t n = 0; n < kAliceClientFinal.size(); ++n) {
    ServerExchange server(&verifier, "alice", kMockSecret);
    server.set_server_nonce_for_test(std::string(kAliceServerNonce));
    std::string output;
    ASSERT_EQ(server.on_client_first("n,,n=,r=" + std::string(kAliceClientNonce), output), Step::continue_exchange);
    EXPECT_EQ(server.on_client_final(kAliceClientFinal.substr(0, n), output), Step::malformed) << n;
  }
}

TEST(Scram, ServerRejectsOutOfOrderCalls) {
  const Verifier verifier = parse_or_die(kPgAlice);
  std::string output;
  ServerExchange final_first(&verifier, "alice", kMockSecret);
  EXPECT_EQ(final_first.on_client_final(kAliceClientFinal, output), Step::malformed);
  EXPECT_EQ(final_first.on_client_first(kClientFirst, output), Step::malformed);

  ServerExchange twice(&verifier, "alice", kMockSecret);
  twice.set_server_nonce_for_test(std::string(kAliceServerNonce));
  ASSERT_EQ(twice.on_client_first("n,,n=,r=" + std::string(kAliceClientNonce), output), Step::continue_exchange);
  EXPECT_EQ(twice.on_client_first("n,,n=,r=" + std::string(kAliceClientNonce), output), Step::malformed);
  EXPECT_EQ(twice.on_client_final(kAliceClientFinal, output), Step::malformed);

  ServerExchange replay(&verifier, "alice", kMockSecret);
  replay.set_server_nonce_for_test(std::string(kAliceServerNonce));
  ASSERT_EQ(replay.on_client_first("n,,n=,r=" + std::string(kAliceClientNonce), output), Step::continue_exchange);
  ASSERT_EQ(replay.on_client_final(kAliceClientFinal, output), Step::success);
  EXPECT_EQ(replay.on_client_final(kAliceClientFinal, output), Step::malformed);
}

// --- malformed server messages (the backend is untrusted too)

TEST(Scram, ClientRejectsMalformedServerFirst) {
  const std::string ours = "clientnonce";
  const std::string salt = "ZvUT1QagjthtcF8TpihHiA==";
  const std::string bad[] = {
      "",
      "r=clientnonce",
      "r=clientnonce,s=" + salt + ",i=4096",                  // nonce not extended
      "r=clientnonc,s=" + salt + ",i=4096",
      "r=Clientnoncexyz,s=" + salt + ",i=4096",               // does not start with ours
      "r=xyzclientnonce,s=" + salt + ",i=4096",
      "r=clientnonce x,s=" + salt + ",i=4096",                // not printable
      "r=clientnonce\x01,s=" + salt + ",i=4096",
      "r=clientnoncexyz,i=4096",                              // salt missing
      "r=clientnoncexyz,s=" + salt,                           // iterations missing
      "r=clientnoncexyz,s=" + salt + ",",
      "r=clientnoncexyz,s=,i=4096",                           // empty salt
      "r=clientnoncexyz,s=ZvUT1QagjthtcF8TpihHiA=,i=4096",    // bad base64
      "r=clientnoncexyz,s=ZvUT1Qag*thtcF8TpihHiA==,i=4096",
      "r=clientnoncexyz,s=" + salt + ",i=0",
      "r=clientnoncexyz,s=" + salt + ",i=-1",
      "r=clientnoncexyz,s=" + salt + ",i=+4096",
      "r=clientnoncexyz,s=" + salt + ",i= 4096",
      "r=clientnoncexyz,s=" + salt + ",i=4096 ",
      "r=clientnoncexyz,s=" + salt + ",i=4096x",
      "r=clientnoncexyz,s=" + salt + ",i=0x1000",
      "r=clientnoncexyz,s=" + salt + ",i=",
      "r=clientnoncexyz,s=" + salt + ",i=" + std::to_string(kMaxClientIterations + 1),
      "r=clientnoncexyz,s=" + salt + ",i=4294967296",
      "r=clientnoncexyz,s=" + salt + ",i=99999999999999999999999",
      "r=clientnoncexyz,s=" + salt + ",i=4096,x=1",           // extensions are not sent by PostgreSQL
      "m=ext,r=clientnoncexyz,s=" + salt + ",i=4096",
      "s=" + salt + ",r=clientnoncexyz,i=4096",               // order swapped
      "r=clientnoncexyz,i=4096,s=" + salt,
      "r=clientnoncexyz,s=" + salt + ",i=4096\0"s,
      "e=other-error",
      // A huge nonce from a hostile backend (pgbouncer CVE-2026-6665 class).
      "r=clientnonce" + std::string(100000, 'x') + ",s=" + salt + ",i=4096",
      // A salt over the limit.
      "r=clientnoncexyz,s=" + base64_encode(std::vector<uint8_t>(1025, 1)) + ",i=4096",
  };
  for (const std::string& message : bad) {
    ClientExchange client("pw");
    client.set_client_nonce_for_test(ours);
    client.client_first();
    std::string output = "stale";
    EXPECT_EQ(client.on_server_first(message, output), Step::malformed) << message;
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(client.on_server_final(kRfcServerFinal), Step::malformed);
  }
  // One iteration and a 1-byte salt are acceptable.
  ClientExchange client("pw");
  client.set_client_nonce_for_test(ours);
  client.client_first();
  std::string output;
  EXPECT_EQ(client.on_server_first("r=clientnoncexyz,s=AA==,i=1", output), Step::continue_exchange);
}

TEST(Scram, ClientRejectsMalformedServerFinal) {
  const std::string sig31 = "v=" + base64_encode(std::vector<uint8_t>(31, 1));
  const std::string sig33 = "v=" + base64_encode(std::vector<uint8_t>(33, 1));
  const std::string good(kRfcServerFinal);
  const std::pair<std::string, Step> cases[] = {
      {"", Step::malformed},
      {"v", Step::malformed},
      {"v=", Step::malformed},
      {sig31, Step::malformed},
      {sig33, Step::malformed},
      {good + ",x=1", Step::malformed},
      {good + ",", Step::malformed},
      {good + "\0"s, Step::malformed},
      {good.substr(0, good.size() - 1), Step::malformed},
      {"x=" + good.substr(2), Step::malformed},
      {"V=" + good.substr(2), Step::malformed},
      {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4", Step::malformed},
      {"v=" + std::string(kMaxMessageLength, 'A'), Step::malformed},
      {"e=invalid-proof", Step::failure},
      {"e=other-error", Step::failure},
      {"e=", Step::failure},
      {"v=" + base64_encode(std::vector<uint8_t>(32, 0)), Step::failure},
      {good, Step::success},
  };
  for (const auto& [message, expected] : cases) {
    ClientExchange client("pencil");
    client.set_client_nonce_for_test(std::string(kRfcClientNonce));
    client.set_user_name_for_test("user");
    client.client_first();
    std::string output;
    ASSERT_EQ(client.on_server_first(kRfcServerFirst, output), Step::continue_exchange);
    EXPECT_EQ(client.on_server_final(message), expected) << message;
    EXPECT_EQ(client.on_server_final(good), Step::malformed);  // nothing after the end
  }
}

TEST(Scram, ClientRejectsOutOfOrderCalls) {
  std::string output;
  ClientExchange no_first("pencil");
  EXPECT_EQ(no_first.on_server_first(kRfcServerFirst, output), Step::malformed);
  ClientExchange early_final("pencil");
  early_final.client_first();
  EXPECT_EQ(early_final.on_server_final(kRfcServerFinal), Step::malformed);
  EXPECT_EQ(early_final.on_server_first(kRfcServerFirst, output), Step::malformed);
}

// --- md5

TEST(Scram, Md5PasswordResponseKnownAnswer) {
  // Derived with Python's hashlib:
  //   h = lambda b: hashlib.md5(b).hexdigest()
  //   'md5' + h(h(b'secret' + b'alice').encode() + bytes([1, 2, 0xfe, 0xff]))
  const std::array<uint8_t, 4> salt{0x01, 0x02, 0xfe, 0xff};
  EXPECT_EQ(md5_password_response("alice", "secret", salt), "md5e9b7072d7c7ccc7b5f9a7b7d60c9a2f9");
  // The salt and the user name both matter.
  const std::array<uint8_t, 4> other_salt{0x01, 0x02, 0xfe, 0xfe};
  EXPECT_NE(md5_password_response("alice", "secret", other_salt), "md5e9b7072d7c7ccc7b5f9a7b7d60c9a2f9");
  EXPECT_NE(md5_password_response("alicf", "secret", salt), "md5e9b7072d7c7ccc7b5f9a7b7d60c9a2f9");
}

}  // namespace
}  // namespace sluice::protocol::scram

namespace sluice::protocol::scram {
namespace {

// The client caches salted passwords per thread; the key must include the password,
// or a wrong password would reuse the right one's salted password after a login.
TEST(Scram, ClientCacheNeverMixesPasswordsWithTheSameSalt) {
  const Verifier verifier = make_verifier("right-password", 4096);
  const Key mock{};
  for (const char* password : {"right-password", "wrong-password", "right-password", "wrong-password"}) {
    ServerExchange server(&verifier, "u", mock);
    ClientExchange client(password);
    std::string server_first, client_final, server_final;
    ASSERT_EQ(server.on_client_first(client.client_first(), server_first), Step::continue_exchange);
    ASSERT_EQ(client.on_server_first(server_first, client_final), Step::continue_exchange);
    const Step expected = std::string(password) == "right-password" ? Step::success : Step::failure;
    EXPECT_EQ(server.on_client_final(client_final, server_final), expected) << password;
  }
}

}  // namespace
}  // namespace sluice::protocol::scram
