#!/usr/bin/env bash
# Masking end to end: a 1,000,000-row, 6-column table read with SELECT and with
# COPY TO STDOUT, directly, through sluiced with masking off, and through sluiced
# with masking on (both tiers; every row has an e-mail address to mask, one row in a
# thousand an AWS key), and (SELECT only) with a column rule on the e-mail column plus
# both tiers on the other columns, in one run, interleaved. Prints rows/s, sluiced's CPU per
# million rows, and the ratios the masking issue targets (masking on vs off CPU,
# masking on vs direct rows/s); saves the output to bench/results/mask-e2e-<date>.txt.
#
# Knobs: BENCH_ROWS=1000000  BENCH_REPEAT=2  SLUICE_BUILD_DIR=build/release
#        BENCH_KEEP=1 keeps the temporary directory.
#        BENCH_PERF=mask-on (or mask-rules...) profiles one SELECT (BENCH_PERF_KIND=copy: COPY)
#        through it instead.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
rows=${BENCH_ROWS:-1000000}
repeat=${BENCH_REPEAT:-2}
pg_bin=/usr/lib/postgresql/15/bin
clk_tck=$(getconf CLK_TCK)
say() { echo "mask-e2e: $*" >&2; }
die() { echo "mask-e2e: error: $*" >&2; exit 1; }

if [ -z "${SLUICE_BUILD_DIR:-}" ]; then
  tools/install-deps.sh
  tools/build.sh release
fi
build_dir=${SLUICE_BUILD_DIR:-$repo/build/release}
sluiced=$build_dir/tools/sluiced
[ -x "$sluiced" ] || die "$sluiced not found: run tools/build.sh release"
# shellcheck source=SCRIPTDIR/../tools/lib.sh
. "$repo/tools/lib.sh"

mkdir -p bench/results
result_file=$repo/bench/results/mask-e2e-$(date +%Y%m%d-%H%M%S).txt
exec > >(tee "$result_file") 2>&1

work=$(mktemp -d /var/tmp/sluice-mask-e2e.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg"
[ "$pg_os_user" = "$(id -un)" ] || chown "$pg_os_user:" "$work/pg"
pgdata=$work/pg/data
declare -A sluiced_pid=()
cleanup() {
  set +e
  for pid in "${sluiced_pid[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  [ -f "$pgdata/postmaster.pid" ] && pg_run "$pg_bin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "mask-e2e: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { local p=$1; while [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; do p=$((p + 1)); done; echo "$p"; }
pg_port=$(free_port $((20000 + RANDOM % 20000)))
password=$(openssl rand -hex 16)

say "PostgreSQL 15 on 127.0.0.1:$pg_port, loading $rows rows"
pg_run "$pg_bin/initdb" -D "$pgdata" -U postgres -E UTF8 --no-locale --auth-local=trust --auth-host=scram-sha-256 \
  >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; die "initdb failed"; }
pg_run tee -a "$pgdata/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work/pg'
shared_buffers = 512MB
max_parallel_workers_per_gather = 0
EOF
pg_run tee "$pgdata/pg_hba.conf" >/dev/null <<EOF
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
EOF
pg_run "$pg_bin/pg_ctl" -D "$pgdata" -l "$work/pg/postgresql.log" -w -t 120 start >/dev/null ||
  { tail -n 30 "$work/pg/postgresql.log" >&2; die "PostgreSQL did not start"; }
pg_run "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/pg" -p "$pg_port" -U postgres -d postgres <<EOF
CREATE ROLE bench LOGIN PASSWORD '$password';
CREATE DATABASE bench OWNER bench;
\c bench
SET ROLE bench;
-- Synthetic customers: every row has an e-mail address (PII), one in a thousand
-- carries an AWS key id in its note (a secret). The rest is ordinary text.
CREATE TABLE customers AS
SELECT g AS id,
       'customer ' || g AS name,
       'user' || g || '@example.com' AS email,
       CASE WHEN g % 1000 = 0 THEN 'rotated key AKIAVQJXXVBOTHD2WTFL last week'
            ELSE 'ordered ' || (g % 17) || ' items, shipped to warehouse ' || (g % 23) || ', no issues reported' END AS note,
       (g % 100000) / 100.0 AS amount,
       timestamptz '2024-01-01' + g * interval '1 minute' AS created
FROM generate_series(1, $rows) g;
VACUUM ANALYZE customers;
EOF

start_sluiced() {  # name, mask section; sets port_of[name]
  local dir=$work/$1 port
  mkdir -p "$dir"
  port=$(free_port $((pg_port + 1 + RANDOM % 1000)))
  (umask 077 && printf '%s' "$password" >"$dir/backend.password")
  cat >"$dir/sluice.toml" <<EOF
[gateway]
listen = "127.0.0.1:$port"
send_queue_bytes = "1MiB"
[audit]
enabled = false
$2
[[target]]
name = "bench"
host = "127.0.0.1"
port = $pg_port
database = "bench"
user = "bench"
password_file = "$dir/backend.password"
[[user]]
name = "bench"
password = "$password"
groups = ["bench"]
EOF
  "$sluiced" --config "$dir/sluice.toml" >"$dir/sluiced.log" 2>&1 </dev/null &
  sluiced_pid[$1]=$!
  port_of[$1]=$port
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  cat "$dir/sluiced.log" >&2
  die "sluiced ($1) did not start"
}
declare -A port_of=()
start_sluiced mask-off $'[policy]\nenabled = false\n[mask]\nenabled = false'
start_sluiced mask-on $'[policy]\nenabled = false'
# Column rules need the statement policy (a read-only group here); `email` is masked by
# its rule, the other text columns are scanned with both tiers.
start_sluiced mask-rules $'[groups.bench]\ntargets = ["*"]\naccess = "read-only"\n[[mask.column]]\ntable = "customers"\ncolumn = "email"'
port_of[direct]=$pg_port

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
now() { date +%s.%N; }
results=$work/results.tsv
: >"$results"
run() {  # target, kind (select|copy), rep
  local target=$1 kind=$2 rep=$3 sql before=0 after=0 start end pid=${sluiced_pid[$1]:-}
  case "$kind" in
    select) sql="SELECT * FROM customers" ;;
    copy) sql="COPY customers TO STDOUT" ;;
  esac
  [ -z "$pid" ] || before=$(cpu_ticks "$pid")
  start=$(now)
  PGPASSWORD=$password "$pg_bin/psql" -X -q -A -t -h 127.0.0.1 -p "${port_of[$target]}" -U bench -d bench -c "$sql" \
    >"$work/out.$target.$kind" || die "$kind through $target failed"
  end=$(now)
  [ -z "$pid" ] || after=$(cpu_ticks "$pid")
  # The output must be all there, and through mask-on hold no raw e-mail or key.
  local lines
  lines=$(wc -l <"$work/out.$target.$kind")
  [ "$lines" -ge "$rows" ] || die "$kind through $target returned $lines lines, expected $rows"
  if [ "$target" != direct ] && [ "$target" != mask-off ] && grep -q -m1 -E 'AKIAVQJXXVBOTHD2WTFL|@example\.com' "$work/out.$target.$kind"; then
    die "raw values passed through mask-on"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$target" "$kind" "$rep" "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" \
    "$((after - before))" >>"$results"
  rm -f "$work/out.$target.$kind"
}

if [ -n "${BENCH_PERF:-}" ]; then  # BENCH_PERF=mask-on: a CPU profile of one SELECT through it
  perf record -F 999 -g -o "$repo/bench/results/perf-${BENCH_PERF}.data" -p "${sluiced_pid[$BENCH_PERF]}" \
    >/dev/null 2>&1 &
  perf_pid=$!
  sleep 1
  run "$BENCH_PERF" "${BENCH_PERF_KIND:-select}" perf
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  perf report -i "$repo/bench/results/perf-${BENCH_PERF}.data" --no-children --percent-limit 1.5 --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -40
  exit 0
fi
echo "sluice masking end-to-end benchmark, $(date -u +%FT%TZ)"
echo "machine: $(nproc) CPUs, kernel $(uname -r); sluice $(git rev-parse --short HEAD 2>/dev/null)$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo ' (uncommitted changes)')"
echo "$rows rows x 6 columns (id, name, email, note, amount, created); psql -A -t to a file; $repeat runs each"
say "warming up"
for t in direct mask-off mask-on; do run "$t" copy warmup; done
: >"$results"
for ((rep = 1; rep <= repeat; rep++)); do
  for kind in select copy; do
    for t in direct mask-off mask-on; do run "$t" "$kind" "$rep"; done
    # COPY of a table with a masked column is refused by design (docs/masking.md).
    [ "$kind" = copy ] || run mask-rules "$kind" "$rep"
  done
done
python3 - "$results" "$rows" "$clk_tck" <<'EOF'
import sys, statistics, collections
path, rows, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
wall = collections.defaultdict(list); cpu = collections.defaultdict(list)
for line in open(path):
    target, kind, rep, seconds, ticks = line.split('\t')
    wall[(target, kind)].append(float(seconds)); cpu[(target, kind)].append(int(ticks) / hz)
print()
print(f"{'read':7} {'target':9} {'rows/s':>10} {'wall s':>7} {'sluiced CPU s':>14} {'CPU us/row':>11}")
for kind in ('select', 'copy'):
    for target in ('direct', 'mask-off', 'mask-on', 'mask-rules'):
        if (target, kind) not in wall: continue
        w = statistics.median(wall[(target, kind)]); c = statistics.median(cpu[(target, kind)])
        cpu_text = '-' if target == 'direct' else f"{c:.2f}"
        per_row = '-' if target == 'direct' else f"{c * 1e6 / rows:.3f}"
        print(f"{kind:7} {target:9} {rows / w:10.0f} {w:7.2f} {cpu_text:>14} {per_row:>11}")
    off_c = statistics.median(cpu[('mask-off', kind)]); on_c = statistics.median(cpu[('mask-on', kind)])
    direct_w = statistics.median(wall[('direct', kind)]); on_w = statistics.median(wall[('mask-on', kind)])
    print(f"  {kind}: masking CPU on/off = {on_c / off_c:.2f} (target <= 1.30); "
          f"rows/s mask-on/direct = {direct_w / on_w:.2f} (target >= 0.70)")
    if ('mask-rules', kind) in wall:
        r_c = statistics.median(cpu[('mask-rules', kind)]); r_w = statistics.median(wall[('mask-rules', kind)])
        print(f"  {kind}: with the email column rule: CPU rules/off = {r_c / off_c:.2f}; "
              f"rows/s rules/direct = {direct_w / r_w:.2f}")
EOF
echo "results: $result_file"
