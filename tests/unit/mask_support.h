// What the masking unit tests share: the built-in pattern pack, compiled once per
// test process (compiling takes seconds under the sanitizers).
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "mask/patterns.h"
#include "mask/scanner.h"

namespace sluice::mask {

inline std::shared_ptr<const PatternSet> builtin_set() {
  static const std::shared_ptr<const PatternSet> set = [] {
    auto compiled = PatternSet::compile(builtin_patterns());
    EXPECT_TRUE(compiled.set) << compiled.error;
    return compiled.set;
  }();
  return set;
}

}  // namespace sluice::mask
