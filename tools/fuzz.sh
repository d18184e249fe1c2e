#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan + UBSan) and runs each for a bounded
# time from its checked-in seed corpus (tests/fuzz/<target>/). A crash fails the run
# and leaves the reproducer in build/fuzz/<target>.crashes/.
#   tools/fuzz.sh            # FUZZ_SECONDS per target (default 30)
#   FUZZ_TARGETS="policy" tools/fuzz.sh   # only some targets
# Each source is compiled once (shared by the targets that link it), on every core;
# the targets then run side by side, one per core.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
cxx="${FUZZ_CXX:-clang++-14}"
out=build/fuzz
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. -isystem /usr/include/postgresql)

declare -A sources=(
  [session]="protocol/session_fuzz.cc protocol/session.cc protocol/session_audit.cc protocol/wire.cc protocol/scram.cc core/base64.cc audit/record.cc audit/writer.cc audit/chain.cc audit/ring.cc core/out_queue.cc core/timer_wheel.cc core/log.cc protocol/oidc.cc protocol/jwt.cc core/https_get.cc core/tls.cc core/json.cc core/small_file.cc"
  [scram]="protocol/scram_fuzz.cc protocol/scram.cc core/base64.cc"
  [jwt]="protocol/jwt_fuzz.cc protocol/jwt.cc core/base64.cc core/json.cc"
  [toml]="core/toml_fuzz.cc core/toml.cc"
  [json]="core/json_fuzz.cc core/json.cc"
  [audit_listing]="audit/listing_fuzz.cc audit/listing.cc audit/replay.cc audit/display.cc audit/record.cc core/json.cc"
  [sql_guard]="policy/sql_guard_fuzz.cc policy/sql_guard.cc"
  [policy]="policy/policy_fuzz.cc policy/engine.cc policy/literal_shape.cc policy/protect.cc policy/classify.cc policy/statement.cc policy/policy.cc policy/parse_tree.cc policy/sql_guard.cc core/json.cc"
  [mask_scanner]="mask/scanner_fuzz.cc mask/scanner.cc mask/patterns.cc mask/validators.cc mask/value_rewrite.cc mask/column_type.cc mask/token_key.cc core/small_file.cc mask/strategy.cc core/json.cc core/config_values.cc core/toml.cc"
  [mask_filter]="mask/filter_fuzz.cc mask/filter.cc mask/config.cc mask/catalog.cc policy/policy.cc policy/statement.cc mask/value_rewrite.cc mask/column_type.cc mask/token_key.cc core/small_file.cc mask/strategy.cc mask/scanner.cc mask/patterns.cc mask/validators.cc protocol/wire.cc core/toml.cc core/config_values.cc core/json.cc core/log.cc"
  [value_rewrite]="mask/value_rewrite_fuzz.cc mask/value_rewrite.cc mask/column_type.cc mask/token_key.cc core/small_file.cc mask/strategy.cc mask/scanner.cc mask/patterns.cc mask/validators.cc core/json.cc core/config_values.cc core/toml.cc"
)
# Libraries per target (all get -lcrypto).
declare -A libraries=(
  [policy]="-l:libpg_query.a -lprotobuf-c"
  [mask_scanner]="-lhs"
  [value_rewrite]="-lhs"
  [mask_filter]="-lhs -lpq"
  [session]="-lssl"
)
failed=0
targets="${FUZZ_TARGETS:-session scram jwt toml json sql_guard policy audit_listing mask_scanner value_rewrite mask_filter}"
lanes=$(nproc)

# Compile: every source any selected target needs, once, in parallel.
objects="$out/obj"
rm -rf "$objects"
mkdir -p "$objects"
unique_sources=$(for target in $targets; do
  [ -n "${sources[$target]:-}" ] || { echo "fuzz: unknown target '$target'" >&2; exit 2; }
  tr ' ' '\n' <<<"${sources[$target]}"
done | sort -u)
object_of() { printf '%s/%s.o' "$objects" "${1//\//__}"; }
export -f object_of
export objects cxx
echo "== fuzz: compiling $(wc -w <<<"$unique_sources") sources on $lanes cores"
if ! printf '%s\n' $unique_sources |
    xargs -P "$lanes" -I{} bash -c 'src="$1"; shift; "$cxx" "$@" -c "$src" -o "$(object_of "$src")" || { echo "fuzz: $src FAILED to compile"; exit 255; }' _ {} "${flags[@]}"; then
  echo "fuzz: compiling failed (the source lists are in tools/fuzz.sh)"
  exit 1
fi

# Link and run one target; its output goes to $out/<target>.log.
run_target() {
  local target=$1 objs=() src
  for src in ${sources[$target]}; do objs+=("$(object_of "$src")"); done
  if ! "$cxx" "${flags[@]}" "${objs[@]}" ${libraries[$target]:-} -lcrypto -o "$out/$target" > "$out/$target.log" 2>&1; then
    echo "fuzz: $target FAILED to link (its source list is in tools/fuzz.sh)"
    cat "$out/$target.log"
    return 1
  fi
  local work="$out/$target.corpus"
  rm -rf "$work" "$out/$target.crashes" && mkdir -p "$work" "$out/$target.crashes"
  cp tests/fuzz/"$target"/* "$work"/
  if ! (cd "$out/$target.crashes" && "../$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "../$target.corpus" > "../$target.log" 2>&1); then
    echo "fuzz: $target FAILED; see $out/$target.log and the crash-* file in $out/$target.crashes/"
    tail -30 "$out/$target.log"
    return 1
  fi
  grep -E "^stat::number_of_executed_units" "$out/$target.log" | sed "s/^/fuzz: $target: /" || true
}

# Run: $lanes targets at a time, each for $seconds.
echo "== fuzz: running $(wc -w <<<"$targets") targets for ${seconds}s each, $lanes at a time"
running=()
for target in $targets; do
  run_target "$target" &
  running+=("$!")
  if [ "${#running[@]}" -ge "$lanes" ]; then
    wait "${running[0]}" || failed=1
    running=("${running[@]:1}")
  fi
done
for pid in "${running[@]}"; do
  wait "$pid" || failed=1
done
exit "$failed"
