// Loads a sluice TOML configuration file into protocol::Settings and a policy::Policy
// (the [policy] and [groups.*] sections through policy/config.h). Every problem found
// is reported (not just the first), each with its file and line; no diagnostic ever
// contains a password or a verifier. The file format is documented in
// docs/configuration.md and tools/sluice.example.toml.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audit/config.h"
#include "mask/config.h"
#include "policy/policy.h"
#include "protocol/settings.h"

namespace sluice::tools {

struct ConfigDiagnostic {
  std::string file;
  int line = 0;  // 1-based; 0 = the whole file
  std::string message;
  bool is_error = true;  // false: a warning, the configuration is still usable
};

struct LoadedConfig {
  // Meaningful only when ok(); otherwise partially filled.
  protocol::Settings settings;
  // The statement policy; set whenever ok().
  std::shared_ptr<const policy::Policy> policy;
  // The [mask] section: compiled patterns and key; set whenever ok().
  std::shared_ptr<const mask::Masking> masking;
  // The [audit] section (defaults when absent).
  audit::Config audit;
  // Sorted by line (whole-file diagnostics first).
  std::vector<ConfigDiagnostic> diagnostics;
  bool ok() const;  // no diagnostic is an error
};

// Reads and loads `path`. Relative password_file paths resolve against the directory
// of `path`.
LoadedConfig load_config_file(const std::string& path);

// Loads configuration text. base_dir resolves relative password_file paths; file_name
// is what diagnostics name.
LoadedConfig load_config_text(std::string_view text, const std::string& file_name, const std::string& base_dir);

// "path:12: error: unknown key 'lisen' in [gateway] (did you mean 'listen'?)";
// "path: warning: ..." for a whole-file diagnostic.
std::string format_diagnostic(const ConfigDiagnostic& diagnostic);

}  // namespace sluice::tools
