// Helpers the unit tests share: a temporary directory and the formatted diagnostics of
// a loaded configuration (what an operator reads).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tools/config.h"

namespace sluice::testing_support {

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sluice-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `name` in the directory with the given mode; returns its full path.
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) const {
    std::string full = path_ + "/" + name;
    {
      std::ofstream out(full, std::ios::binary);
      out << content;
    }
    chmod(full.c_str(), mode);
    return full;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path_ + "/" + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string path_;
};

// Every diagnostic, formatted, one per line.
inline std::string report(const tools::LoadedConfig& config) {
  std::string out;
  for (const auto& d : config.diagnostics) out += tools::format_diagnostic(d) + "\n";
  return out;
}

inline size_t count_errors(const tools::LoadedConfig& config) {
  size_t n = 0;
  for (const auto& d : config.diagnostics) n += d.is_error ? 1 : 0;
  return n;
}

}  // namespace sluice::testing_support

// Asserts that one formatted diagnostic starts with `expected` (which names file:line).
#define EXPECT_DIAGNOSTIC(config, expected)                                                                   \
  EXPECT_NE(("\n" + ::sluice::testing_support::report(config)).find("\n" + std::string(expected)),           \
            std::string::npos)                                                                                \
      << "expected a line starting with: " << (expected) << "\ngot:\n"                                        \
      << ::sluice::testing_support::report(config)
