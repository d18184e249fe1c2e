// sluicectl: the operator's command-line tool. Today: make SCRAM verifiers for
// gateway users, and check a configuration file.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "protocol/scram.h"
#include "tools/config.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: sluicectl COMMAND\n"
      "  scram-verifier [--iterations N]  read a password on stdin (one line), print its SCRAM-SHA-256\n"
      "                                  verifier for a [[user]] password entry\n"
      "  check-config FILE                validate a configuration file (same as sluiced --check)\n"
      "  version                          print the version\n",
      out);
}

int scram_verifier(int argc, char** argv) {
  uint32_t iterations = 4096;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(argv[++i], &end, 10);
      if (end == nullptr || *end != '\0' || v < 4096 || v > 10'000'000) {
        std::fputs("sluicectl: --iterations must be between 4096 and 10000000\n", stderr);
        return 2;
      }
      iterations = static_cast<uint32_t>(v);
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (isatty(STDIN_FILENO)) std::fputs("password: ", stderr);
  std::string password;
  if (!std::getline(std::cin, password) || password.empty()) {
    std::fputs("sluicectl: no password on stdin\n", stderr);
    return 2;
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  std::puts(sluice::protocol::scram::format_verifier(sluice::protocol::scram::make_verifier(password, iterations)).c_str());
  return 0;
}

int check_config(int argc, char** argv) {
  if (argc != 3) {
    usage(stderr);
    return 2;
  }
  const auto loaded = sluice::tools::load_config_file(argv[2]);
  for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", sluice::tools::format_diagnostic(d).c_str());
  if (!loaded.ok()) return 2;
  std::printf("%s: configuration OK\n", argv[2]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "scram-verifier") return scram_verifier(argc, argv);
  if (command == "check-config") return check_config(argc, argv);
  if (command == "version" || command == "--version") {
    std::puts("sluicectl 0.1.0");
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    usage(stdout);
    return 0;
  }
  std::fprintf(stderr, "sluicectl: unknown command '%s'\n", command.c_str());
  usage(stderr);
  return 2;
}
