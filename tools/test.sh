#!/usr/bin/env bash
# The test command (what CI runs): installs dependencies, builds the release and the
# sanitizer flavors, runs every ctest test in both and ends with one line
# "N passed, M failed". Exits non-zero when a build or a test fails.
#
# Usage: tools/test.sh [--quick]   (--quick: release build and tests only)
set -euo pipefail

cd "$(dirname "$0")/.."

flavors=(release asan)
case "${1:-}" in
  "") ;;
  --quick) flavors=(release) ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

jobs=$(nproc)
started=$SECONDS
passed=0
failed=0
problems=()

step() { printf '\n==> %s\n' "$*"; }

step "installing dependencies (tools/install-deps.sh)"
tools/install-deps.sh

# Builds one flavor and runs its tests; adds to the totals, records what went wrong.
run_flavor() {
  local flavor=$1 dir=build/$1 log rc line total nfailed
  # The benchmarks are built (and so compile-checked) in release; the sanitizer build
  # runs tests only.
  local build_args=()
  [ "$flavor" = asan ] && build_args=(-DSLUICE_BUILD_BENCH=OFF)
  step "building $flavor (tools/build.sh $flavor${build_args[*]:+ ${build_args[*]}})"
  if ! tools/build.sh "$flavor" "${build_args[@]}"; then
    problems+=("$flavor: build failed")
    return 0
  fi

  local test_env=()
  if [ "$flavor" = asan ]; then
    test_env=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
              UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
  fi
  step "running $flavor tests (ctest in $dir, $jobs jobs${test_env[*]:+, ${test_env[*]}})"
  log=$(mktemp)
  set +e
  (cd "$dir" && env "${test_env[@]}" ctest --output-on-failure --no-tests=error \
      --parallel "$jobs" --timeout 900) 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e

  # ctest ends with e.g. "94% tests passed, 2 tests failed out of 35".
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  rm -f "$log"
  if [ -z "$line" ]; then
    problems+=("$flavor: ctest printed no result (exit status $rc)")
    return 0
  fi
  nfailed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  passed=$((passed + total - nfailed))
  failed=$((failed + nfailed))
  echo "$flavor: $((total - nfailed)) passed, $nfailed failed"
  if [ "$nfailed" -eq 0 ] && [ "$rc" -ne 0 ]; then
    problems+=("$flavor: ctest exited with status $rc")
  fi
  if [ "$nfailed" -gt 0 ]; then
    problems+=("$flavor: $nfailed of $total tests failed")
  fi
}

for flavor in "${flavors[@]}"; do
  run_flavor "$flavor"
done

# Every parser's fuzzer, for a bounded time from its checked-in seeds (not with --quick).
if [ "${#flavors[@]}" -gt 1 ]; then
  step "fuzzing (tools/fuzz.sh, ${FUZZ_SECONDS:=20}s per target)"
  if FUZZ_SECONDS=$FUZZ_SECONDS tools/fuzz.sh; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    problems+=("fuzz: a fuzz target failed to build or found a crash (see the fuzz output above and build/fuzz/)")
  fi
fi

step "summary (${flavors[*]}, $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s)"
for p in "${problems[@]}"; do
  echo "FAILED: $p"
done
echo "$passed passed, $failed failed"
[ "${#problems[@]}" -eq 0 ]
