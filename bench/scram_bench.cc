// What SCRAM-SHA-256 costs sluice per login. The gateway is the SCRAM server toward
// the agent (HMACs only: the verifier is precomputed) and the SCRAM client toward
// PostgreSQL (PBKDF2 with the backend's iteration count, 4096 by default).
#include <benchmark/benchmark.h>

#include <cstring>

#include <array>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/scram.h"

namespace {

using namespace sluice::protocol::scram;

constexpr std::string_view kPassword = "correct horse battery staple";
constexpr std::string_view kClientNonce = "fyko+d2lbbFgONRv9qkxdawL";
constexpr std::string_view kServerNonce = "3rfcNHYJY1ZVvWVs7jUvI3Pd";

// One recorded exchange with fixed nonces, so each side can be replayed alone.
struct Recorded {
  Verifier verifier;
  Key mock_secret{};
  std::string client_first, server_first, client_final, server_final;

  Recorded() {
    const std::array<uint8_t, 16> salt{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    verifier = make_verifier(kPassword, 4096, salt);
    ClientExchange client{std::string(kPassword)};
    client.set_client_nonce_for_test(std::string(kClientNonce));
    ServerExchange server(&verifier, "alice", mock_secret);
    server.set_server_nonce_for_test(std::string(kServerNonce));
    client_first = client.client_first();
    if (server.on_client_first(client_first, server_first) != Step::continue_exchange ||
        client.on_server_first(server_first, client_final) != Step::continue_exchange ||
        server.on_client_final(client_final, server_final) != Step::success ||
        client.on_server_final(server_final) != Step::success) {
      std::abort();
    }
  }
};

const Recorded& recorded() {
  static const Recorded instance;
  return instance;
}

// Both sides in one process with random nonces and 4096 iterations: the CPU one
// gateway login costs (server side for the agent + client side toward PostgreSQL).
void BM_ScramFullExchange4096(benchmark::State& state) {
  const Recorded& r = recorded();
  std::string server_message, client_message;
  for (auto _ : state) {
    ClientExchange client{std::string(kPassword)};
    ServerExchange server(&r.verifier, "alice", r.mock_secret);
    server.on_client_first(client.client_first(), server_message);
    client.on_server_first(server_message, client_message);
    const Step server_step = server.on_client_final(client_message, server_message);
    const Step client_step = client.on_server_final(server_message);
    if (server_step != Step::success || client_step != Step::success) state.SkipWithError("exchange failed");
  }
}
BENCHMARK(BM_ScramFullExchange4096)->Unit(benchmark::kMicrosecond);

// The server side of one login (what sluice pays per agent login): construct, answer
// client-first, check the proof. Replaying the recorded client-final needs the recorded
// server nonce, so the CSPRNG is not called here; BM_ScramServerFirst includes it.
void BM_ScramServerSide(benchmark::State& state) {
  const Recorded& r = recorded();
  std::string output;
  for (auto _ : state) {
    ServerExchange server(&r.verifier, "alice", r.mock_secret);
    server.set_server_nonce_for_test(std::string(kServerNonce));
    server.on_client_first(r.client_first, output);
    if (server.on_client_final(r.client_final, output) != Step::success) state.SkipWithError("proof rejected");
  }
}
BENCHMARK(BM_ScramServerSide)->Unit(benchmark::kMicrosecond);

// The same for an unknown user (mock salt, doomed proof check): should cost the same.
void BM_ScramServerSideUnknownUser(benchmark::State& state) {
  const Recorded& r = recorded();
  std::string output;
  for (auto _ : state) {
    ServerExchange server(nullptr, "alice", r.mock_secret);
    server.set_server_nonce_for_test(std::string(kServerNonce));
    server.on_client_first(r.client_first, output);
    if (server.on_client_final(r.client_final, output) != Step::failure) state.SkipWithError("unexpected");
  }
}
BENCHMARK(BM_ScramServerSideUnknownUser)->Unit(benchmark::kMicrosecond);

// client-first -> server-first with a random 18-byte nonce from the CSPRNG.
void BM_ScramServerFirst(benchmark::State& state) {
  const Recorded& r = recorded();
  std::string output;
  for (auto _ : state) {
    ServerExchange server(&r.verifier, "alice", r.mock_secret);
    if (server.on_client_first(r.client_first, output) != Step::continue_exchange) state.SkipWithError("rejected");
    benchmark::DoNotOptimize(output.data());
  }
}
BENCHMARK(BM_ScramServerFirst)->Unit(benchmark::kMicrosecond);

// on_client_final alone: parse the client-final-message, verify the proof, sign.
void BM_ScramProofCheck(benchmark::State& state) {
  const Recorded& r = recorded();
  constexpr size_t kBatch = 1024;  // exchanges prepared per timing pause
  std::vector<ServerExchange> exchanges;
  exchanges.reserve(kBatch);
  std::string output;
  size_t next = kBatch;
  for (auto _ : state) {
    if (next == kBatch) {
      state.PauseTiming();
      exchanges.clear();
      for (size_t i = 0; i < kBatch; ++i) {
        exchanges.emplace_back(&r.verifier, "alice", r.mock_secret);
        exchanges.back().set_server_nonce_for_test(std::string(kServerNonce));
        exchanges.back().on_client_first(r.client_first, output);
      }
      next = 0;
      state.ResumeTiming();
    }
    if (exchanges[next++].on_client_final(r.client_final, output) != Step::success) {
      state.SkipWithError("proof rejected");
    }
  }
}
BENCHMARK(BM_ScramProofCheck)->Unit(benchmark::kMicrosecond);

// The client side toward PostgreSQL for a repeat login to the same role: the salt
// and iteration count are the same every time, so the per-shard cache of salted
// passwords skips PBKDF2. This is what a new session costs the shard in steady state.
void BM_ScramClientSideCached(benchmark::State& state) {
  const Recorded& r = recorded();
  std::string output;
  for (auto _ : state) {
    ClientExchange client{std::string(kPassword)};
    client.set_client_nonce_for_test(std::string(kClientNonce));
    client.client_first();
    client.on_server_first(r.server_first, output);
    if (client.on_server_final(r.server_final) != Step::success) state.SkipWithError("signature rejected");
  }
}
BENCHMARK(BM_ScramClientSideCached)->Unit(benchmark::kMicrosecond);

// The first login to a role (or after its password changed): a salt never seen
// before, so PBKDF2 with 4096 iterations runs in full.
void BM_ScramClientSideColdSalt(benchmark::State& state) {
  std::string output;
  uint64_t counter = 0;
  for (auto _ : state) {
    ++counter;
    uint8_t salt[16] = {};
    std::memcpy(salt, &counter, sizeof counter);
    ClientExchange client{std::string(kPassword)};
    client.set_client_nonce_for_test(std::string(kClientNonce));
    client.client_first();
    const std::string server_first = "r=" + std::string(kClientNonce) + "srv,s=" + base64_encode(salt) + ",i=4096";
    if (client.on_server_first(server_first, output) != Step::continue_exchange) state.SkipWithError("rejected");
  }
}
BENCHMARK(BM_ScramClientSideColdSalt)->Unit(benchmark::kMicrosecond);

// Deriving a verifier (what sluicectl does once per configured user).
void BM_ScramMakeVerifier4096(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(make_verifier(kPassword, 4096));
}
BENCHMARK(BM_ScramMakeVerifier4096)->Unit(benchmark::kMicrosecond);

void BM_Md5PasswordResponse(benchmark::State& state) {
  const std::array<uint8_t, 4> salt{1, 2, 3, 4};
  for (auto _ : state) benchmark::DoNotOptimize(md5_password_response("alice", kPassword, salt));
}
BENCHMARK(BM_Md5PasswordResponse);

}  // namespace
