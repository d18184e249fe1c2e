// `sluicectl replay SESSION`: a psql-like transcript of one session from the trail: who
// connected, from where, when and how it ended, then every statement with its
// decision, duration, parameters, outcome and any captured rows.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace sluice::audit {

class Transcript {
 public:
  explicit Transcript(std::string session) : session_(std::move(session)) {}

  // Takes one line of the trail, keeping it when it belongs to the session. False when
  // the line is not a JSON object.
  bool add(std::string_view line);

  bool found() const { return !lines_.empty(); }

  // The transcript, safe to print on a terminal.
  std::string render() const;

 private:
  std::string session_;
  std::vector<std::string> lines_;  // the session's records, in trail order
  core::JsonDocument document_;     // add()'s, reused
};

}  // namespace sluice::audit
