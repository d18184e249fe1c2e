// The session's view of result masking. protocol/ knows nothing of masking rules or
// patterns: the session holds every backend message the filter inspects (rows, row
// descriptions, COPY data, errors, notices, notifications, function results), hands
// it over whole, and sends the client what the filter returns. mask/ implements it
// (mask/filter.h); a session without a filter forwards everything untouched.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/settings.h"
#include "protocol/wire.h"

namespace sluice::protocol {

class ResultFilter {
 public:
  enum class Action : uint8_t {
    forward,  // the message is safe as it came: send it unchanged
    replace,  // send `replacement` (a whole message, type and length included) instead
    refuse,   // the message cannot be made safe: it must not reach the client at all;
              // the session ends with `refusal` (never forwards, never truncates)
  };

  virtual ~ResultFilter() = default;
  // Messages of this type (backend, ready state) are held whole and passed to filter()
  // instead of being streamed through. Constant for the filter's life.
  virtual bool inspects(uint8_t type) const = 0;
  // A backend message of a type the filter does not inspect went through (it still
  // learns where one result ends and the next begins).
  virtual void passed(uint8_t type) = 0;
  // `body` is one held backend message, in stream order.
  virtual Action filter(uint8_t type, std::span<const uint8_t> body, std::vector<uint8_t>& replacement,
                        ErrorInfo& refusal) = 0;
  // Values masked since the last call, as "kind":count pairs for the audit trail
  // (empty when none); resets the counts.
  virtual std::vector<std::pair<std::string, uint64_t>> take_masked_counts() = 0;
  // Values sent in clear text since the last call although a column rule covers them,
  // because the identity is in one of the rule's exempt groups ("kind":count), so the
  // audit trail shows the break-glass access; resets the counts.
  virtual std::vector<std::pair<std::string, uint64_t>> take_clear_counts() { return {}; }
  // A Bind parameter about to be written to the audit trail (`bytes` as the client
  // sent it; `binary`: format 1). True when it holds something the masking patterns
  // find: `out` is then what to record instead (text with the findings rewritten).
  virtual bool mask_parameter(std::span<const uint8_t> bytes, bool binary, std::string& out) = 0;
};

// One per shard. open() is called once per session, after the client authenticated.
class ResultFilterFactory {
 public:
  virtual ~ResultFilterFactory() = default;
  // nullptr: nothing to mask for this identity on this target.
  virtual std::unique_ptr<ResultFilter> open(const std::string& user, const std::vector<std::string>& groups,
                                             const Target& target) = 0;
};

}  // namespace sluice::protocol
