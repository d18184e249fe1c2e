// OIDC token verification (protocol/jwt.h): every pitfall of
// ../shared/reference/jwt-checklist.md as a negative test, with keys generated here
// and tokens signed with OpenSSL; and token login around it (protocol/oidc.h): when
// key sets are fetched, and the verified-token cache.
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "protocol/jwt.h"
#include "protocol/oidc.h"
#include "tests/test_jwt.h"

namespace sluice::protocol::jwt {
namespace {

constexpr int64_t kNow = 1'800'000'000;

using test_jwt::TestKey;

const TestKey& rsa() { static TestKey k = TestKey::make(Algorithm::rs256, "rsa-1"); return k; }
const TestKey& pss() { static TestKey k = TestKey::make(Algorithm::ps256, "pss-1"); return k; }
const TestKey& ec() { static TestKey k = TestKey::make(Algorithm::es256, "ec-1"); return k; }
const TestKey& ed() { static TestKey k = TestKey::make(Algorithm::eddsa, "ed-1"); return k; }

IssuerSettings issuer() {
  IssuerSettings s;
  s.issuer = "https://idp.example";
  s.audience = "sluice";
  s.algorithms = {Algorithm::rs256, Algorithm::ps256, Algorithm::es256, Algorithm::eddsa};
  s.max_lifetime_seconds = 3600;
  return s;
}

KeySet keys() {
  KeySet set;
  std::string error;
  const std::string jwks = "{\"keys\":[" + rsa().jwk() + "," + pss().jwk() + "," + ec().jwk() + "," + ed().jwk() + "]}";
  EXPECT_TRUE(parse_jwks(jwks, issuer().algorithms, set, error)) << error;
  EXPECT_EQ(set.keys.size(), 4u);
  return set;
}

std::string claims(const std::string& extra = "", int64_t iat = kNow - 60, int64_t exp = kNow + 600) {
  return "{\"iss\":\"https://idp.example\",\"aud\":\"sluice\",\"sub\":\"ci-bot\",\"jti\":\"t-1\",\"groups\":[\"agents\",\"ci\"],"
         "\"iat\":" + std::to_string(iat) + ",\"exp\":" + std::to_string(exp) + extra + "}";
}

Verdict check(const std::string& token, const IssuerSettings& s = issuer()) { return verify(token, s, keys(), kNow); }

std::string failure_of(const std::string& token, const IssuerSettings& s = issuer()) {
  const Verdict v = check(token, s);
  EXPECT_EQ(v.reason.find(token), std::string::npos) << "the reason must never echo the token";
  return failure_name(v.failure);
}

TEST(Jwt, TokensOfEveryAcceptedAlgorithmVerify) {
  for (const TestKey* key : {&rsa(), &pss(), &ec(), &ed()}) {
    const Verdict v = check(key->token(claims()));
    ASSERT_TRUE(v.ok()) << algorithm_name(key->algorithm) << ": " << v.reason;
    EXPECT_EQ(v.identity.name, "ci-bot");
    EXPECT_EQ(v.identity.groups, (std::vector<std::string>{"agents", "ci"}));
    EXPECT_EQ(v.identity.token_id, "t-1");
    EXPECT_EQ(v.identity.expires_at, kNow + 600);
  }
}

TEST(Jwt, AlgNoneAndHmacAreRefused) {
  const std::string body = base64url_encode(claims());
  for (const char* alg : {"none", "None", "HS256", "RS512", ""}) {
    const std::string head = base64url_encode(std::string("{\"alg\":\"") + alg + "\",\"kid\":\"rsa-1\"}");
    EXPECT_EQ(failure_of(head + "." + body + "."), "algorithm") << alg;
    EXPECT_EQ(failure_of(head + "." + body + ".c2lnbmF0dXJl"), "algorithm") << alg;
  }
  // HS256 "signed" with the issuer's RSA public key as the HMAC secret (key confusion).
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, rsa().key.get());
  char* pem = nullptr;
  const long pem_length = BIO_get_mem_data(bio, &pem);
  const std::string input = base64url_encode("{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}") + "." + body;
  unsigned char mac[32];
  unsigned int mac_length = 0;
  HMAC(EVP_sha256(), pem, static_cast<int>(pem_length), reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_length);
  BIO_free(bio);
  EXPECT_EQ(failure_of(input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), mac_length))), "algorithm");
}

TEST(Jwt, ZeroAndMisSizedEcdsaSignaturesFail) {
  const std::string input = base64url_encode(ec().header()) + "." + base64url_encode(claims());
  EXPECT_EQ(failure_of(input + ".MAYCAQACAQA"), "signature");  // DER r = s = 0
  EXPECT_EQ(failure_of(input + "." + base64url_encode(std::string(64, '\0'))), "signature");
  std::string good = ec().sign_input(input);
  EXPECT_EQ(failure_of(input + "." + base64url_encode(good.substr(0, 63))), "signature");
  EXPECT_EQ(failure_of(input + "." + base64url_encode(good + "x")), "signature");
}

TEST(Jwt, KidIsOnlyAMapKey) {
  for (const char* kid : {"../../../../dev/null", "' UNION SELECT 'k'--", "rsa-1\\u0000", ""}) {
    const std::string head = "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"" + std::string(kid) + "\"}";
    const std::string f = failure_of(ec().token(claims(), head));
    EXPECT_TRUE(f == "unknown_key" || (std::string(kid).empty() && f == "none")) << kid << ": " << f;
  }
  const std::string head = "{\"alg\":\"ES256\",\"kid\":\"" + std::string(10000, 'k') + "\"}";
  EXPECT_EQ(failure_of(ec().token(claims(), head)), "malformed");
  // The unknown kid is reported (bounded) so the caller can decide on a key-set refresh.
  EXPECT_EQ(check(ec().token(claims(), "{\"alg\":\"ES256\",\"kid\":\"rotated-2\"}")).kid, "rotated-2");
}

TEST(Jwt, KeysCarriedInTheHeaderAreIgnored) {
  const TestKey attacker = TestKey::make(Algorithm::es256, "ec-1");  // same kid as the issuer's key
  const std::string head = "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"jwk\":" + attacker.jwk() +
                           ",\"jku\":\"https://evil.example/jwks\",\"x5u\":\"https://evil.example/x\"}";
  EXPECT_EQ(failure_of(attacker.token(claims(), head)), "signature");
  EXPECT_EQ(failure_of(attacker.token(claims(), "{\"alg\":\"ES256\",\"jwk\":" + attacker.jwk() + "}")), "signature");
}

TEST(Jwt, CriticalExtensionsAndUnexpectedTypesAreRefused) {
  EXPECT_EQ(failure_of(rsa().token(claims(), rsa().header(",\"crit\":[\"exp\"]"))), "header");
  const std::string at = "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\"}";
  EXPECT_EQ(failure_of(rsa().token(claims(), at)), "header");  // an access token where ID-style tokens are expected
  IssuerSettings access = issuer();
  access.token_types = {"at+jwt"};
  EXPECT_EQ(failure_of(rsa().token(claims(), "{\"alg\":\"RS256\",\"typ\":\"application/at+jwt\",\"kid\":\"rsa-1\"}"), access), "none");
  EXPECT_EQ(failure_of(rsa().token(claims()), access), "header");  // and the other way round
  EXPECT_EQ(failure_of(rsa().token(claims(), "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}"), access), "header");
}

TEST(Jwt, TimeClaimsAreRequiredAndChecked) {
  const std::string no_exp = "{\"iss\":\"https://idp.example\",\"aud\":\"sluice\",\"sub\":\"ci-bot\",\"iat\":" + std::to_string(kNow) + "}";
  const std::string no_iat = "{\"iss\":\"https://idp.example\",\"aud\":\"sluice\",\"sub\":\"ci-bot\",\"exp\":" + std::to_string(kNow + 60) + "}";
  EXPECT_EQ(failure_of(rsa().token(no_exp)), "claims");
  EXPECT_EQ(failure_of(rsa().token(no_iat)), "claims");
  EXPECT_EQ(failure_of(rsa().token(claims("", kNow, 4102444800))), "claims");        // exp in 2100: lifetime over the cap
  EXPECT_EQ(failure_of(rsa().token(claims("", kNow - 700, kNow - 100))), "expired");
  EXPECT_EQ(failure_of(rsa().token(claims("", kNow - 700, kNow - 30))), "none");     // within the 60 s leeway
  EXPECT_EQ(failure_of(rsa().token(claims("", kNow + 600, kNow + 900))), "not_yet_valid");  // iat 10 min ahead
  EXPECT_EQ(failure_of(rsa().token(claims(",\"nbf\":" + std::to_string(kNow + 300)))), "not_yet_valid");
  EXPECT_EQ(failure_of(rsa().token(claims(",\"nbf\":\"soon\""))), "claims");
  EXPECT_EQ(failure_of(rsa().token("{\"iss\":\"https://idp.example\",\"aud\":\"sluice\",\"sub\":\"x\",\"iat\":\"1\",\"exp\":1e12}")), "claims");
  EXPECT_EQ(failure_of(rsa().token(claims("", kNow, kNow - 10))), "claims");  // exp before iat
}

TEST(Jwt, IssuerAndAudienceMustBeOurs) {
  std::string other_issuer = claims();
  other_issuer.replace(other_issuer.find("https://idp.example"), 19, "https://idp.example.evil");
  EXPECT_EQ(failure_of(rsa().token(other_issuer)), "issuer");
  // A second trusted issuer's key, claiming the first issuer: its keys are not the first's.
  const TestKey second = TestKey::make(Algorithm::rs256, "second-1");
  EXPECT_EQ(failure_of(second.token(claims(), second.header())), "unknown_key");
  EXPECT_EQ(failure_of(second.token(claims(), "{\"alg\":\"RS256\"}")), "signature");

  std::string other_audience = claims();
  other_audience.replace(other_audience.find("\"sluice\""), 8, "\"grafana\"");
  EXPECT_EQ(failure_of(rsa().token(other_audience)), "audience");
  std::string many = claims(",\"azp\":\"grafana\"");
  many.replace(many.find("\"sluice\""), 8, "[\"grafana\",\"sluice\"]");
  EXPECT_EQ(failure_of(rsa().token(many)), "audience");
  many.replace(many.find("\"azp\":\"grafana\""), 15, "\"azp\":\"sluice\"");
  EXPECT_EQ(failure_of(rsa().token(many)), "none");
}

TEST(Jwt, AnyChangeToTheSignedPartsBreaksTheSignature) {
  const std::string token = ed().token(claims());
  const size_t dot = token.find('.');
  std::string tampered = token;
  tampered.replace(dot + 1, token.find('.', dot + 1) - dot - 1, base64url_encode(claims(",\"admin\":true")));
  EXPECT_EQ(failure_of(tampered), "signature");
}

TEST(Jwt, MalformedTokensFailClosed) {
  const std::string good = rsa().token(claims());
  const std::string head = good.substr(0, good.find('.'));
  EXPECT_EQ(failure_of("not-a-token"), "malformed");
  EXPECT_EQ(failure_of(head + "." + base64url_encode(claims())), "malformed");  // two parts
  EXPECT_EQ(failure_of(good + ".x"), "malformed");                                // four parts
  EXPECT_EQ(failure_of(good + "="), "malformed");                                 // padding
  EXPECT_EQ(failure_of("e30." + good.substr(good.find('.') + 1)), "algorithm");   // header {}
  EXPECT_EQ(failure_of("W10." + good.substr(good.find('.') + 1)), "malformed");   // header []
  EXPECT_EQ(failure_of(std::string(20000, 'a') + "." + good), "malformed");
  // Duplicate members: another parser may read the other value.
  EXPECT_EQ(failure_of(rsa().token(claims(), "{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"rsa-1\"}")), "malformed");
  EXPECT_EQ(failure_of(rsa().token(claims(",\"sub\":\"root\""))), "malformed");
}

TEST(Jwt, IdentityAndGroupsComeFromTheConfiguredClaims) {
  IssuerSettings s = issuer();
  s.identity_claim = "email";
  s.groups_claim = "realm_access.roles";
  Verdict v = check(rsa().token(claims(",\"email\":\"bot@example.com\",\"realm_access\":{\"roles\":[\"dba\"]}")), s);
  ASSERT_TRUE(v.ok()) << v.reason;
  EXPECT_EQ(v.identity.name, "bot@example.com");
  EXPECT_EQ(v.identity.groups, std::vector<std::string>{"dba"});
  EXPECT_EQ(failure_of(rsa().token(claims()), s), "claims");  // no email claim
  EXPECT_EQ(failure_of(rsa().token(claims(",\"email\":\"a\\nb\"")), s), "claims");  // control character
  EXPECT_EQ(failure_of(rsa().token(claims(",\"email\":\"x\",\"realm_access\":{\"roles\":[1]}")), s), "claims");
  EXPECT_TRUE(check(rsa().token(claims(",\"email\":\"x\"")), s).identity.groups.empty());
}

TEST(Jwt, KeySetsKeepOnlyKeysBoundToAnAcceptedAlgorithm) {
  const TestKey small = TestKey::make(Algorithm::rs256, "small", 1024);
  std::string ec_off_curve = ec().jwk();
  const size_t y = ec_off_curve.find("\"y\":\"") + 5;
  ec_off_curve[y] = ec_off_curve[y] == 'A' ? 'B' : 'A';
  const std::string jwks = "{\"keys\":[" + small.jwk() + ",{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}," +
                           rsa().jwk(",\"use\":\"enc\"") + "," + ec_off_curve + "," + pss().jwk() + ",\"junk\"]}";
  KeySet set;
  std::string error;
  ASSERT_TRUE(parse_jwks(jwks, {Algorithm::rs256, Algorithm::es256}, set, error)) << error;
  EXPECT_TRUE(set.keys.empty());
  EXPECT_EQ(set.skipped.size(), 6u);
  // A key bound to PS256 does not verify an RS256 token of the same kid.
  ASSERT_TRUE(parse_jwks("{\"keys\":[" + rsa().jwk().replace(rsa().jwk().find("RS256"), 5, "PS256") + "]}", issuer().algorithms, set, error));
  ASSERT_EQ(set.keys.size(), 1u);
  EXPECT_EQ(verify(rsa().token(claims()), issuer(), set, kNow).failure, Failure::unknown_key);
  EXPECT_FALSE(parse_jwks("{\"keys\":{}}", issuer().algorithms, set, error));
  EXPECT_FALSE(parse_jwks(std::string(300 * 1024, ' '), issuer().algorithms, set, error));
}

TEST(Jwt, UnverifiedIssuerOnlyReadsTheClaims) {
  EXPECT_EQ(unverified_issuer(ed().token(claims())), "https://idp.example");
  EXPECT_EQ(unverified_issuer("a.b.c"), std::nullopt);
}

TEST(Jwt, Base64urlIsStrict) {
  EXPECT_EQ(base64url_decode(base64url_encode("any carnal pleas")), "any carnal pleas");
  EXPECT_EQ(base64url_decode("YQ"), "a");
  EXPECT_EQ(base64url_decode("YR"), std::nullopt);  // non-canonical trailing bits
  EXPECT_EQ(base64url_decode("YQ=="), std::nullopt);
  EXPECT_EQ(base64url_decode("Y+Q"), std::nullopt);
  EXPECT_EQ(base64url_decode("YQ Q"), std::nullopt);
  EXPECT_EQ(base64url_decode("YWJjZ"), std::nullopt);
}


// ---------------------------------------------------------------------------
// Token login (oidc.h)
// ---------------------------------------------------------------------------

std::string test_jwks() { return "{\"keys\":[" + rsa().jwk() + "," + ec().jwk() + "]}"; }

// A fetch that counts its calls and serves `document` (or fails while `fail` is set).
struct FakeIdp {
  std::string document = test_jwks();
  bool fail = false;
  int calls = 0;
  oidc::IssuerKeys::Fetch fetch() {
    return [this](std::string& out, std::string& error) {
      ++calls;
      if (fail) {
        error = "connection refused";
        return false;
      }
      out = document;
      return true;
    };
  }
};

TEST(Oidc, KeySetsAreFetchedWhenDueAndNeverTwiceWithinTheCooldown) {
  FakeIdp idp;
  oidc::IssuerKeys keys(issuer(), oidc::FetchTiming{3600, 30, 10});
  std::string log;
  EXPECT_EQ(keys.keys(), nullptr);
  EXPECT_TRUE(keys.refresh_if_due(0, idp.fetch(), log));
  ASSERT_NE(keys.keys(), nullptr);
  EXPECT_EQ(keys.keys()->keys.size(), 2u);
  EXPECT_NE(log.find("read 2 key(s)"), std::string::npos) << log;
  EXPECT_FALSE(keys.refresh_if_due(10, idp.fetch(), log));  // fresh, nobody asked
  keys.unknown_kid_seen();
  EXPECT_FALSE(keys.refresh_if_due(20, idp.fetch(), log));  // asked, but within the cooldown
  EXPECT_TRUE(keys.refresh_if_due(30, idp.fetch(), log));
  EXPECT_FALSE(keys.refresh_if_due(100, idp.fetch(), log));
  EXPECT_TRUE(keys.refresh_if_due(30 + 3600, idp.fetch(), log));  // too old
  EXPECT_EQ(idp.calls, 3);
}

TEST(Oidc, AThousandRandomKidsCostOneFetch) {
  FakeIdp idp;
  auto keys = std::make_shared<oidc::IssuerKeys>(issuer(), oidc::FetchTiming{3600, 30, 10});
  std::string log;
  keys->refresh_if_due(0, idp.fetch(), log);
  oidc::TokenAuthenticator login({keys});
  const TestKey attacker = TestKey::make(Algorithm::es256, "x");
  for (int i = 0; i < 1000; ++i) {
    const std::string head = "{\"alg\":\"ES256\",\"kid\":\"random-" + std::to_string(i) + "\"}";
    EXPECT_EQ(login.authenticate(attacker.token(claims(), head), kNow).verdict.failure, Failure::unknown_key);
    keys->refresh_if_due(100 + i / 1000, idp.fetch(), log);  // the fetcher runs all along, within one second
  }
  EXPECT_EQ(idp.calls, 2);  // the first read and one refresh
}

TEST(Oidc, AFailedFetchKeepsTheOldKeysAndIsRetried) {
  FakeIdp idp;
  oidc::IssuerKeys keys(issuer(), oidc::FetchTiming{3600, 30, 10});
  std::string log;
  keys.refresh_if_due(0, idp.fetch(), log);
  idp.fail = true;
  EXPECT_TRUE(keys.refresh_if_due(3600, idp.fetch(), log));
  EXPECT_NE(log.find("keeping the keys read before"), std::string::npos) << log;
  ASSERT_NE(keys.keys(), nullptr);
  EXPECT_EQ(keys.keys()->keys.size(), 2u);
  EXPECT_FALSE(keys.refresh_if_due(3605, idp.fetch(), log));
  idp.fail = false;
  idp.document = "{\"keys\": \"not a list\"}";  // a broken document is a failure too
  EXPECT_TRUE(keys.refresh_if_due(3610, idp.fetch(), log));
  EXPECT_EQ(keys.keys()->keys.size(), 2u);
  idp.document = "{\"keys\":[" + ed().jwk() + "]}";
  EXPECT_TRUE(keys.refresh_if_due(3620, idp.fetch(), log));
  EXPECT_EQ(keys.keys()->keys.size(), 1u);
}

TEST(Oidc, TokensAreRefusedUntilTheKeysCanBeRead) {
  FakeIdp idp;
  idp.fail = true;
  auto keys = std::make_shared<oidc::IssuerKeys>(issuer(), oidc::FetchTiming{});
  std::string log;
  keys->refresh_if_due(0, idp.fetch(), log);
  EXPECT_NE(log.find("refused until it can be read"), std::string::npos) << log;
  oidc::TokenAuthenticator login({keys});
  const oidc::TokenLogin result = login.authenticate(rsa().token(claims()), kNow);
  EXPECT_EQ(result.verdict.failure, Failure::unknown_key);
  EXPECT_NE(result.verdict.reason.find("could not be read yet"), std::string::npos);
  EXPECT_EQ(login.authenticate(rsa().token(claims()), kNow).issuer, "https://idp.example");
  std::string other = claims();
  other.replace(other.find("https://idp.example"), 19, "https://other.example");
  EXPECT_EQ(login.authenticate(rsa().token(other), kNow).verdict.failure, Failure::issuer);
}

TEST(Oidc, VerifiedTokensAreCachedUntilTheyExpire) {
  FakeIdp idp;
  auto keys = std::make_shared<oidc::IssuerKeys>(issuer(), oidc::FetchTiming{});
  std::string log;
  keys->refresh_if_due(0, idp.fetch(), log);
  oidc::TokenAuthenticator login({keys}, 2);
  const std::string token = ec().token(claims());
  oidc::TokenLogin first = login.authenticate(token, kNow);
  ASSERT_TRUE(first.verdict.ok()) << first.verdict.reason;
  EXPECT_FALSE(first.cached);
  oidc::TokenLogin again = login.authenticate(token, kNow + 10);
  EXPECT_TRUE(again.cached);
  EXPECT_EQ(again.verdict.identity.name, "ci-bot");
  EXPECT_EQ(again.verdict.identity.groups, first.verdict.identity.groups);
  // After exp the cache forgets it: within the leeway the verifier still takes it,
  // after that refuses it.
  oidc::TokenLogin late = login.authenticate(token, kNow + 601);
  EXPECT_FALSE(late.cached);
  EXPECT_TRUE(late.verdict.ok());
  EXPECT_EQ(login.authenticate(token, kNow + 661).verdict.failure, Failure::expired);
  // A refused token is never remembered; the cache stays within its bound.
  std::string tampered = token;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(login.authenticate(tampered, kNow).verdict.ok());
  EXPECT_FALSE(login.authenticate(tampered, kNow).cached);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(login.authenticate(ec().token(claims(",\"n\":" + std::to_string(i))), kNow).verdict.ok());
  oidc::VerifiedTokens bounded(2);
  for (int i = 0; i < 5; ++i) bounded.remember("token-" + std::to_string(i), {"i", jwt::Identity{}}, 0);
  EXPECT_EQ(bounded.size(), 2u);
}

}  // namespace
}  // namespace sluice::protocol::jwt
