// Token login around the verifier (jwt.h): each issuer's key set and when to fetch it
// again, a cache of verified tokens, and the one call a login makes.
//
// Fetch rules (jwt-checklist.md, "JWKS refresh as DoS / outage"): a key set is fetched
// off the connection path by one fetcher thread; it is fetched again when it is older
// than max_age, or when a token names a kid the set lacks, but never twice within the
// cooldown, so 1,000 connections with random kids cost at most one fetch; a failed
// fetch keeps the old keys (stale-if-error) and is retried after retry_seconds. Only a
// token whose header passed the algorithm check and whose iss is this issuer can ask
// for a refresh (verify() reports unknown_key only after those checks).
//
// Verified tokens are cached by SHA-256 until their exp, so a CI fleet reconnecting
// costs a hash lookup; a reload of the issuers' settings must clear() the cache.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/jwt.h"
#include "protocol/settings.h"

namespace sluice::protocol::oidc {

struct FetchTiming {
  int64_t max_age_seconds = 3600;
  int64_t cooldown_seconds = 30;
  int64_t retry_seconds = 10;
};

// One issuer's settings and current keys. Thread-safe: shards call keys() and
// unknown_kid_seen(); the fetcher thread calls refresh_if_due().
class IssuerKeys {
 public:
  // Fetches the issuer's JWKS document (from its jwks_uri or a local file) into
  // `document`; false with `error` when it cannot.
  using Fetch = std::function<bool(std::string& document, std::string& error)>;

  IssuerKeys(jwt::IssuerSettings settings, FetchTiming timing) : settings_(std::move(settings)), timing_(timing) {}

  const jwt::IssuerSettings& settings() const { return settings_; }
  // The current key set; null until a fetch has succeeded.
  std::shared_ptr<const jwt::KeySet> keys() const;
  // A token of this issuer named a key the set lacks: fetch again once the cooldown allows.
  void unknown_kid_seen() { refresh_wanted_.store(true, std::memory_order_relaxed); }

  // Fetches when due (see the file comment) at time `now` (seconds, any monotonic
  // origin). Returns true when it tried; `log_line` then says what happened.
  bool refresh_if_due(int64_t now, const Fetch& fetch, std::string& log_line);
  uint64_t fetches() const { return fetches_.load(std::memory_order_relaxed); }

 private:
  bool due(int64_t now) const;

  const jwt::IssuerSettings settings_;
  const FetchTiming timing_;
  mutable std::mutex mutex_;  // guards keys_ (the fetcher replaces it, shards copy it)
  std::shared_ptr<const jwt::KeySet> keys_;
  // Fetcher-thread state.
  bool attempted_ = false;
  bool last_failed_ = false;
  int64_t last_attempt_ = 0;
  int64_t fetched_at_ = 0;
  std::atomic<bool> refresh_wanted_{false};
  std::atomic<uint64_t> fetches_{0};
};

// How the fetcher reads an issuer's JWKS: its jwks_file, its jwks_uri over HTTPS, or
// OIDC discovery (issuer + "/.well-known/openid-configuration", whose jwks_uri must be
// https:// too). Every fetch is bounded in size and time (core/https_get.h).
IssuerKeys::Fetch key_source(const OidcIssuer& issuer);

// Tokens verified before, by SHA-256, until their expiry. One per shard (not
// thread-safe); bounded: when full, expired entries go first, then arbitrary ones.
class VerifiedTokens {
 public:
  struct Entry {
    std::string issuer;
    jwt::Identity identity;
  };
  explicit VerifiedTokens(size_t capacity = 10000) : capacity_(capacity) {}

  const Entry* find(std::string_view token, int64_t now);
  void remember(std::string_view token, Entry entry, int64_t now);
  void clear() { entries_.clear(); }
  size_t size() const { return entries_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };
  static Digest digest(std::string_view token);

  size_t capacity_;
  std::unordered_map<Digest, Entry, DigestHash> entries_;
};

// What a login with a token learns.
struct TokenLogin {
  jwt::Verdict verdict;  // ok(): identity filled
  std::string issuer;    // the issuer it was verified for ("" when none matched)
  bool cached = false;   // answered by the cache
};

// Verifies tokens for a shard: the cache, then the issuer named by the token's iss
// (exact match among the configured ones), then its keys.
class TokenAuthenticator {
 public:
  TokenAuthenticator(std::vector<std::shared_ptr<IssuerKeys>> issuers, size_t cache_capacity = 10000)
      : issuers_(std::move(issuers)), cache_(cache_capacity) {}

  // `now`: Unix time (token claims are in it).
  TokenLogin authenticate(std::string_view token, int64_t now);

 private:
  std::vector<std::shared_ptr<IssuerKeys>> issuers_;
  VerifiedTokens cache_;
};

}  // namespace sluice::protocol::oidc
