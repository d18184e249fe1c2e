// Leveled logging to stderr (journald captures it under systemd).
// Lines are "sluiced[shard]: level: message". Never pass secrets to these functions.
#pragma once

#include <cstdarg>
#include <string_view>

namespace sluice::core {

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3 };

// Parses "debug", "info", "warning"/"warn", "error". Returns false on anything else.
bool parse_log_level(std::string_view text, LogLevel& out);

void set_log_level(LogLevel level);
LogLevel log_level();

// Which shard the calling thread runs (-1 for the main thread); shown in every line.
void set_log_shard(int shard);

void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace sluice::core

#define SLUICE_LOG(level, ...)                                                      \
  do {                                                                              \
    if (static_cast<int>(level) >= static_cast<int>(::sluice::core::log_level()))   \
      ::sluice::core::log(level, __VA_ARGS__);                                      \
  } while (0)
#define LOG_DEBUG(...) SLUICE_LOG(::sluice::core::LogLevel::debug, __VA_ARGS__)
#define LOG_INFO(...) SLUICE_LOG(::sluice::core::LogLevel::info, __VA_ARGS__)
#define LOG_WARN(...) SLUICE_LOG(::sluice::core::LogLevel::warning, __VA_ARGS__)
#define LOG_ERROR(...) SLUICE_LOG(::sluice::core::LogLevel::error, __VA_ARGS__)
