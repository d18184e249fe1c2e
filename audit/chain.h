// The hash chain that makes the audit trail tamper-evident, and the names of its
// segment files. A record's line is `{"n":N,"prev":"<64 hex>",` + its body (record.h);
// `prev` is the SHA-256 of the previous record's line without its newline, so the
// records of a directory form one chain from record 1 to the newest (docs/audit.md).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::audit {

using Hash = std::array<uint8_t, 32>;

inline constexpr Hash kGenesisHash{};  // `prev` of record 1: 64 zeros

Hash hash_line(std::string_view line);  // SHA-256 of the line, without its newline
std::string to_hex(const Hash& hash);
bool from_hex(std::string_view hex, Hash& hash);  // exactly 64 lowercase hex digits

// Appends `{"n":N,"prev":"<hex>",` + body + '\n' to out.
void append_line(std::string& out, uint64_t n, const Hash& prev, std::string_view body);

// The chain fields at the start of a line (without newline). false when the line does
// not start exactly with `{"n":<digits>,"prev":"<64 hex>",`.
bool parse_chain_prefix(std::string_view line, uint64_t& n, Hash& prev);

// Segment files: "audit-<first record number, 20 digits>.jsonl".
std::string segment_file_name(uint64_t first_record);
std::optional<uint64_t> parse_segment_file_name(std::string_view name);

}  // namespace sluice::audit
