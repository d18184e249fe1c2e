#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan + UBSan) and runs each for a bounded
# time from its checked-in seed corpus (tests/fuzz/<target>/). A crash fails the run
# and leaves the reproducer in build/fuzz/<target>.crashes/.
#   tools/fuzz.sh            # FUZZ_SECONDS per target (default 30)
#   FUZZ_TARGETS="policy" tools/fuzz.sh   # only some targets
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
for target in $targets; do
  echo "== fuzz: building $target"
  # shellcheck disable=SC2086
  if ! "$cxx" "${flags[@]}" ${sources[$target]} ${libraries[$target]:-} -lcrypto -o "$out/$target"; then
    echo "fuzz: $target FAILED to build (its source list is in tools/fuzz.sh)"
    failed=1
    continue
  fi
  work="$out/$target.corpus"
  rm -rf "$work" && mkdir -p "$work" "$out/$target.crashes"
  cp tests/fuzz/"$target"/* "$work"/
  echo "== fuzz: running $target for ${seconds}s"
  if ! (cd "$out/$target.crashes" && "../$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "../$target.corpus" > "../$target.log" 2>&1); then
    echo "fuzz: $target FAILED; see $out/$target.log and the crash-* file in $out/$target.crashes/"
    tail -30 "$out/$target.log"
    failed=1
  else
    grep -E "^stat::number_of_executed_units" "$out/$target.log" | sed "s/^/fuzz: $target: /" || true
  fi
done
exit "$failed"
