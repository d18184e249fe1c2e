// A test identity provider's signing keys: generated with OpenSSL, published as JWKs,
// signing tokens (RS256, PS256, ES256, EdDSA). Header-only and free of gtest so unit
// tests, integration tests and bench/connect_rate share it; an OpenSSL failure throws.
#pragma once

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "protocol/jwt.h"

namespace sluice::test_jwt {

using protocol::jwt::Algorithm;
using protocol::jwt::algorithm_name;
using protocol::jwt::base64url_encode;

inline void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test identity provider: ") + what + " failed");
}

inline std::string bytes_of_bn(EVP_PKEY* key, const char* param, int pad = 0) {
  BIGNUM* bn = nullptr;
  require(EVP_PKEY_get_bn_param(key, param, &bn) == 1, param);
  std::string out(pad ? static_cast<size_t>(pad) : static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

// A signing key of the test identity provider and its public JWK.
struct TestKey {
  std::shared_ptr<EVP_PKEY> key;
  Algorithm algorithm;
  std::string kid;

  static TestKey make(Algorithm algorithm, std::string kid, int rsa_bits = 2048) {
    EVP_PKEY* k = nullptr;
    switch (algorithm) {
      case Algorithm::rs256:
      case Algorithm::ps256: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits)); break;
      case Algorithm::es256: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
      case Algorithm::eddsa: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"); break;
    }
    require(k != nullptr, "key generation");
    return TestKey{std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free), algorithm, std::move(kid)};
  }

  std::string jwk(const std::string& extra = "") const {
    std::string j = "{\"kid\":\"" + kid + "\"" + extra;
    switch (algorithm) {
      case Algorithm::rs256:
      case Algorithm::ps256:
        j += ",\"kty\":\"RSA\",\"alg\":\"" + std::string(algorithm_name(algorithm)) + "\",\"n\":\"" +
             base64url_encode(bytes_of_bn(key.get(), OSSL_PKEY_PARAM_RSA_N)) + "\",\"e\":\"" +
             base64url_encode(bytes_of_bn(key.get(), OSSL_PKEY_PARAM_RSA_E)) + "\"";
        break;
      case Algorithm::es256:
        j += ",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + base64url_encode(bytes_of_bn(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32)) +
             "\",\"y\":\"" + base64url_encode(bytes_of_bn(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)) + "\"";
        break;
      case Algorithm::eddsa: {
        std::string raw(32, '\0');
        size_t length = raw.size();
        EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(raw.data()), &length);
        j += ",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" + base64url_encode(raw) + "\"";
        break;
      }
    }
    return j + "}";
  }

  std::string sign_input(std::string_view input) const {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    require(EVP_DigestSignInit(md, &pctx, algorithm == Algorithm::eddsa ? nullptr : EVP_sha256(), nullptr, key.get()) == 1,
            "signing");
    if (algorithm == Algorithm::ps256) {
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    size_t length = 0;
    const auto* in = reinterpret_cast<const unsigned char*>(input.data());
    EVP_DigestSign(md, nullptr, &length, in, input.size());
    std::string sig(length, '\0');
    require(EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &length, in, input.size()) == 1, "signing");
    sig.resize(length);
    EVP_MD_CTX_free(md);
    if (algorithm != Algorithm::es256) return sig;
    const auto* der = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(ecdsa);
    return raw;
  }

  std::string header(const std::string& extra = "") const {
    return "{\"alg\":\"" + std::string(algorithm_name(algorithm)) + "\",\"typ\":\"JWT\",\"kid\":\"" + kid + "\"" + extra + "}";
  }

  std::string token(const std::string& claims, const std::string& header_json = "") const {
    const std::string input = base64url_encode(header_json.empty() ? header() : header_json) + "." + base64url_encode(claims);
    return input + "." + base64url_encode(sign_input(input));
  }
};

}  // namespace sluice::test_jwt
