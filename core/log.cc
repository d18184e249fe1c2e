#include "core/log.h"

#include <atomic>
#include <cstdio>

namespace sluice::core {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
thread_local int t_shard = -1;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "?";
}
}  // namespace

bool parse_log_level(std::string_view text, LogLevel& out) {
  if (text == "debug") out = LogLevel::debug;
  else if (text == "info") out = LogLevel::info;
  else if (text == "warning" || text == "warn") out = LogLevel::warning;
  else if (text == "error") out = LogLevel::error;
  else return false;
  return true;
}

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }
void set_log_shard(int shard) { t_shard = shard; }

void log(LogLevel level, const char* format, ...) {
  char line[2048];
  int prefix = t_shard >= 0 ? std::snprintf(line, sizeof line, "sluiced[%d]: %s: ", t_shard, level_name(level))
                            : std::snprintf(line, sizeof line, "sluiced: %s: ", level_name(level));
  va_list args;
  va_start(args, format);
  int body = std::vsnprintf(line + prefix, sizeof line - prefix - 1, format, args);
  va_end(args);
  size_t used = prefix + (body < 0 ? 0 : static_cast<size_t>(body));
  if (used > sizeof line - 2) used = sizeof line - 2;
  line[used] = '\n';
  // One write per line keeps lines from different shards from interleaving.
  std::fwrite(line, 1, used + 1, stderr);
}

}  // namespace sluice::core
