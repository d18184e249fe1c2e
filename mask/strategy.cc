// Names of the masking strategies as written in the configuration.
#include "mask/strategy.h"

namespace sluice::mask {

const char* strategy_name(Strategy strategy) {
  switch (strategy) {
    case Strategy::redact:
      return "redact";
    case Strategy::partial:
      return "partial";
    case Strategy::token:
      return "token";
    case Strategy::null:
      return "null";
  }
  return "redact";  // unreachable for a valid enumerator
}

bool parse_strategy(std::string_view text, Strategy& out) {
  for (Strategy s : {Strategy::redact, Strategy::partial, Strategy::token, Strategy::null}) {
    if (text == strategy_name(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

}  // namespace sluice::mask
