// libFuzzer target for what sluicectl shows of a trail: each input line goes to a
// tail listing, a search listing (joins and filters) and a replay transcript, and
// every row and the transcript are laid out. Record contents are hostile; none of it
// may crash, and nothing laid out may carry a raw control character.
// Run by tools/fuzz.sh (target "audit_listing").
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "audit/listing.h"
#include "audit/replay.h"

namespace {

void check_safe(std::string_view text, bool newlines_allowed) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && !(newlines_allowed && (c == '\n' || c == '\t'))) || u == 0x7F) std::abort();
  }
}

void lay_out(std::vector<sluice::audit::Row>& rows) {
  for (const auto& row : rows) check_safe(sluice::audit::format_row(row, 120), false);
  rows.clear();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::audit;
  Listing tail({});
  SearchFilter filter;
  filter.user = "alice";
  Listing search({filter, true, 4});  // a tiny bound, to exercise the release path
  Transcript transcript("00000000000000a1");
  std::vector<Row> rows;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    const size_t newline = input.find('\n');
    const std::string_view line = input.substr(0, newline);
    input.remove_prefix(newline == std::string_view::npos ? input.size() : newline + 1);
    tail.add(line, rows);
    lay_out(rows);
    search.add(line, rows);
    lay_out(rows);
    transcript.add(line);
  }
  search.finish(rows);
  lay_out(rows);
  check_safe(transcript.render(), true);
  return 0;
}
