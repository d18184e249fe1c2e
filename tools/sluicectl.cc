// sluicectl: the operator's command-line tool. Makes SCRAM verifiers for gateway
// users, checks a configuration file, and reads the audit trail (verify, tail,
// search, replay; docs/audit.md).
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "audit/chain.h"
#include "audit/display.h"
#include "audit/listing.h"
#include "audit/reader.h"
#include "audit/replay.h"
#include "protocol/scram.h"
#include "tools/config.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: sluicectl COMMAND\n"
      "  scram-verifier [--iterations N]  read a password on stdin (one line), print its SCRAM-SHA-256\n"
      "                                  verifier for a [[user]] password entry\n"
      "  check-config FILE                validate a configuration file (same as sluiced --check)\n"
      "  audit verify [DIR]               check that the audit trail is complete and unaltered\n"
      "  audit tail [-f] [-n N] [--json] [DIR]\n"
      "                                   the last N records (default 20); -f: then follow new ones\n"
      "  audit search [--user U] [--target T] [--session S] [--since TIME] [--until TIME]\n"
      "               [--decision D] [--type T] [--text SUBSTRING] [--json] [DIR]\n"
      "                                   records matching every filter given\n"
      "  replay SESSION [DIR]             a transcript of one session\n"
      "  version                          print the version\n"
      "The audit commands read DIR, by default the [audit] directory of the configuration\n"
      "(--config FILE, default /etc/sluice/sluice.toml). TIME is UTC: 2026-12-06,\n"
      "2026-12-06T08:01 or 2026-12-06T08:01:53Z; --since is inclusive, --until exclusive.\n",
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

// ---------------------------------------------------------------------------
// Audit trail commands
// ---------------------------------------------------------------------------

namespace audit = sluice::audit;

constexpr int kOk = 0, kFailed = 1, kUsage = 2;
constexpr const char* kDefaultConfig = "/etc/sluice/sluice.toml";
constexpr auto kFollowPoll = std::chrono::milliseconds(250);
constexpr unsigned long kMaxTailRecords = 1'000'000;

// The options of one command: "--name value", "--name=value" or a flag; the rest are
// positional. An unknown option is a usage error, never a positional.
class Options {
 public:
  void value(std::string name, std::string* out) { values_[std::move(name)] = out; }
  void flag(std::string name, bool* out) { flags_[std::move(name)] = out; }

  bool parse(int argc, char** argv, int first, std::vector<std::string>& positional) const {
    for (int i = first; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg.size() < 2 || arg[0] != '-') {
        positional.push_back(arg);
        continue;
      }
      std::optional<std::string> inline_value;
      if (const size_t eq = arg.find('='); eq != std::string::npos) {
        inline_value = arg.substr(eq + 1);
        arg.resize(eq);
      }
      if (const auto f = flags_.find(arg); f != flags_.end() && !inline_value) {
        *f->second = true;
      } else if (const auto v = values_.find(arg); v != values_.end()) {
        if (!inline_value && i + 1 >= argc) return complain("option " + arg + " needs a value");
        *v->second = inline_value ? *inline_value : argv[++i];
      } else {
        return complain("unknown option " + arg);
      }
    }
    return true;
  }

 private:
  static bool complain(const std::string& message) {
    std::fprintf(stderr, "sluicectl: %s\n", message.c_str());
    return false;
  }
  std::map<std::string, std::string*> values_;
  std::map<std::string, bool*> flags_;
};

// DIR when given, else the [audit] directory of the configuration file.
std::optional<std::string> audit_directory(const std::vector<std::string>& positional, size_t index,
                                           const std::string& config) {
  if (positional.size() > index + 1) {
    std::fprintf(stderr, "sluicectl: unexpected argument '%s'\n", positional[index + 1].c_str());
    return std::nullopt;
  }
  if (positional.size() == index + 1) return positional[index];
  const auto loaded = sluice::tools::load_config_file(config);
  if (!loaded.ok()) {
    for (const auto& d : loaded.diagnostics)
      if (d.is_error) std::fprintf(stderr, "%s\n", sluice::tools::format_diagnostic(d).c_str());
    std::fprintf(stderr,
                 "sluicectl: no audit directory given, and %s cannot be loaded to find it: give the directory as DIR,\n"
                 "  or the configuration file with --config FILE\n",
                 config.c_str());
    return std::nullopt;
  }
  return loaded.audit.directory;
}

// Where table rows are cut: the terminal's width, or 120 columns into a pipe or file.
size_t output_width() {
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 120;
}

void warn(const audit::Finding& finding) {
  std::fprintf(stderr, "sluicectl: warning: %s\n", audit::format_finding(finding).c_str());
}

// Prints rows as a table or, with --json, as the records' own lines.
class RowPrinter {
 public:
  explicit RowPrinter(bool json) : json_(json), width_(json ? 0 : output_width()) {
    if (!json_) std::printf("%s\n", audit::format_header(width_).c_str());
  }
  void print(std::vector<audit::Row>& rows) {
    for (const audit::Row& row : rows) {
      if (json_) {
        for (const std::string& line : row.lines) std::printf("%s\n", line.c_str());
      } else {
        std::printf("%s\n", audit::format_row(row, width_).c_str());
      }
    }
    rows.clear();
    std::fflush(stdout);
  }

 private:
  bool json_;
  size_t width_;
};

// Feeds one line to the listing and prints what it releases; a line that is not a
// record is reported and skipped.
void list_line(audit::Listing& listing, RowPrinter& printer, const audit::SegmentFile& segment, uint64_t line_number,
               std::string_view line) {
  std::vector<audit::Row> rows;
  if (!listing.add(line, rows)) warn({segment.name, line_number, 0, "not a JSON record, skipped"});
  printer.print(rows);
}

int audit_verify(int argc, char** argv) {
  std::string config = kDefaultConfig;
  Options options;
  options.value("--config", &config);
  std::vector<std::string> positional;
  if (!options.parse(argc, argv, 3, positional)) return kUsage;
  const auto directory = audit_directory(positional, 0, config);
  if (!directory) return kUsage;

  const audit::VerifyReport report = audit::verify(*directory);
  for (const audit::Finding& w : report.warnings) warn(w);
  if (!report.ok()) {
    std::fprintf(stderr, "sluicectl: audit trail FAILED verification: %s\n",
                 audit::format_finding(*report.error).c_str());
    if (report.records > 0)
      std::fprintf(stderr, "  (%llu records were intact before it)\n", static_cast<unsigned long long>(report.records));
    return kFailed;
  }
  std::printf("audit trail OK: %s: %llu segments, %llu records (%llu..%llu)\n", directory->c_str(),
              static_cast<unsigned long long>(report.segments), static_cast<unsigned long long>(report.records),
              static_cast<unsigned long long>(report.first), static_cast<unsigned long long>(report.last));
  // Written down elsewhere, this pins the newest record: the chain alone cannot show
  // that records were cut from its end.
  std::printf("last record %llu has sha256 %s\n", static_cast<unsigned long long>(report.last),
              audit::to_hex(report.last_hash).c_str());
  return kOk;
}

using Lines = std::deque<std::pair<const audit::SegmentFile*, std::string>>;

// Reads `segment` with `reader` to its end, keeping its last `keep` complete lines.
bool read_to_end(audit::LineReader& reader, const audit::SegmentFile& segment, size_t keep, Lines& out) {
  std::string error;
  if (!reader.open(segment.path, error)) {
    std::fprintf(stderr, "sluicectl: %s\n", error.c_str());
    return false;
  }
  for (;;) {
    std::string_view line;
    switch (reader.next(line)) {
      case audit::LineReader::Result::line:
        out.emplace_back(&segment, line);
        if (out.size() > keep) out.pop_front();
        continue;
      case audit::LineReader::Result::too_long:
        warn({segment.name, reader.line_number(), 0, "line longer than 64 MiB, skipped"});
        continue;
      case audit::LineReader::Result::error:
        std::fprintf(stderr, "sluicectl: %s\n", reader.error().c_str());
        return false;
      case audit::LineReader::Result::end:
      case audit::LineReader::Result::partial:  // being written, or torn: not a record yet
        return true;
    }
  }
}

// The last `count` complete lines of the trail, oldest first. The newest segment is
// read with `newest`, which is left at its end for following.
bool last_lines(const std::vector<audit::SegmentFile>& segments, size_t count, audit::LineReader& newest,
                Lines& out) {
  if (!read_to_end(newest, segments.back(), count, out)) return false;
  audit::LineReader older;
  for (size_t i = segments.size() - 1; i-- > 0 && out.size() < count;) {
    Lines earlier;
    if (!read_to_end(older, segments[i], count - out.size(), earlier)) return false;
    out.insert(out.begin(), earlier.begin(), earlier.end());
  }
  return true;
}

// Follows the trail from where `reader` stands: new lines of the open segment, then
// the next segment once sluiced has started one. Runs until interrupted.
[[noreturn]] void follow(const std::string& directory, audit::SegmentFile current, audit::LineReader& reader,
                         audit::Listing& listing, RowPrinter& printer) {
  for (;;) {
    std::string_view line;
    const auto result = reader.next(line);
    if (result == audit::LineReader::Result::line) {
      list_line(listing, printer, current, reader.line_number(), line);
      continue;
    }
    if (result == audit::LineReader::Result::too_long)
      warn({current.name, reader.line_number(), 0, "line longer than 64 MiB, skipped"});
    if (result == audit::LineReader::Result::error) warn({current.name, 0, 0, reader.error()});
    // Nothing new here. A newer segment means this one is finished: sluiced starts a
    // segment only after the last write to the one before, so read this one to its
    // end once more before moving on.
    std::vector<audit::SegmentFile> segments;
    std::string error;
    if (audit::list_segments(directory, segments, error)) {
      const auto next = std::find_if(segments.begin(), segments.end(),
                                     [&](const audit::SegmentFile& s) { return s.first > current.first; });
      if (next != segments.end()) {
        while (reader.next(line) == audit::LineReader::Result::line)
          list_line(listing, printer, current, reader.line_number(), line);
        current = *next;
        if (!reader.open(current.path, error)) warn({current.name, 0, 0, error});
        continue;
      }
    }
    std::this_thread::sleep_for(kFollowPoll);
  }
}

int audit_tail(int argc, char** argv) {
  std::string config = kDefaultConfig, count_text = "20";
  bool follow_flag = false, json = false;
  Options options;
  options.value("--config", &config);
  options.value("-n", &count_text);
  options.flag("-f", &follow_flag);
  options.flag("--follow", &follow_flag);
  options.flag("--json", &json);
  std::vector<std::string> positional;
  if (!options.parse(argc, argv, 3, positional)) return kUsage;
  char* end = nullptr;
  const unsigned long count = std::strtoul(count_text.c_str(), &end, 10);
  if (count_text.empty() || *end != '\0' || count > kMaxTailRecords) {
    std::fprintf(stderr, "sluicectl: -n must be a number of records from 0 to %lu\n", kMaxTailRecords);
    return kUsage;
  }
  const auto directory = audit_directory(positional, 0, config);
  if (!directory) return kUsage;

  std::vector<audit::SegmentFile> segments;
  std::string error;
  if (!audit::list_segments(*directory, segments, error)) {
    std::fprintf(stderr, "sluicectl: %s\n", error.c_str());
    return kFailed;
  }
  if (segments.empty()) {
    std::fprintf(stderr, "sluicectl: no audit segment files (audit-<N>.jsonl) in %s\n", directory->c_str());
    return kFailed;
  }
  audit::LineReader newest;
  Lines lines;
  if (!last_lines(segments, count, newest, lines)) return kFailed;

  audit::Listing listing({});
  RowPrinter printer(json);
  for (const auto& [segment, line] : lines) list_line(listing, printer, *segment, 0, line);
  if (follow_flag) follow(*directory, segments.back(), newest, listing, printer);
  std::vector<audit::Row> rows;
  listing.finish(rows);
  printer.print(rows);
  return kOk;
}

// Scans the whole trail, giving every line to `take`; false (reported) when the
// directory or a segment cannot be read.
bool scan(const std::string& directory, const audit::LineVisitor& take) {
  std::string error;
  if (!audit::scan_trail(directory, take, warn, error)) {
    std::fprintf(stderr, "sluicectl: %s\n", error.c_str());
    return false;
  }
  return true;
}

// Checks a search option against the values a record can have.
bool one_of(const std::string& option, const std::string& value, std::initializer_list<std::string_view> known) {
  if (value.empty()) return true;
  for (std::string_view k : known)
    if (value == k) return true;
  std::string list;
  for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
  std::fprintf(stderr, "sluicectl: %s must be one of %s, not '%s'\n", option.c_str(), list.c_str(), value.c_str());
  return false;
}

bool time_option(const std::string& option, const std::string& text, std::optional<int64_t>& out) {
  if (text.empty()) return true;
  out = audit::parse_time(text);
  if (!out)
    std::fprintf(stderr,
                 "sluicectl: %s '%s' is not a UTC time like 2026-12-06, 2026-12-06T08:01 or 2026-12-06T08:01:53.5Z\n",
                 option.c_str(), text.c_str());
  return out.has_value();
}

int audit_search(int argc, char** argv) {
  std::string config = kDefaultConfig, since, until;
  bool json = false;
  audit::Listing::Options listing_options;
  listing_options.fold_outcomes = true;
  audit::SearchFilter& filter = listing_options.filter;
  Options options;
  options.value("--config", &config);
  options.value("--user", &filter.user);
  options.value("--target", &filter.target);
  options.value("--session", &filter.session);
  options.value("--since", &since);
  options.value("--until", &until);
  options.value("--decision", &filter.decision);
  options.value("--type", &filter.type);
  options.value("--text", &filter.text);
  options.flag("--json", &json);
  std::vector<std::string> positional;
  if (!options.parse(argc, argv, 3, positional)) return kUsage;
  if (!one_of("--decision", filter.decision, {"allow", "block", "review", "unjudged"}) ||
      !one_of("--type", filter.type,
              {"start", "stop", "session_start", "session_end", "auth_failure", "statement", "outcome", "retention"}) ||
      !time_option("--since", since, filter.since) || !time_option("--until", until, filter.until))
    return kUsage;
  const auto directory = audit_directory(positional, 0, config);
  if (!directory) return kUsage;

  audit::Listing listing(std::move(listing_options));
  RowPrinter printer(json);
  const bool read = scan(*directory, [&](const audit::SegmentFile& segment, uint64_t number, std::string_view line) {
    list_line(listing, printer, segment, number, line);
  });
  std::vector<audit::Row> rows;
  listing.finish(rows);
  printer.print(rows);
  return read ? kOk : kFailed;
}

int replay(int argc, char** argv) {
  std::string config = kDefaultConfig;
  Options options;
  options.value("--config", &config);
  std::vector<std::string> positional;
  if (!options.parse(argc, argv, 2, positional)) return kUsage;
  if (positional.empty()) {
    std::fputs("sluicectl: replay needs a SESSION id (the 16 hex digits `audit search` shows)\n", stderr);
    return kUsage;
  }
  const auto directory = audit_directory(positional, 1, config);
  if (!directory) return kUsage;

  audit::Transcript transcript(positional[0]);
  const bool read = scan(*directory, [&](const audit::SegmentFile& segment, uint64_t number, std::string_view line) {
    if (!transcript.add(line)) warn({segment.name, number, 0, "not a JSON record, skipped"});
  });
  if (!read) return kFailed;
  if (!transcript.found()) {
    std::fprintf(stderr, "sluicectl: no records of session '%s' in %s\n", positional[0].c_str(), directory->c_str());
    return kFailed;
  }
  std::fputs(transcript.render().c_str(), stdout);
  return kOk;
}

int audit_command(int argc, char** argv) {
  const std::string sub = argc > 2 ? argv[2] : "";
  if (sub == "verify") return audit_verify(argc, argv);
  if (sub == "tail") return audit_tail(argc, argv);
  if (sub == "search") return audit_search(argc, argv);
  if (sub.empty())
    std::fputs("sluicectl: audit needs a subcommand: verify, tail or search\n", stderr);
  else
    std::fprintf(stderr, "sluicectl: unknown audit subcommand '%s' (verify, tail or search)\n", sub.c_str());
  return kUsage;
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
  if (command == "audit") return audit_command(argc, argv);
  if (command == "replay") return replay(argc, argv);
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
