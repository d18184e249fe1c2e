#include "protocol/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>

#include "core/base64.h"
#include "core/json.h"

namespace sluice::protocol::jwt {

using core::JsonDocument;
using Node = JsonDocument::Node;

void KeyDeleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

std::optional<Algorithm> algorithm_from_name(std::string_view name) {
  if (name == "RS256") return Algorithm::rs256;
  if (name == "PS256") return Algorithm::ps256;
  if (name == "ES256") return Algorithm::es256;
  if (name == "EdDSA") return Algorithm::eddsa;
  return std::nullopt;
}

const char* algorithm_name(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::rs256: return "RS256";
    case Algorithm::ps256: return "PS256";
    case Algorithm::es256: return "ES256";
    case Algorithm::eddsa: return "EdDSA";
  }
  return "?";
}

const char* failure_name(Failure failure) {
  switch (failure) {
    case Failure::none: return "none";
    case Failure::malformed: return "malformed";
    case Failure::algorithm: return "algorithm";
    case Failure::unknown_key: return "unknown_key";
    case Failure::signature: return "signature";
    case Failure::header: return "header";
    case Failure::issuer: return "issuer";
    case Failure::audience: return "audience";
    case Failure::expired: return "expired";
    case Failure::not_yet_valid: return "not_yet_valid";
    case Failure::claims: return "claims";
  }
  return "?";
}

std::optional<std::string> base64url_decode(std::string_view text) {
  return core::base64::decode(text, core::base64::Variant::url_unpadded);
}

std::string base64url_encode(std::string_view bytes) { return core::base64::encode(bytes, core::base64::Variant::url_unpadded); }

// ---------------------------------------------------------------------------
// Key sets
// ---------------------------------------------------------------------------

namespace {

using BignumPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

std::shared_ptr<EVP_PKEY> adopt(EVP_PKEY* key) { return std::shared_ptr<EVP_PKEY>(key, KeyDeleter{}); }

std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM_BLD* builder) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(builder);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    key = nullptr;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return key ? adopt(key) : nullptr;
}

std::shared_ptr<EVP_PKEY> rsa_key(const std::string& n, const std::string& e) {
  BignumPtr modulus(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr), BN_free);
  BignumPtr exponent(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr), BN_free);
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  std::shared_ptr<EVP_PKEY> key;
  if (modulus && exponent && builder && OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, modulus.get()) == 1 &&
      OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, exponent.get()) == 1)
    key = from_params("RSA", builder);
  OSSL_PARAM_BLD_free(builder);
  return key;
}

std::shared_ptr<EVP_PKEY> p256_key(const std::string& x, const std::string& y) {
  if (x.size() != 32 || y.size() != 32) return nullptr;
  std::string point = "\x04" + x + y;  // uncompressed SEC1 point; fromdata checks it is on the curve
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  std::shared_ptr<EVP_PKEY> key;
  if (builder && OSSL_PARAM_BLD_push_utf8_string(builder, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(builder, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1)
    key = from_params("EC", builder);
  OSSL_PARAM_BLD_free(builder);
  return key;
}

std::shared_ptr<EVP_PKEY> ed25519_key(const std::string& x) {
  if (x.size() != 32) return nullptr;
  EVP_PKEY* key =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size());
  return key ? adopt(key) : nullptr;
}

std::optional<std::string> member_bytes(Node jwk, std::string_view name) {
  const Node n = jwk[name];
  if (!n.is_string()) return std::nullopt;
  return base64url_decode(n.text());
}

// One JWK -> a key bound to one algorithm, or a reason to skip it.
std::optional<Key> parse_jwk(Node jwk, const std::vector<Algorithm>& allowed, std::string& why) {
  if (!jwk.is_object()) {
    why = "not an object";
    return std::nullopt;
  }
  if (Node use = jwk["use"]; use && use.text() != "sig") {
    why = "use is not \"sig\"";
    return std::nullopt;
  }
  const std::string_view kty = jwk["kty"].text();
  std::optional<Algorithm> algorithm;
  if (Node alg = jwk["alg"]) {
    algorithm = algorithm_from_name(alg.text());
    if (!algorithm) {
      why = "alg \"" + std::string(alg.text().substr(0, 16)) + "\" is not an accepted algorithm";
      return std::nullopt;
    }
  }
  Key key;
  if (Node kid = jwk["kid"]) {
    if (!kid.is_string() || kid.text().size() > kMaxKidBytes) {
      why = "kid is not a string of at most 256 bytes";
      return std::nullopt;
    }
    key.kid = std::string(kid.text());
  }
  if (kty == "RSA") {
    if (!algorithm) algorithm = Algorithm::rs256;
    if (*algorithm != Algorithm::rs256 && *algorithm != Algorithm::ps256) why = "alg does not fit an RSA key";
    const auto n = member_bytes(jwk, "n"), e = member_bytes(jwk, "e");
    if (why.empty() && n && e && n->size() <= 2048 && e->size() <= 8) key.public_key = rsa_key(*n, *e);
    if (why.empty() && key.public_key && EVP_PKEY_get_bits(key.public_key.get()) < kMinRsaBits) why = "RSA key shorter than 2048 bits";
  } else if (kty == "EC") {
    if (!algorithm) algorithm = Algorithm::es256;
    if (*algorithm != Algorithm::es256 || jwk["crv"].text() != "P-256") why = "only P-256 keys for ES256 are accepted";
    const auto x = member_bytes(jwk, "x"), y = member_bytes(jwk, "y");
    if (why.empty() && x && y) key.public_key = p256_key(*x, *y);
  } else if (kty == "OKP") {
    if (!algorithm) algorithm = Algorithm::eddsa;
    if (*algorithm != Algorithm::eddsa || jwk["crv"].text() != "Ed25519") why = "only Ed25519 keys for EdDSA are accepted";
    const auto x = member_bytes(jwk, "x");
    if (why.empty() && x) key.public_key = ed25519_key(*x);
  } else {
    why = "key type \"" + std::string(kty.substr(0, 16)) + "\" is not accepted (RSA, EC, OKP)";
  }
  if (why.empty() && !key.public_key) why = "its key material is missing or invalid";
  if (why.empty() && std::find(allowed.begin(), allowed.end(), *algorithm) == allowed.end())
    why = std::string("its algorithm ") + algorithm_name(*algorithm) + " is not on the issuer's list";
  if (!why.empty()) return std::nullopt;
  key.algorithm = *algorithm;
  return key;
}

}  // namespace

bool parse_jwks(std::string_view json, const std::vector<Algorithm>& allowed, KeySet& out, std::string& error) {
  out = KeySet{};
  if (json.size() > kMaxJwksBytes) {
    error = "the key set is larger than 256 KiB";
    return false;
  }
  JsonDocument doc(16);
  if (!doc.load_json(json) || !doc.root()["keys"].is_array()) {
    error = "not a JSON Web Key Set (an object with a \"keys\" array)";
    return false;
  }
  size_t index = 0;
  for (Node jwk = doc.root()["keys"].first(); jwk; jwk = jwk.next(), ++index) {
    if (out.keys.size() >= kMaxKeysPerSet) {
      out.skipped.push_back("keys after the first 64 usable ones");
      break;
    }
    std::string why;
    if (std::optional<Key> key = parse_jwk(jwk, allowed, why)) {
      out.keys.push_back(std::move(*key));
    } else {
      std::string kid(jwk["kid"].text().substr(0, 64));
      out.skipped.push_back("key " + std::to_string(index) + (kid.empty() ? "" : " (kid \"" + kid + "\")") + ": " + why);
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

namespace {

// The three parts of a compact JWS.
struct Parts {
  std::string_view header, payload, signature;
  std::string_view signing_input;  // header.payload
};

std::optional<Parts> split(std::string_view token) {
  const size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
  Parts p;
  p.header = token.substr(0, first);
  p.payload = token.substr(first + 1, second - first - 1);
  p.signature = token.substr(second + 1);
  p.signing_input = token.substr(0, second);
  return p;
}

// A JSON object whose members are all distinct: with duplicates, this parser and the
// issuer's could read different values.
bool load_object(JsonDocument& doc, std::string_view encoded) {
  const std::optional<std::string> json = base64url_decode(encoded);
  if (!json || !doc.load_json(*json) || !doc.root().is_object()) return false;
  // Sorted, not pairwise: a 16 KiB token can hold thousands of members, and this runs
  // before anything is verified.
  std::vector<std::string_view> keys;
  for (Node member = doc.root().first(); member; member = member.next()) keys.push_back(member.key());
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) == keys.end();
}

std::optional<int64_t> numeric_date(Node n) {
  if (!n.is_number()) return std::nullopt;
  const std::string_view text = n.text();
  int64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (i >= 15) return std::nullopt;  // beyond year 30,000,000
    value = value * 10 + (text[i] - '0');
  }
  if (i == 0) return std::nullopt;  // negative or empty
  if (i < text.size() && text[i] == '.') {  // a fraction of a second: allowed, ignored
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9';) ++i;
  }
  if (i != text.size()) return std::nullopt;  // an exponent
  return value;
}

bool plain_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxClaimBytes) return false;
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

Node claim_at_path(Node claims, std::string_view path) {
  Node n = claims;
  while (n && !path.empty()) {
    const size_t dot = path.find('.');
    n = n.is_object() ? n[path.substr(0, dot)] : Node();
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return n;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool verify_signature(const Key& key, std::string_view signing_input, const std::string& signature) {
  std::string der;
  const unsigned char* sig = reinterpret_cast<const unsigned char*>(signature.data());
  size_t sig_length = signature.size();
  if (key.algorithm == Algorithm::es256) {
    // JWS carries r || s, 32 bytes each; OpenSSL verifies DER (and checks 1 <= r, s < n).
    if (signature.size() != 64) return false;
    ECDSA_SIG* ecdsa = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(sig, 32, nullptr);
    BIGNUM* s = BN_bin2bn(sig + 32, 32, nullptr);
    if (ecdsa == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(ecdsa, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(ecdsa);
      return false;
    }
    unsigned char* encoded = nullptr;
    const int length = i2d_ECDSA_SIG(ecdsa, &encoded);
    ECDSA_SIG_free(ecdsa);
    if (length <= 0) return false;
    der.assign(reinterpret_cast<const char*>(encoded), static_cast<size_t>(length));
    OPENSSL_free(encoded);
    sig = reinterpret_cast<const unsigned char*>(der.data());
    sig_length = der.size();
  } else if (key.algorithm == Algorithm::eddsa && signature.size() != 64) {
    return false;
  }
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = md != nullptr &&
            EVP_DigestVerifyInit(md, &pctx, key.algorithm == Algorithm::eddsa ? nullptr : EVP_sha256(), nullptr,
                                 key.public_key.get()) == 1;
  if (ok && key.algorithm == Algorithm::ps256)
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;  // RFC 7518 §3.5: salt = hash size
  if (ok && key.algorithm == Algorithm::rs256) ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  ok = ok && EVP_DigestVerify(md, sig, sig_length, reinterpret_cast<const unsigned char*>(signing_input.data()),
                              signing_input.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

Verdict fail(Failure failure, std::string reason) {
  Verdict v;
  v.failure = failure;
  v.reason = std::move(reason);
  return v;
}

}  // namespace

std::optional<std::string> unverified_issuer(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return std::nullopt;
  const std::optional<Parts> parts = split(token);
  JsonDocument payload(16);
  if (!parts || !load_object(payload, parts->payload) || !payload.root()["iss"].is_string()) return std::nullopt;
  return std::string(payload.root()["iss"].text());
}

Verdict verify(std::string_view token, const IssuerSettings& issuer, const KeySet& keys, int64_t now) {
  if (token.size() > kMaxTokenBytes) return fail(Failure::malformed, "the token is longer than 16 KiB");
  const std::optional<Parts> parts = split(token);
  if (!parts) return fail(Failure::malformed, "the password is not a JWT (three base64url parts separated by dots)");
  JsonDocument header(16), payload(16);
  if (!load_object(header, parts->header)) return fail(Failure::malformed, "the token's header is not a base64url JSON object with distinct members");

  // The header: an algorithm on the issuer's list; nothing else in it is trusted.
  const Node alg = header.root()["alg"];
  const std::optional<Algorithm> algorithm = alg.is_string() ? algorithm_from_name(alg.text()) : std::nullopt;
  if (!algorithm || std::find(issuer.algorithms.begin(), issuer.algorithms.end(), *algorithm) == issuer.algorithms.end())
    return fail(Failure::algorithm, "the token's algorithm is not one issuer \"" + issuer.issuer + "\" is configured to accept");
  if (header.root()["crit"]) return fail(Failure::header, "the token names critical header extensions (crit), which sluice does not implement");
  const Node typ = header.root()["typ"];
  if (typ) {
    std::string type = lower(typ.text());
    if (type.rfind("application/", 0) == 0) type.erase(0, 12);
    if (!typ.is_string() || std::find(issuer.token_types.begin(), issuer.token_types.end(), type) == issuer.token_types.end())
      return fail(Failure::header, "the token's type (typ) is not one issuer \"" + issuer.issuer + "\" is configured to accept");
  } else if (std::find(issuer.token_types.begin(), issuer.token_types.end(), "jwt") == issuer.token_types.end()) {
    return fail(Failure::header, "the token has no type (typ) and issuer \"" + issuer.issuer + "\" requires one");
  }
  std::string kid;
  if (const Node k = header.root()["kid"]) {
    if (!k.is_string() || k.text().size() > kMaxKidBytes) return fail(Failure::malformed, "the token's key id (kid) is not a string of at most 256 bytes");
    kid = std::string(k.text());
  }

  if (!load_object(payload, parts->payload)) return fail(Failure::malformed, "the token's claims are not a base64url JSON object with distinct members");
  const Node claims = payload.root();
  if (!claims["iss"].is_string() || claims["iss"].text() != issuer.issuer)
    return fail(Failure::issuer, "the token was not issued by \"" + issuer.issuer + "\"");

  // The key: by kid among this issuer's keys bound to the token's algorithm; a token
  // without kid may use any of them.
  const std::optional<std::string> signature = base64url_decode(parts->signature);
  if (!signature) return fail(Failure::malformed, "the token's signature is not base64url");
  bool known_key = false, verified = false;
  for (const Key& key : keys.keys) {
    if (key.algorithm != *algorithm || (!kid.empty() && key.kid != kid)) continue;
    known_key = true;
    if (verify_signature(key, parts->signing_input, *signature)) {
      verified = true;
      break;
    }
  }
  if (!known_key) {
    Verdict v = fail(Failure::unknown_key, "no key of issuer \"" + issuer.issuer + "\" matches the token's key id and algorithm");
    v.kid = std::move(kid);
    return v;
  }
  if (!verified) return fail(Failure::signature, "the token's signature does not verify");

  // Claims, all required ones present.
  const Node aud = claims["aud"];
  bool for_us = false;
  size_t audiences = 0;
  if (aud.is_string()) {
    for_us = aud.text() == issuer.audience;
    audiences = 1;
  } else if (aud.is_array()) {
    for (Node a = aud.first(); a; a = a.next(), ++audiences) for_us |= a.is_string() && a.text() == issuer.audience;
  }
  if (!for_us) return fail(Failure::audience, "the token is not for audience \"" + issuer.audience + "\"");
  if (audiences > 1 && !(claims["azp"].is_string() && claims["azp"].text() == issuer.audience))
    return fail(Failure::audience, "the token has several audiences and its authorized party (azp) is not \"" + issuer.audience + "\"");

  const std::optional<int64_t> exp = numeric_date(claims["exp"]), iat = numeric_date(claims["iat"]);
  if (!exp || !iat) return fail(Failure::claims, "the token lacks an expiry (exp) or issue time (iat) as a number of seconds");
  if (now > *exp + issuer.leeway_seconds) return fail(Failure::expired, "the token has expired");
  if (*iat > now + issuer.leeway_seconds) return fail(Failure::not_yet_valid, "the token's issue time (iat) is in the future");
  if (const Node nbf = claims["nbf"]) {
    const std::optional<int64_t> not_before = numeric_date(nbf);
    if (!not_before) return fail(Failure::claims, "the token's not-before time (nbf) is not a number of seconds");
    if (*not_before > now + issuer.leeway_seconds) return fail(Failure::not_yet_valid, "the token is not valid yet (nbf)");
  }
  if (*exp < *iat || *exp - *iat > issuer.max_lifetime_seconds)
    return fail(Failure::claims, "the token's lifetime (exp - iat) exceeds the " + std::to_string(issuer.max_lifetime_seconds) +
                                     " seconds issuer \"" + issuer.issuer + "\" allows");

  Verdict v;
  v.kid = std::move(kid);
  const Node name = claims[issuer.identity_claim];
  if (!name.is_string() || !plain_name(name.text()))
    return fail(Failure::claims, "the token's identity claim \"" + issuer.identity_claim + "\" is missing, empty, too long or has control characters");
  v.identity.name = std::string(name.text());
  if (!issuer.groups_claim.empty()) {
    const Node groups = claim_at_path(claims, issuer.groups_claim);
    auto add = [&](Node g) {
      if (!g.is_string() || !plain_name(g.text()) || v.identity.groups.size() >= kMaxGroups) return false;
      v.identity.groups.emplace_back(g.text());
      return true;
    };
    bool ok = true;
    if (groups.is_array()) {
      for (Node g = groups.first(); g && ok; g = g.next()) ok = add(g);
    } else if (groups) {
      ok = add(groups);
    }
    if (!ok)
      return fail(Failure::claims, "the token's groups claim \"" + issuer.groups_claim + "\" is not a list of at most 256 names");
  }
  v.identity.subject = std::string(claims["sub"].text().substr(0, kMaxClaimBytes));
  v.identity.token_id = std::string(claims["jti"].text().substr(0, kMaxClaimBytes));
  v.identity.expires_at = *exp;
  v.identity.issued_at = *iat;
  return v;
}

}  // namespace sluice::protocol::jwt
