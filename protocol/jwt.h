// Verifying an OIDC token (a JWS-signed JWT, RFC 7519/7515) that a client sends as
// its PostgreSQL password, by the checks of RFC 8725 and
// ../shared/reference/jwt-checklist.md. The token is hostile input: its size is
// capped, its header decides nothing on its own (the algorithm must be on the
// issuer's list and match the key's, keys come only from the issuer's key set, `kid`
// is nothing but a map key, `jku`/`x5u`/`jwk`/`x5c` are ignored, an unknown `crit`
// fails), and every claim the decision needs is required.
//
// This file is the pure part: parse a key set, verify one token against one issuer's
// settings and keys at a given time. Fetching key sets, caching verified tokens and
// answering the client belong to the callers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;

namespace sluice::protocol::jwt {

// Asymmetric algorithms only (RFC 7518 names): an HMAC "key" would be public.
enum class Algorithm : uint8_t { rs256, ps256, es256, eddsa };
std::optional<Algorithm> algorithm_from_name(std::string_view name);
const char* algorithm_name(Algorithm algorithm);

constexpr size_t kMaxTokenBytes = 16 * 1024;  // several KB is usual; a password message caps it anyway
constexpr size_t kMaxKidBytes = 256;
constexpr size_t kMaxJwksBytes = 256 * 1024;
constexpr size_t kMaxKeysPerSet = 64;
constexpr size_t kMaxGroups = 256;
constexpr size_t kMaxClaimBytes = 256;  // identity and each group name
constexpr int kMinRsaBits = 2048;

struct KeyDeleter {
  void operator()(EVP_PKEY* key) const;
};

// One public key of an issuer, bound to exactly one algorithm: the JWK's `alg` when it
// has one, else its type's (RSA -> RS256, EC P-256 -> ES256, OKP Ed25519 -> EdDSA).
struct Key {
  std::string kid;  // "" when the JWK has none
  Algorithm algorithm = Algorithm::rs256;
  std::shared_ptr<EVP_PKEY> public_key;
};

// An issuer's keys, from its JWKS (RFC 7517).
struct KeySet {
  std::vector<Key> keys;
  // Keys skipped (not for signing, unknown type or curve, RSA under 2048 bits, an
  // algorithm not on the list), one line each, for the log.
  std::vector<std::string> skipped;
};

// Parses a JWKS document keeping the keys usable with `allowed` algorithms. False
// (with `error`) when the document is not a JWKS at all or is too large; a set with no
// usable key is parsed successfully but empty.
bool parse_jwks(std::string_view json, const std::vector<Algorithm>& allowed, KeySet& out, std::string& error);

// What one configured issuer accepts.
struct IssuerSettings {
  std::string issuer;    // compared exactly with `iss`
  std::string audience;  // must be in `aud`; with several audiences, `azp` must be this
  std::vector<Algorithm> algorithms = {Algorithm::rs256, Algorithm::es256};
  std::string identity_claim = "sub";
  std::string groups_claim = "groups";     // a dotted path into the claims ("realm_access.roles"); "" = none
  std::vector<std::string> token_types = {"jwt"};  // accepted `typ` values, lower case, without "application/"; absent = "jwt"
  int64_t max_lifetime_seconds = 24 * 3600;         // exp - iat
  int64_t leeway_seconds = 60;
};

enum class Failure : uint8_t {
  none,
  malformed,          // not three base64url parts of JSON objects, too long, duplicate members
  algorithm,          // alg not on the issuer's list (none, HS256, ...)
  unknown_key,        // no key of the issuer has this kid and algorithm
  signature,          // the signature does not verify
  header,             // unknown crit, or a typ the issuer does not accept
  issuer,             // iss missing or not the issuer
  audience,           // aud missing or without the audience, or azp wrong
  expired,            // exp passed (beyond the leeway)
  not_yet_valid,      // nbf, or iat, in the future (beyond the leeway)
  claims,             // exp or iat missing or not a number, lifetime over the cap, identity missing, groups malformed
};
const char* failure_name(Failure failure);

// Who a verified token says the client is.
struct Identity {
  std::string name;  // the identity claim
  std::vector<std::string> groups;
  std::string subject;
  std::string token_id;  // jti, "" when absent (for the audit trail: never the token)
  int64_t expires_at = 0;
  int64_t issued_at = 0;
};

struct Verdict {
  Failure failure = Failure::none;
  std::string reason;  // for the client and the log; never contains the token or its signature
  std::string kid;     // the header's kid (bounded), to decide on a key-set refresh after unknown_key
  Identity identity;
  bool ok() const { return failure == Failure::none; }
};

// The `iss` of a token, before any verification: only for choosing which issuer's
// settings and keys to verify it with. nullopt when the token is malformed.
std::optional<std::string> unverified_issuer(std::string_view token);

// Verifies `token` for `issuer` with its `keys` at Unix time `now`.
Verdict verify(std::string_view token, const IssuerSettings& issuer, const KeySet& keys, int64_t now);

// base64url without padding (RFC 7515 §2), strict: nullopt for any other character,
// padding, or an impossible length.
std::optional<std::string> base64url_decode(std::string_view text);
std::string base64url_encode(std::string_view bytes);

}  // namespace sluice::protocol::jwt
