#!/usr/bin/env bash
# Configures and builds sluice with Ninja.
#   tools/build.sh release   -> build/release: optimized (-O2 -g), what the demo and benchmarks run
#   tools/build.sh asan      -> build/asan: AddressSanitizer + UBSan, -O1, assertions on
# Extra arguments are passed to cmake's configure step, e.g. -DSLUICE_BUILD_BENCH=OFF.
set -euo pipefail

cd "$(dirname "$0")/.."

usage() { echo "usage: $0 release|asan [extra cmake -D options...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
flavor=$1
shift

case "$flavor" in
  release)
    cmake_args=(
      -DCMAKE_BUILD_TYPE=Release
      "-DCMAKE_C_FLAGS_RELEASE=-O2 -g -DNDEBUG"
      "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -g -DNDEBUG"
    )
    ;;
  asan)
    cmake_args=(
      -DCMAKE_BUILD_TYPE=Debug
      -DSLUICE_SANITIZE=ON
      "-DCMAKE_C_FLAGS_DEBUG=-O1 -g"
      "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g"
    )
    ;;
  *) usage ;;
esac

build_dir=build/$flavor
jobs=$(nproc)

# A build directory configured with another generator cannot be reused: start it afresh.
if [ -f "$build_dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$build_dir/CMakeCache.txt"; then
  echo "build.sh: $build_dir was configured with another generator; removing it" >&2
  rm -rf "$build_dir"
fi

echo "build.sh: configuring $build_dir ($flavor)" >&2
cmake -S . -B "$build_dir" -G Ninja -DSLUICE_WERROR=ON "${cmake_args[@]}" "$@"

echo "build.sh: building $build_dir with $jobs jobs" >&2
cmake --build "$build_dir" --parallel "$jobs"
echo "build.sh: $build_dir is up to date" >&2
