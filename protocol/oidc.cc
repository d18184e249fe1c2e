#include "protocol/oidc.h"

#include "core/https_get.h"
#include "core/json.h"
#include "core/small_file.h"

#include <openssl/sha.h>

#include <cstring>

namespace sluice::protocol::oidc {

// ---------------------------------------------------------------------------
// IssuerKeys
// ---------------------------------------------------------------------------

std::shared_ptr<const jwt::KeySet> IssuerKeys::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

bool IssuerKeys::due(int64_t now) const {
  const int64_t since_attempt = now - last_attempt_;
  if (!attempted_) return true;
  if (last_failed_) return since_attempt >= timing_.retry_seconds;
  if (now - fetched_at_ >= timing_.max_age_seconds) return true;
  return refresh_wanted_.load(std::memory_order_relaxed) && since_attempt >= timing_.cooldown_seconds;
}

bool IssuerKeys::refresh_if_due(int64_t now, const Fetch& fetch, std::string& log_line) {
  if (!due(now)) return false;
  attempted_ = true;
  last_attempt_ = now;
  refresh_wanted_.store(false, std::memory_order_relaxed);
  fetches_.fetch_add(1, std::memory_order_relaxed);

  std::string document, error;
  auto set = std::make_shared<jwt::KeySet>();
  const bool ok = fetch(document, error) && jwt::parse_jwks(document, settings_.algorithms, *set, error);
  const std::string who = "oidc: issuer \"" + settings_.issuer + "\": ";
  last_failed_ = !ok;
  if (!ok) {
    const bool stale = keys() != nullptr;
    log_line = who + "cannot read its key set: " + error +
               (stale ? "; keeping the keys read before" : "; its tokens are refused until it can be read") +
               ", retrying in " + std::to_string(timing_.retry_seconds) + " s";
    return true;
  }
  fetched_at_ = now;
  log_line = who + "read " + std::to_string(set->keys.size()) + " key(s)";
  for (const std::string& skipped : set->skipped) log_line += "; skipped " + skipped;
  std::lock_guard lock(mutex_);
  keys_ = std::move(set);
  return true;
}

// ---------------------------------------------------------------------------
// VerifiedTokens
// ---------------------------------------------------------------------------

size_t VerifiedTokens::DigestHash::operator()(const Digest& d) const {
  size_t h;
  std::memcpy(&h, d.data(), sizeof h);  // a SHA-256 prefix is already uniform
  return h;
}

VerifiedTokens::Digest VerifiedTokens::digest(std::string_view token) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  return d;
}

const VerifiedTokens::Entry* VerifiedTokens::find(std::string_view token, int64_t now) {
  auto it = entries_.find(digest(token));
  if (it == entries_.end()) return nullptr;
  if (now > it->second.identity.expires_at) {
    entries_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void VerifiedTokens::remember(std::string_view token, Entry entry, int64_t now) {
  if (capacity_ == 0) return;
  if (entries_.size() >= capacity_) std::erase_if(entries_, [now](const auto& e) { return now > e.second.identity.expires_at; });
  if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
  entries_.insert_or_assign(digest(token), std::move(entry));
}

// ---------------------------------------------------------------------------
// TokenAuthenticator
// ---------------------------------------------------------------------------

IssuerKeys::Fetch key_source(const OidcIssuer& issuer) {
  return [issuer](std::string& document, std::string& error) {
    if (!issuer.jwks_file.empty()) {
      core::SmallFile file = core::read_small_file(issuer.jwks_file, jwt::kMaxJwksBytes);
      if (file.status != core::SmallFile::Status::ok) {
        error = "reading jwks_file " + issuer.jwks_file + ": " + file.problem;
        return false;
      }
      document = std::move(file.content);
      return true;
    }
    core::HttpsRequest request;
    request.ca_file = issuer.ca_file;
    request.max_body_bytes = jwt::kMaxJwksBytes;
    request.url = issuer.jwks_uri;
    if (request.url.empty()) {
      std::string base = issuer.verify.issuer;
      while (!base.empty() && base.back() == '/') base.pop_back();
      request.url = base + "/.well-known/openid-configuration";
      std::string discovery;
      if (!core::https_get(request, discovery, error)) {
        error = "discovery (" + request.url + "): " + error;
        return false;
      }
      core::JsonDocument json(16);
      const std::string_view jwks_uri = json.load_json(discovery) ? json.root()["jwks_uri"].text() : std::string_view();
      if (jwks_uri.substr(0, 8) != "https://") {
        error = "discovery (" + request.url + ") names no https:// jwks_uri";
        return false;
      }
      request.url = std::string(jwks_uri);
    }
    if (!core::https_get(request, document, error)) {
      error = "fetching " + request.url + ": " + error;
      return false;
    }
    return true;
  };
}

TokenLogin TokenAuthenticator::authenticate(std::string_view token, int64_t now) {
  TokenLogin login;
  if (const VerifiedTokens::Entry* hit = cache_.find(token, now)) {
    login.issuer = hit->issuer;
    login.verdict.identity = hit->identity;
    login.cached = true;
    return login;
  }
  const std::optional<std::string> iss = jwt::unverified_issuer(token);
  IssuerKeys* issuer = nullptr;
  for (const auto& candidate : issuers_)
    if (iss && candidate->settings().issuer == *iss) issuer = candidate.get();
  if (issuer == nullptr) {
    login.verdict.failure = iss ? jwt::Failure::issuer : jwt::Failure::malformed;
    login.verdict.reason = iss ? "the token's issuer is not one this gateway trusts"
                               : "the password is not a JWT (three base64url parts, claims with an iss)";
    return login;
  }
  login.issuer = issuer->settings().issuer;
  const std::shared_ptr<const jwt::KeySet> keys = issuer->keys();
  if (keys == nullptr) {
    issuer->unknown_kid_seen();
    login.verdict.failure = jwt::Failure::unknown_key;
    login.verdict.reason = "the keys of issuer \"" + login.issuer + "\" could not be read yet; try again shortly";
    return login;
  }
  login.verdict = jwt::verify(token, issuer->settings(), *keys, now);
  if (login.verdict.failure == jwt::Failure::unknown_key) issuer->unknown_kid_seen();
  if (login.verdict.ok()) cache_.remember(token, VerifiedTokens::Entry{login.issuer, login.verdict.identity}, now);
  return login;
}

}  // namespace sluice::protocol::oidc
