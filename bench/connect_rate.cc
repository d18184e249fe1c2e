// New connections per second, for bench/e2e.sh's connection phase.
//
//   connect_rate make-tokens ISSUER AUDIENCE SUBJECT GROUP COUNT JWKS_OUT TOKENS_OUT
//     An ES256 key of a stand-in identity provider: its JWKS, and COUNT tokens (one
//     per line, each with its own jti, valid for an hour).
//   connect_rate run SECONDS THREADS CONNINFO [TOKENS_FILE]
//     THREADS threads open a connection (libpq), run "SELECT 1", close, again, for
//     SECONDS. With TOKENS_FILE, connection i uses line i as its password: all
//     distinct (a cold token cache) as long as the file has enough lines; it stops
//     early when they run out. Prints "connections N seconds S rate R failures F".
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_jwt.h"

namespace {

using Clock = std::chrono::steady_clock;

int make_tokens(char** argv) {
  const std::string issuer = argv[2], audience = argv[3], subject = argv[4], group = argv[5];
  const long count = std::strtol(argv[6], nullptr, 10);
  auto key = sluice::test_jwt::TestKey::make(sluice::protocol::jwt::Algorithm::es256, "bench-1");
  std::ofstream(argv[7]) << "{\"keys\":[" << key.jwk() << "]}\n";
  std::ofstream tokens(argv[8]);
  const long now = static_cast<long>(std::time(nullptr));
  for (long i = 0; i < count; ++i) {
    tokens << key.token("{\"iss\":\"" + issuer + "\",\"aud\":\"" + audience + "\",\"sub\":\"" + subject +
                        "\",\"groups\":[\"" + group + "\"],\"jti\":\"bench-" + std::to_string(i) +
                        "\",\"iat\":" + std::to_string(now - 5) + ",\"exp\":" + std::to_string(now + 3600) + "}")
           << "\n";
  }
  return 0;
}

// Escapes a conninfo value (single quotes, backslashes).
std::string quoted(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

int run(int argc, char** argv) {
  const double seconds = std::strtod(argv[2], nullptr);
  const int threads = std::atoi(argv[3]);
  const std::string conninfo = argv[4];
  std::vector<std::string> tokens;
  if (argc > 5) {
    std::ifstream in(argv[5]);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) tokens.push_back(line);
  }
  std::atomic<size_t> next_token{0};
  std::atomic<long> connections{0}, failures{0};
  std::atomic<bool> first_error_printed{false};
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (Clock::now() < deadline) {
        std::string info = conninfo;
        if (!tokens.empty()) {
          const size_t i = next_token.fetch_add(1);
          if (i >= tokens.size()) return;  // out of distinct tokens
          info += " password=" + quoted(tokens[i]);
        }
        PGconn* conn = PQconnectdb(info.c_str());
        bool ok = PQstatus(conn) == CONNECTION_OK;
        if (ok) {
          PGresult* r = PQexec(conn, "SELECT 1");
          ok = PQresultStatus(r) == PGRES_TUPLES_OK;
          PQclear(r);
        }
        if (!ok && !first_error_printed.exchange(true)) std::cerr << "connect_rate: " << PQerrorMessage(conn);
        PQfinish(conn);
        (ok ? connections : failures).fetch_add(1);
      }
    });
  }
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("connections %ld seconds %.2f rate %.1f failures %ld\n", connections.load(), elapsed,
              static_cast<double>(connections.load()) / elapsed, failures.load());
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 9 && std::string(argv[1]) == "make-tokens") return make_tokens(argv);
    if ((argc == 5 || argc == 6) && std::string(argv[1]) == "run") return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "connect_rate: " << e.what() << "\n";
    return 2;
  }
  std::cerr << "usage: connect_rate make-tokens ISSUER AUDIENCE SUBJECT GROUP COUNT JWKS_OUT TOKENS_OUT\n"
               "       connect_rate run SECONDS THREADS CONNINFO [TOKENS_FILE]\n";
  return 2;
}
