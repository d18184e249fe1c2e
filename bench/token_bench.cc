// What a token login costs sluice: verifying a token the shard has not seen (parse,
// signature, claims) per algorithm, and one it has (a SHA-256 and a map lookup).
#include <benchmark/benchmark.h>

#include <ctime>
#include <string>
#include <vector>

#include "protocol/oidc.h"
#include "tests/test_jwt.h"

namespace {

using sluice::protocol::jwt::Algorithm;
using sluice::protocol::oidc::FetchTiming;
using sluice::protocol::oidc::IssuerKeys;
using sluice::protocol::oidc::TokenAuthenticator;
using sluice::test_jwt::TestKey;

struct Issuer {
  TestKey key;
  std::unique_ptr<TokenAuthenticator> authenticator;
  explicit Issuer(Algorithm algorithm) : key(TestKey::make(algorithm, "bench")) {
    sluice::protocol::jwt::IssuerSettings settings;
    settings.issuer = "https://idp.bench";
    settings.audience = "sluice";
    settings.algorithms = {algorithm};
    auto keys = std::make_shared<IssuerKeys>(settings, FetchTiming{});
    const std::string jwks = "{\"keys\":[" + key.jwk() + "]}";
    std::string line;
    keys->refresh_if_due(0, [&](std::string& document, std::string&) { document = jwks; return true; }, line);
    // A cache of one entry: every distinct token below is a miss.
    authenticator = std::make_unique<TokenAuthenticator>(std::vector<std::shared_ptr<IssuerKeys>>{keys}, 1);
  }
  std::string token(int serial) const {
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    return key.token(R"({"iss":"https://idp.bench","aud":"sluice","sub":"ci-bot","groups":["agents"],"jti":"t)" +
                     std::to_string(serial) + R"(","iat":)" + std::to_string(now - 5) + R"(,"exp":)" +
                     std::to_string(now + 3600) + "}");
  }
};

void verify_cold(benchmark::State& state, Algorithm algorithm) {
  Issuer issuer(algorithm);
  std::vector<std::string> tokens;
  for (int i = 0; i < 64; ++i) tokens.push_back(issuer.token(i));
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  size_t i = 0;
  for (auto _ : state) {
    auto login = issuer.authenticator->authenticate(tokens[i++ % tokens.size()], now);
    if (!login.verdict.ok() || login.cached) state.SkipWithError("expected a verified, uncached token");
    benchmark::DoNotOptimize(login);
  }
}

void BM_TokenVerifyCold_RS256(benchmark::State& state) { verify_cold(state, Algorithm::rs256); }
void BM_TokenVerifyCold_ES256(benchmark::State& state) { verify_cold(state, Algorithm::es256); }
void BM_TokenVerifyCold_EdDSA(benchmark::State& state) { verify_cold(state, Algorithm::eddsa); }
BENCHMARK(BM_TokenVerifyCold_RS256);
BENCHMARK(BM_TokenVerifyCold_ES256);
BENCHMARK(BM_TokenVerifyCold_EdDSA);

void BM_TokenCached(benchmark::State& state) {
  Issuer issuer(Algorithm::es256);
  const std::string token = issuer.token(1);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  issuer.authenticator->authenticate(token, now);
  for (auto _ : state) {
    auto login = issuer.authenticator->authenticate(token, now);
    if (!login.cached) state.SkipWithError("expected a cache hit");
    benchmark::DoNotOptimize(login);
  }
}
BENCHMARK(BM_TokenCached);

}  // namespace
