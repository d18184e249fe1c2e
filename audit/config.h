// The [audit] section of the configuration (docs/audit.md, docs/configuration.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "protocol/settings.h"

namespace sluice::audit {

enum class Durability : uint8_t {
  strict,  // a statement is forwarded only after its record is durable
  async,   // forwarded at once; its record is durable within async_flush
};

// The optional [audit.sink] section: ship the records to a central PostgreSQL table
// too (sink.h). The local segments stay the source of truth.
struct SinkConfig {
  bool enabled = false;  // true when the section is present (unless enabled = false)
  std::string host;      // a host name, an IP address, or a Unix socket directory
  uint16_t port = 5432;
  std::string database;
  std::string user;
  protocol::Secret password;  // from password_file; empty: none (trust, .pgpass, certificates)
  std::string table = "sluice_audit";  // [a-z_][a-z0-9_]*, at most kMaxSinkTableBytes
  std::string gateway;                 // this gateway's name in the table; default: the host name
  std::string sslmode = "prefer";      // passed to libpq
  uint32_t batch_records = 1000;       // lines per COPY (and per transaction)
  std::chrono::milliseconds interval{1000};  // how often to look for new records when idle
};

// "<table>_session_idx" must fit PostgreSQL's 63-byte identifiers.
inline constexpr size_t kMaxSinkTableBytes = 48;

struct Config {
  bool enabled = true;
  std::string directory = "/var/lib/sluice/audit";
  Durability mode = Durability::strict;
  uint64_t segment_bytes = uint64_t{64} << 20;
  std::chrono::seconds segment_age{3600};
  std::chrono::seconds retain_age{30 * 24 * 3600};  // 0: keep forever
  uint64_t retain_bytes = uint64_t{10} << 30;       // 0: no size limit
  uint64_t ring_bytes = uint64_t{4} << 20;          // per shard; raised to fit the longest record
  uint32_t max_param_bytes = 4096;
  std::chrono::milliseconds async_flush{10};
  SinkConfig sink;
};

const char* durability_name(Durability mode);

}  // namespace sluice::audit
