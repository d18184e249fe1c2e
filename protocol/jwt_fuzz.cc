// libFuzzer target: OIDC token verification and key-set parsing (protocol/jwt.h) must
// never crash, hang or leak on any input, and no input may verify: the fuzzer holds
// no private key, so an accepted token would be a forged one. An input with two
// newlines is read as "header JSON \n claims JSON \n signature bytes" and encoded as a
// token, so that the claim checks behind the header are reached; any other input is
// the token itself. Every input is also parsed as a JWKS.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/jwt.h"

namespace jwt = sluice::protocol::jwt;

namespace {

const jwt::KeySet& key_set() {
  static const jwt::KeySet keys = [] {
    jwt::KeySet set;
    for (const char* type : {"EC", "ED25519"}) {
      EVP_PKEY* key = std::string_view(type) == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                                     : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      jwt::Key k;
      k.kid = std::string_view(type) == "EC" ? "ec-1" : "ed-1";
      k.algorithm = std::string_view(type) == "EC" ? jwt::Algorithm::es256 : jwt::Algorithm::eddsa;
      k.public_key = std::shared_ptr<EVP_PKEY>(key, jwt::KeyDeleter{});
      set.keys.push_back(std::move(k));
    }
    return set;
  }();
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  jwt::IssuerSettings issuer;
  issuer.issuer = "https://idp.example";
  issuer.audience = "sluice";
  issuer.algorithms = {jwt::Algorithm::es256, jwt::Algorithm::eddsa, jwt::Algorithm::rs256};
  issuer.groups_claim = "realm.roles";

  std::string token(input);
  const size_t first = input.find('\n');
  const size_t second = first == std::string_view::npos ? first : input.find('\n', first + 1);
  if (second != std::string_view::npos) {
    token = jwt::base64url_encode(input.substr(0, first)) + "." +
            jwt::base64url_encode(input.substr(first + 1, second - first - 1)) + "." +
            jwt::base64url_encode(input.substr(second + 1));
  }
  if (jwt::verify(token, issuer, key_set(), 1'800'000'000).ok()) __builtin_trap();
  (void)jwt::unverified_issuer(token);

  jwt::KeySet parsed;
  std::string error;
  (void)jwt::parse_jwks(input, issuer.algorithms, parsed, error);
  return 0;
}
