// libFuzzer target for protocol/scram.cc: hostile SCRAM messages on both sides, plus
// the verifier and base64 parsers. Input: two messages separated by the first 0xff byte
// (the first is client-first/server-first, the second client-final/server-final).
//   clang++-14 -std=c++20 -fsanitize=fuzzer,address,undefined -I. protocol/scram_fuzz.cc \
//     protocol/scram.cc -lcrypto -o /tmp/scram_fuzz && /tmp/scram_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/scram.h"

namespace {

using namespace sluice::protocol::scram;

// Fixed nonces, so the fuzzer can echo them and reach the proof and signature checks.
constexpr std::string_view kServerNonce = "SERVERNONCE";
constexpr std::string_view kClientNonce = "clientnonce";

void check(bool condition) {
  if (!condition) __builtin_trap();
}

const Verifier& fuzz_verifier() {
  static const Verifier verifier = [] {
    const uint8_t salt[] = {1, 2, 3, 4, 5, 6, 7, 8};
    return make_verifier("pencil", 4096, salt);
  }();
  return verifier;
}

void fuzz_server(const Verifier* verifier, std::string_view first, std::string_view final) {
  const Key mock_secret{};
  ServerExchange server(verifier, "fuzz", mock_secret);
  server.set_server_nonce_for_test(std::string(kServerNonce));
  std::string output;
  const Step first_step = server.on_client_first(first, output);
  check(first_step == Step::continue_exchange || first_step == Step::malformed);
  check((first_step == Step::continue_exchange) == !output.empty());
  const Step final_step = server.on_client_final(final, output);
  if (first_step != Step::continue_exchange) check(final_step == Step::malformed);
  // Unknown users never succeed; nobody succeeds without the password (a proof
  // cannot be forged by the fuzzer in practice).
  check(final_step != Step::success);
  check(output.empty());
}

// PBKDF2 cost grows with i=; skip counts that would make one run slow but are still
// accepted (the parser's handling of any count is exercised below 64 and above the cap).
bool iterations_too_slow(std::string_view message) {
  const size_t at = message.find(",i=");
  if (at == std::string_view::npos) return false;
  uint64_t value = 0;
  size_t digits = 0;
  for (size_t i = at + 3; i < message.size() && message[i] >= '0' && message[i] <= '9'; ++i) {
    if (++digits > 10) return false;
    value = value * 10 + static_cast<uint64_t>(message[i] - '0');
  }
  return value > 64 && value <= kMaxClientIterations;
}

void fuzz_client(std::string_view first, std::string_view final) {
  if (iterations_too_slow(first)) return;
  ClientExchange client("pencil");
  client.set_client_nonce_for_test(std::string(kClientNonce));
  check(client.client_first() == "n,,n=,r=" + std::string(kClientNonce));
  std::string output;
  const Step first_step = client.on_server_first(first, output);
  check(first_step == Step::continue_exchange || first_step == Step::malformed);
  check((first_step == Step::continue_exchange) == output.starts_with("c=biws,r="));
  const Step final_step = client.on_server_final(final);
  if (first_step != Step::continue_exchange) check(final_step == Step::malformed);
}

void fuzz_parsers(std::string_view text) {
  if (auto verifier = parse_verifier(text)) {
    check(verifier->iterations >= 1 && !verifier->salt.empty());
    auto again = parse_verifier(format_verifier(*verifier));
    check(again && again->iterations == verifier->iterations && again->salt == verifier->salt &&
          again->stored_key == verifier->stored_key && again->server_key == verifier->server_key);
  }
  // Strict base64 has one encoding per byte string.
  if (auto decoded = base64_decode(text)) check(base64_encode(*decoded) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\xff');
  const std::string_view first = input.substr(0, split);
  const std::string_view final = split == std::string_view::npos ? std::string_view{} : input.substr(split + 1);
  fuzz_server(&fuzz_verifier(), first, final);
  fuzz_server(nullptr, first, final);
  fuzz_client(first, final);
  fuzz_parsers(input);
  return 0;
}
