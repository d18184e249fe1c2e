#!/usr/bin/env bash
# End-to-end benchmark: pgbench against PostgreSQL 15 directly, through sluice with
# statement policy and the audit trail in several settings, and through pgbouncer, in
# one run on this machine, runs interleaved; then 1,000 idle sessions to measure
# sluiced's memory per session. Prints a table with ratios (policy on / off, audit
# strict and async / off among them) and saves the whole output to
# bench/results/e2e-<date>.txt.
#
# Targets (each sluiced one is its own process, configured alike but for the noted keys):
#   direct        PostgreSQL itself
#   policy-off    sluiced, [policy] enabled = false, [audit] enabled = false
#   audit-off     sluiced, policy on (the bench user's group has access "read-write" and
#                 packs ["agent-default"], so every statement is parsed and judged),
#                 [audit] enabled = false
#   audit-async   policy on, [audit] mode = "async"
#   audit-strict  policy on, [audit] mode = "strict": sluiced's defaults, what users run
#   pgbouncer     pgbouncer in session mode
#   tls           sluiced as audit-off, clients connect with TLS (sslmode=require)
#   pgbouncer-tls pgbouncer as above, clients connect with TLS (client_tls_sslmode)
# (TLS toward PostgreSQL is not in either: sluice does not offer it yet, so both TLS
# targets encrypt the client side only, and the comparison is like for like.)
# The audit directories are on the file system of /var/tmp, so fdatasync is real.
# Workloads:
#   select-only pgbench's builtin -S (one SELECT by primary key per transaction)
#   agent-mix   bench/e2e/agent_mix.sql: joins, an aggregate, a pg_catalog query, and an
#               UPDATE by key + multi-row INSERT into a scratch table in a transaction
#
# Knobs (environment):
#   BENCH_SECONDS=10        length of one measured pgbench run
#   BENCH_REPEAT=2          runs per (workload, mode, clients, target)
#   BENCH_CLIENTS="16 64"   pgbench -c values
#   BENCH_MODES="simple extended prepared"
#   BENCH_WORKLOADS="select-only agent-mix"
#   BENCH_TARGETS="direct policy-off audit-off audit-async audit-strict pgbouncer"
#                           (also: tls pgbouncer-tls)
#   BENCH_THREADS=2         pgbench -j
#   BENCH_SCALE=10          pgbench -i -s
#   BENCH_IDLE_SESSIONS=1000   0 skips the idle-session test
#   BENCH_CONNECT_SECONDS=5 length of one connection-rate run (0 skips that phase)
#   BENCH_CONNECT_THREADS=4 client threads opening connections
#   BENCH_CONNECT_REPEAT=2  connection-rate runs per kind
#   BENCH_KEEP=1            keep the temporary directory (logs, configs) afterwards
#   BENCH_WORK_ROOT=/var/tmp  where that directory (PostgreSQL's data, the audit
#                           directories) goes; /dev/shm (tmpfs) takes the disk's sync
#                           latency out, to tell it from sluice's own cost
#   SLUICE_BUILD_DIR=...    use binaries from there instead of building build/release
#   SLUICE_SHARDS=0         sluiced [gateway] shards (0 = one per core)
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

seconds=${BENCH_SECONDS:-10}
repeat=${BENCH_REPEAT:-2}
read -r -a clients_list <<<"${BENCH_CLIENTS:-16 64}"
read -r -a modes <<<"${BENCH_MODES:-simple extended prepared}"
read -r -a workloads <<<"${BENCH_WORKLOADS:-select-only agent-mix}"
read -r -a targets <<<"${BENCH_TARGETS:-direct policy-off audit-off audit-async audit-strict pgbouncer}"
threads=${BENCH_THREADS:-2}
scale=${BENCH_SCALE:-10}
idle_sessions=${BENCH_IDLE_SESSIONS:-1000}
idle_timeout=120  # seconds to wait for all idle sessions to connect
connect_seconds=${BENCH_CONNECT_SECONDS:-5}
connect_threads=${BENCH_CONNECT_THREADS:-4}
connect_repeat=${BENCH_CONNECT_REPEAT:-2}
connect_tokens=60000  # distinct tokens for the cold runs, split between repetitions
warmup_seconds=3
pg_bin=/usr/lib/postgresql/15/bin
clk_tck=$(getconf CLK_TCK)

has_target() { local t; for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }
is_sluiced() { case "$1" in policy-off | audit-off | audit-async | audit-strict | tls) return 0 ;; *) return 1 ;; esac; }
is_pgbouncer() { case "$1" in pgbouncer | pgbouncer-tls) return 0 ;; *) return 1 ;; esac; }
uses_tls() { case "$1" in tls | pgbouncer-tls | oidc) return 0 ;; *) return 1 ;; esac; }
has_sluiced() { local t; for t in "${targets[@]}"; do is_sluiced "$t" && return 0; done; return 1; }
has_workload() { local w; for w in "${workloads[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
say() { echo "e2e: $*" >&2; }
die() { echo "e2e: error: $*" >&2; exit 1; }

for t in "${targets[@]}"; do
  case "$t" in direct | policy-off | audit-off | audit-async | audit-strict | pgbouncer | tls | pgbouncer-tls) ;;
    *) die "unknown target '$t' in BENCH_TARGETS (one of: direct policy-off audit-off audit-async audit-strict pgbouncer tls pgbouncer-tls)" ;;
  esac
done
for w in "${workloads[@]}"; do
  case "$w" in select-only | agent-mix) ;; *) die "unknown workload '$w' in BENCH_WORKLOADS" ;; esac
done

runs_total=$((repeat * ${#workloads[@]} * ${#modes[@]} * ${#clients_list[@]} * ${#targets[@]}))
estimate=$((45 + ${#targets[@]} * ${#workloads[@]} * (warmup_seconds + 1) + runs_total * (seconds + 1)))
[ "$idle_sessions" -gt 0 ] && estimate=$((estimate + 2 * 30))
duration_text="about $((estimate / 60)) min $((estimate % 60)) s (at most ~$(((estimate + 300) / 60)) min)"
say "expected duration after the build: $duration_text"

# ---------------------------------------------------------------- dependencies, binaries
if [ -z "${SLUICE_BUILD_DIR:-}" ]; then
  tools/install-deps.sh
  if has_sluiced; then tools/build.sh release; fi
fi

# From here on, everything printed also goes to the results file.
mkdir -p bench/results
result_file=$repo/bench/results/e2e-$(date +%Y%m%d-%H%M%S).txt
exec > >(tee "$result_file") 2>&1
echo "sluice end-to-end benchmark, $(date -u +%FT%TZ)"
echo "  $runs_total pgbench runs of ${seconds}s (${#workloads[@]} workloads x ${#modes[@]} modes x ${#clients_list[@]} client counts x ${#targets[@]} targets x $repeat)"
echo "  expected duration: $duration_text"
echo "  results: $result_file"
build_dir=${SLUICE_BUILD_DIR:-$repo/build/release}
sluiced=$build_dir/tools/sluiced
sluicectl=$build_dir/tools/sluicectl
connect_rate=$build_dir/bench/connect_rate
if has_sluiced; then
  [ -x "$sluiced" ] || die "$sluiced not found: run tools/build.sh release"
fi

# pg_os_user and pg_run: PostgreSQL and pgbouncer run as the postgres OS user when this is root.
# shellcheck source=SCRIPTDIR/../tools/lib.sh
. "$repo/tools/lib.sh"

# 1,000 sessions need file descriptors: clients here, client + backend sockets in the proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((2 * idle_sessions + 200)) ]; then
  say "open-file limit $(ulimit -n) is too low for $idle_sessions idle sessions; raise 'ulimit -Hn'"
  idle_sessions=$((($(ulimit -n) - 200) / 2))
  [ "$idle_sessions" -gt 0 ] || idle_sessions=0
  say "measuring $idle_sessions idle sessions instead"
fi

# ---------------------------------------------------------------- workspace and cleanup
work=$(mktemp -d "${BENCH_WORK_ROOT:-/var/tmp}/sluice-e2e.XXXXXX")
chmod 755 "$work"
mkdir -p "$work/pg" "$work/sluice"
[ "$pg_os_user" = "$(id -un)" ] || chown "$pg_os_user:" "$work/pg"
pgdata=$work/pg/data
declare -A proxy_pid=() proxy_port=()  # by target
idle_client_pid=

stop_pid() {  # pid, seconds to wait after SIGTERM before SIGKILL
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  set +e
  stop_pid "$idle_client_pid" 2
  for t in "${!proxy_pid[@]}"; do stop_pid "${proxy_pid[$t]}" 30; done
  [ -f "$pgdata/postmaster.pid" ] && pg_run "$pg_bin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "e2e: kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {  # a TCP port nobody listens on, starting the search at $1
  local p=$1
  while [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; do p=$((p + 1)); done
  echo "$p"
}
wait_port() {  # port, pid that must stay alive, name, log
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    if ! kill -0 "$2" 2>/dev/null; then tail -n 30 "$4" >&2 || true; die "$3 exited during startup (log: $4)"; fi
    sleep 0.1
  done
  tail -n 30 "$4" >&2 || true
  die "$3 did not accept connections on 127.0.0.1:$1 within 10 s"
}
base_port=$((20000 + RANDOM % 20000))
pg_port=$(free_port "$base_port")
next_port=$((pg_port + 1))
for t in "${targets[@]}"; do
  [ "$t" = direct ] && continue
  proxy_port[$t]=$(free_port "$next_port")
  next_port=$((proxy_port[$t] + 1))
done

# One password for every login, and one SCRAM verifier of it shared by PostgreSQL and
# pgbouncer's auth_file: pgbouncer 1.18 logs a forced user (user= in [databases]) into
# the server with the SCRAM keys of the client's own login instead of the password= it
# holds (pgbouncer issues #944, #1461), which works only when both verifiers are equal.
# The proxies still hold the backend credential; clients authenticate to the proxy.
bench_password=$(openssl rand -hex 16)
shared_verifier=$(printf '%s' "$bench_password" | python3 bench/e2e/scram_verifier.py)

# ---------------------------------------------------------------- PostgreSQL
say "creating a PostgreSQL 15 cluster on 127.0.0.1:$pg_port"
pg_run "$pg_bin/initdb" -D "$pgdata" -U postgres -E UTF8 --no-locale \
  --auth-local=trust --auth-host=scram-sha-256 >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log" >&2; die "initdb failed"; }
pg_run tee -a "$pgdata/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work/pg'
max_connections = 1200
shared_buffers = 256MB
synchronous_commit = off
password_encryption = 'scram-sha-256'
max_parallel_workers_per_gather = 0
max_parallel_maintenance_workers = 0
EOF
pg_run tee "$pgdata/pg_hba.conf" >/dev/null <<EOF
local all all               trust
host  all all 127.0.0.1/32  scram-sha-256
EOF
pg_run "$pg_bin/pg_ctl" -D "$pgdata" -l "$work/pg/postgresql.log" -w -t 120 start >/dev/null ||
  { tail -n 30 "$work/pg/postgresql.log" >&2; die "PostgreSQL did not start"; }
pg_psql() { pg_run "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/pg" -p "$pg_port" -U postgres "$@"; }
pg_psql -d postgres <<EOF
CREATE ROLE bench_proxy LOGIN PASSWORD '$shared_verifier';
CREATE DATABASE bench OWNER bench_proxy;
EOF
say "pgbench -i -s $scale"
PGPASSWORD=$bench_password "$pg_bin/pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$pg_port" -U bench_proxy bench \
  >"$work/pgbench-init.log" 2>&1 || { cat "$work/pgbench-init.log" >&2; die "pgbench -i failed"; }
# agent-mix's scratch table: what an agent writes its own notes into.
pg_psql -d bench <<EOF
CREATE TABLE agent_scratch (
  id bigserial PRIMARY KEY,
  aid integer NOT NULL,
  bid integer NOT NULL,
  delta integer NOT NULL,
  note text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE agent_scratch OWNER TO bench_proxy;
EOF
pg_psql -d bench -c "VACUUM ANALYZE"

# ---------------------------------------------------------------- TLS certificate
# One self-signed certificate for the TLS targets and the connection-rate phase
# (clients use sslmode=require).
if has_target tls || has_target pgbouncer-tls || { has_sluiced && [ "$connect_seconds" != 0 ]; }; then
  mkdir -p "$work/certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$work/certs/server.key" -out "$work/certs/server.crt" >/dev/null 2>&1 || die "openssl could not make a certificate"
  chmod 600 "$work/certs/server.key"
  [ "$pg_os_user" = "$(id -un)" ] || chown -R "$pg_os_user:" "$work/certs"
fi

# ---------------------------------------------------------------- sluiced
# One sluiced process per sluiced target, with the same settings but for [policy] and
# [audit] (see the target list at the top).
if has_sluiced; then
  if verifier=$(printf '%s' "$bench_password" | "$sluicectl" scram-verifier 2>/dev/null) &&
     [[ "$verifier" == SCRAM-SHA-256\$* ]]; then
    :
  else
    say "warning: 'sluicectl scram-verifier' failed; computing the verifier with bench/e2e/scram_verifier.py"
    verifier=$(printf '%s' "$bench_password" | python3 bench/e2e/scram_verifier.py)
  fi
  (umask 077 && printf '%s' "$bench_password" >"$work/sluice/bench.password")
fi

start_sluiced() {  # target, port; sets started_pid
  local dir=$work/$1 policy_section= audit_section oidc_section=
  mkdir -p "$dir"
  case "$1" in
    policy-off) policy_section=$'[policy]\nenabled = false\n' audit_section='enabled = false' ;;
    audit-off | tls) audit_section='enabled = false' ;;
    oidc)
      audit_section='enabled = false'
      oidc_section=$(printf '[oidc]\n[[oidc.issuer]]\nissuer = "https://idp.bench"\naudience = "sluice"\njwks_file = "%s"\nalgorithms = ["ES256"]\n' "$work/oidc/jwks.json")
      ;;
    audit-async) audit_section='mode = "async"' ;;
    audit-strict) audit_section='mode = "strict"' ;;
  esac
  cat >"$dir/sluice.toml" <<EOF
[gateway]
listen = "127.0.0.1:$2"
shards = ${SLUICE_SHARDS:-0}
max_client_connections = 2000
log_level = "info"
$(uses_tls "$1" && printf '\n[tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$work/certs/server.crt" "$work/certs/server.key")

[audit]
directory = "$dir/audit"
$audit_section

$policy_section
$oidc_section
[[target]]
name = "bench"
host = "127.0.0.1"
port = $pg_port
database = "bench"
user = "bench_proxy"
password_file = "$work/sluice/bench.password"

[[user]]
name = "bench"
password = "$verifier"
groups = ["bench"]

[groups.bench]
targets = ["*"]
access = "read-write"
packs = ["agent-default"]
EOF
  "$sluiced" --config "$dir/sluice.toml" --check >"$dir/check.log" 2>&1 ||
    { cat "$dir/check.log" >&2; die "sluiced --check refused $dir/sluice.toml"; }
  say "starting sluiced ($1) on 127.0.0.1:$2"
  "$sluiced" --config "$dir/sluice.toml" >"$dir/sluiced.log" 2>&1 </dev/null &
  started_pid=$!
  wait_port "$2" "$started_pid" "sluiced ($1)" "$dir/sluiced.log"
}
for t in "${targets[@]}"; do
  is_sluiced "$t" || continue
  start_sluiced "$t" "${proxy_port[$t]}"
  proxy_pid[$t]=$started_pid
  [ "$t" = policy-off ] && continue
  # The policy must really be on: a TRUNCATE (of pgbench's unused history table) is one
  # of the agent-default pack's refusals.
  if out=$(PGPASSWORD=$bench_password "$pg_bin/psql" -X -q -h 127.0.0.1 -p "${proxy_port[$t]}" -U bench -d bench \
           -c "TRUNCATE pgbench_history" 2>&1) || ! grep -q 'blocked by sluice policy' <<<"$out"; then
    die "sluiced ($t, policy on) did not refuse TRUNCATE: ${out:-it succeeded}"
  fi
done

# ---------------------------------------------------------------- pgbouncer
# Same shape as sluice: clients authenticate to the proxy with SCRAM (a verifier in the
# auth_file), the proxy holds the backend credential. bench_idle is the idle-session
# test's pool, sized so that every idle client holds a server connection, as in sluice.
start_pgbouncer() {  # target, port; sets started_pid
  local pgb=$work/$1 tls_lines= i
  mkdir -p "$pgb"
  [ "$pg_os_user" = "$(id -un)" ] || chown "$pg_os_user:" "$pgb"
  if uses_tls "$1"; then
    tls_lines="client_tls_sslmode = require
client_tls_key_file = $work/certs/server.key
client_tls_cert_file = $work/certs/server.crt"
  fi
  printf '"bench" "%s"\n' "$shared_verifier" |
    pg_run tee "$pgb/userlist.txt" >/dev/null
  pg_run chmod 600 "$pgb/userlist.txt"
  pg_run tee "$pgb/pgbouncer.ini" >/dev/null <<EOF
[databases]
bench = host=127.0.0.1 port=$pg_port dbname=bench user=bench_proxy password=$bench_password
bench_idle = host=127.0.0.1 port=$pg_port dbname=bench user=bench_proxy password=$bench_password pool_size=$((idle_sessions + 10))

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $pgb/userlist.txt
pool_mode = session
max_client_conn = 2000
default_pool_size = 100
logfile = $pgb/pgbouncer.log
pidfile = $pgb/pgbouncer.pid
log_connections = 0
log_disconnections = 0
ignore_startup_parameters = extra_float_digits
$tls_lines
EOF
  say "starting $1 on 127.0.0.1:$2"
  # runuser's PAM session resets the open-file limit: raise it again for pgbouncer.
  # shellcheck disable=SC2016 # expanded by the inner bash
  pg_run bash -c 'ulimit -n "$(ulimit -Hn)"; exec pgbouncer -d -q "$1"' _ "$pgb/pgbouncer.ini" ||
    { tail -n 30 "$pgb/pgbouncer.log" >&2; die "pgbouncer did not start"; }
  for ((i = 0; i < 50; i++)); do [ -s "$pgb/pgbouncer.pid" ] && break; sleep 0.1; done
  started_pid=$(cat "$pgb/pgbouncer.pid" 2>/dev/null) || die "pgbouncer wrote no pidfile (log: $pgb/pgbouncer.log)"
  wait_port "$2" "$started_pid" "$1" "$pgb/pgbouncer.log"
}
for t in "${targets[@]}"; do
  is_pgbouncer "$t" || continue
  start_pgbouncer "$t" "${proxy_port[$t]}"
  proxy_pid[$t]=$started_pid
done

# ---------------------------------------------------------------- environment
echo
echo "machine:    $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "sluice:     $(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo ' (uncommitted changes)'), $sluiced"
echo "postgresql: $("$pg_bin/postgres" --version)"
echo "pgbouncer:  $(pgbouncer --version | head -n 1)"
echo "pgbench:    -n -j $threads -T $seconds, scale $scale, workloads: ${workloads[*]}; everything on this machine (client, proxies, server share the CPUs)"
echo

# ---------------------------------------------------------------- throughput runs
target_conn() {  # sets port, user, password, pid for a target
  case "$1" in
    direct) port=$pg_port user=bench_proxy password=$bench_password pid= ;;
    *) port=${proxy_port[$1]} user=bench password=$bench_password pid=${proxy_pid[$1]} ;;
  esac
}
declare -A busy_seconds=()  # by target: seconds of pgbench load, for the audit rates
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

results_tsv=$work/results.tsv
printf 'workload\tmode\tclients\ttarget\trep\ttps\tlatency_ms\ttransactions\tcpu_ticks\tok\n' >"$results_tsv"

# One pgbench run; appends a line to results.tsv when $5 (rep) is not "warmup".
run_pgbench() {  # target workload mode clients rep duration
  local target=$1 workload=$2 mode=$3 clients=$4 rep=$5 duration=$6 port user password pid
  local before=- after=- out rc tps lat txns ticks=- ok=1 script
  target_conn "$target"
  case "$workload" in
    select-only) script=(-S) ;;
    agent-mix) script=(-f "$repo/bench/e2e/agent_mix.sql" -s "$scale") ;;  # -s sets :scale for a custom script
  esac
  [ -z "$pid" ] || before=$(cpu_ticks "$pid" 2>/dev/null || echo -)
  set +e
  local sslmode=disable
  uses_tls "$target" && sslmode=require
  out=$(PGSSLMODE=$sslmode PGPASSWORD=$password "$pg_bin/pgbench" -n "${script[@]}" -M "$mode" -c "$clients" -j "$threads" -T "$duration" \
        -h 127.0.0.1 -p "$port" -U "$user" bench 2>&1)
  rc=$?
  set -e
  [ -z "$pid" ] || after=$(cpu_ticks "$pid" 2>/dev/null || echo -)
  busy_seconds[$target]=$((${busy_seconds[$target]:-0} + duration))
  tps=$(sed -n -E 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | tail -n 1)
  lat=$(sed -n -E 's/^latency average = ([0-9.]+) ms.*/\1/p' <<<"$out")
  txns=$(sed -n -E 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
  if [ "$rc" -ne 0 ] || [ -z "$tps" ] || [ -z "$lat" ] || [ -z "$txns" ]; then
    ok=0 tps=0 lat=0 txns=0
    echo "  FAILED: $target $workload $mode -c $clients (pgbench exit $rc):"
    tail -n 5 <<<"$out" | sed 's/^/    /'
  fi
  if [ "$before" != - ] && [ "$after" != - ]; then ticks=$((after - before)); fi
  [ "$rep" = warmup ] && return 0
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$mode" "$clients" "$target" "$rep" "$tps" "$lat" "$txns" "$ticks" "$ok" >>"$results_tsv"
  printf '  %-11s %-9s -c %-3s %-12s run %s: %10.0f tps  %7.3f ms%s\n' "$workload" "$mode" "$clients" "$target" "$rep" "$tps" "$lat" \
    "$([ "$ticks" != - ] && [ "$txns" -gt 0 ] && awk -v t="$ticks" -v n="$txns" -v hz="$clk_tck" 'BEGIN { printf "  %6.1f us CPU/txn", t * 1e6 / hz / n }')"
}

say "warming up each target for ${warmup_seconds}s per workload"
for w in "${workloads[@]}"; do
  for t in "${targets[@]}"; do run_pgbench "$t" "$w" simple 16 warmup "$warmup_seconds"; done
done

# The order of the targets shifts by one from one repetition of a configuration to the
# next, so each target runs first, second, ... equally often (whatever position in a
# sequence of back-to-back runs favours, it favours no target). It also shifts from one
# configuration to the next within a repetition.
echo "runs (target order rotates from one repetition and one configuration to the next):"
for ((rep = 1; rep <= repeat; rep++)); do
  config=0
  for workload in "${workloads[@]}"; do
    for mode in "${modes[@]}"; do
      for clients in "${clients_list[@]}"; do
        for ((t = 0; t < ${#targets[@]}; t++)); do
          run_pgbench "${targets[(t + rep - 1 + config) % ${#targets[@]}]}" "$workload" "$mode" "$clients" "$rep" "$seconds"
        done
        config=$((config + 1))
      done
    done
  done
done

echo
echo "$seconds s per run, mean of $repeat runs; spread = (max - min) / mean TPS; CPU = proxy utime+stime per transaction;"
echo "paired median: the median over repetitions of one target's TPS over another's in the same repetition"
echo "(a transaction is one SELECT for select-only, the whole script of 8 statements for agent-mix)"
python3 bench/e2e/report.py "$results_tsv" "$clk_tck"

# The idle test's sluiced: the one configured as users run it, else the closest.
idle_sluice=
for t in audit-strict audit-async audit-off policy-off; do
  if has_target "$t"; then idle_sluice=$t; break; fi
done

check_sluiced_log() {  # target pid
  local log=$work/$1/sluiced.log expected='policy is disabled|\[(policy|audit)\] enabled = false'
  if ! kill -0 "$2" 2>/dev/null; then
    echo
    echo "sluiced ($1) EXITED during the benchmark; its log ends with:"
    tail -n 20 "$log" | sed 's/^/  /'
  elif grep -E '(warning|error): ' "$log" | grep -v -q -E "$expected"; then
    echo
    echo "sluiced ($1) logged $(grep -E '(warning|error): ' "$log" | grep -c -v -E "$expected") unexpected warning/error line(s), the last ones:"
    grep -E '(warning|error): ' "$log" | grep -v -E "$expected" | tail -n 5 | sed 's/^/  /'
  fi
}
for t in "${targets[@]}"; do
  is_sluiced "$t" && check_sluiced_log "$t" "${proxy_pid[$t]}"
done

# ---------------------------------------------------------------- audit writer figures
# A sluiced that stops logs "audit: N records, B bytes, F fdatasync calls": each audit
# target is stopped after the runs (and restarted for the idle test when it is the one
# measured there). Rates are over the seconds its pgbench runs lasted, warm-up included.
# verify checks that the trail written under load is whole.
audit_rows=
for t in audit-async audit-strict; do
  has_target "$t" || continue
  stop_pid "${proxy_pid[$t]}" 30
  line=$(grep -o 'audit: [0-9]* records, [0-9]* bytes, [0-9]* fdatasync calls' "$work/$t/sluiced.log" | tail -n 1 || true)
  if [ -z "$line" ]; then
    audit_rows+="  $t: no audit summary in its log (did it exit cleanly?)"$'\n'
    continue
  fi
  read -r records bytes syncs < <(sed -E 's/audit: ([0-9]+) records, ([0-9]+) bytes, ([0-9]+) fdatasync calls/\1 \2 \3/' <<<"$line")
  verified=ok
  "$sluicectl" audit verify "$work/$t/audit" >"$work/$t/verify.log" 2>&1 || verified="FAILED ($(tail -n 1 "$work/$t/verify.log"))"
  if [ "$t" = "$idle_sluice" ] && [ "$idle_sessions" -gt 0 ]; then
    start_sluiced "$t" "${proxy_port[$t]}"
    proxy_pid[$t]=$started_pid
  fi
  audit_rows+=$(awk -v t="$t" -v r="$records" -v b="$bytes" -v f="$syncs" -v s="${busy_seconds[$t]:-0}" -v v="$verified" \
    'BEGIN { printf "  %-13s %10d %12d %10d %9d %12.0f %14.1f %13.0f  %s", t, r, b, f, s, (s ? r / s : 0), (s ? f / s : 0), (r ? b / r : 0), v }')$'\n'
done
if [ -n "$audit_rows" ]; then
  echo
  echo "audit writer (whole run)"
  printf '  %-13s %10s %12s %10s %9s %12s %14s %13s  %s\n' target records bytes fdatasync "busy s" "records/s" "fdatasync/s" "bytes/record" verify
  printf '%s' "$audit_rows"
fi

# ---------------------------------------------------------------- connection rate
# New connections per second, each one a full login and "SELECT 1": PostgreSQL
# directly with SCRAM (what a client does without sluice), and through one more
# sluiced ("oidc": TLS, a gateway user with SCRAM, and tokens as the password from a
# stand-in identity provider's jwks_file). "cached" reuses one token (a CI fleet
# reconnecting: a hash lookup); "cold" gives every connection a token never seen.
if [ "$connect_seconds" != 0 ] && has_sluiced; then
  oidc_dir=$work/oidc
  mkdir -p "$oidc_dir"
  "$connect_rate" make-tokens "https://idp.bench" sluice ci-bot bench "$((connect_tokens + 1))" \
    "$oidc_dir/jwks.json" "$oidc_dir/tokens.txt" || die "connect_rate could not make tokens"
  # Line 1 is the cached token; the others are split between the cold runs.
  tail -n +2 "$oidc_dir/tokens.txt" >"$oidc_dir/cold.txt"
  split -n "l/$connect_repeat" -d -a 2 "$oidc_dir/cold.txt" "$oidc_dir/cold."
  oidc_port=$(free_port "$next_port")
  start_sluiced oidc "$oidc_port"
  proxy_pid[oidc]=$started_pid
  for ((i = 0; i < 50; i++)); do grep -q 'read 1 key' "$oidc_dir/sluiced.log" && break; sleep 0.1; done
  gateway_info="host=127.0.0.1 port=$oidc_port dbname=bench sslmode=require"
  first_token=$(head -n 1 "$oidc_dir/tokens.txt")
  declare -A connect_sum=()
  connect_run() {  # label, then connect_rate run's arguments after THREADS; adds to connect_sum
    local label=$1 out rate
    shift
    out=$("$connect_rate" run "$connect_seconds" "$connect_threads" "$@" 2>&1) || true
    rate=$(sed -n -E 's/.* rate ([0-9.]+) .*/\1/p' <<<"$out")
    connect_sum[$label]=$(awk -v a="${connect_sum[$label]:-0}" -v b="${rate:-0}" 'BEGIN { print a + b }')
    printf '  %-34s %s\n' "$label" "$(tail -n 1 <<<"$out")"
  }
  echo
  echo "connection rate: $connect_threads client threads, ${connect_seconds}s each, runs interleaved x $connect_repeat"
  # The first token seen is the cached one: warm the cache before measuring.
  "$connect_rate" run 1 1 "$gateway_info user=ci-bot password=$first_token" >/dev/null 2>&1 || true
  for ((rep = 1; rep <= connect_repeat; rep++)); do
    connect_run direct-scram "host=127.0.0.1 port=$pg_port dbname=bench user=bench_proxy password=$bench_password sslmode=disable"
    connect_run sluice-tls-token-cached "$gateway_info user=ci-bot password=$first_token"
    connect_run sluice-tls-token-cold "$gateway_info user=ci-bot" "$(printf '%s/cold.%02d' "$oidc_dir" $((rep - 1)))"
    connect_run sluice-tls-scram "$gateway_info user=bench password=$bench_password"
  done
  echo "  mean connections/s (ratio to direct PostgreSQL with SCRAM; target: cached tokens >= 1.00):"
  for label in direct-scram sluice-tls-token-cached sluice-tls-token-cold sluice-tls-scram; do
    awk -v l="$label" -v s="${connect_sum[$label]}" -v d="${connect_sum[direct-scram]}" -v n="$connect_repeat" \
      'BEGIN { printf "    %-32s %8.1f   %5.2f\n", l, s / n, (d > 0 ? s / d : 0) }'
  done
fi

# ---------------------------------------------------------------- idle sessions
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
backend_count() {
  pg_psql -d postgres -tA -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'bench_proxy' AND backend_type = 'client backend'"
}
wait_backends_below() {  # count, seconds
  local i
  for ((i = 0; i < $2 * 2; i++)); do [ "$(backend_count)" -lt "$1" ] && return 0; sleep 0.5; done
  return 1
}

# Opens $idle_sessions sessions that each run one query (so that pgbouncer, too, binds
# a server connection) and then sleep; samples the proxy's RSS while all are open.
idle_test() {  # target dbname
  local target=$1 db=$2 port user password pid rss0 rss1 rss2 clients=0 backends=0 backends0 i
  target_conn "$target"
  backends0=$(backend_count)  # e.g. pgbouncer's pooled server connections from the runs above
  idle_backends_before=$backends0
  printf 'SELECT 1;\n\\sleep 600 s\n' >"$work/idle.sql"
  rss0=$(rss_kib "$pid")
  PGPASSWORD=$password "$pg_bin/pgbench" -n -c "$idle_sessions" -j "$threads" -t 1 -f "$work/idle.sql" \
    -h 127.0.0.1 -p "$port" -U "$user" "$db" >"$work/idle-$target.log" 2>&1 &
  idle_client_pid=$!
  for ((i = 0; i < idle_timeout * 2; i++)); do
    clients=$(ss -Htn state established "( sport = :$port )" | wc -l)
    backends=$(($(backend_count) - backends0))
    [ "$clients" -ge "$idle_sessions" ] && [ "$backends" -ge "$idle_sessions" ] && break
    kill -0 "$idle_client_pid" 2>/dev/null || break
    sleep 0.5
  done
  sleep 2
  rss1=$(rss_kib "$pid")
  clients=$(ss -Htn state established "( sport = :$port )" | wc -l)
  backends=$(($(backend_count) - backends0))
  stop_pid "$idle_client_pid" 5
  wait "$idle_client_pid" 2>/dev/null || true
  idle_client_pid=
  if [ "$clients" -lt "$idle_sessions" ]; then
    echo "  $target: only $clients of $idle_sessions sessions connected; pgbench said:"
    grep -v '^$' "$work/idle-$target.log" | tail -n 5 | sed 's/^/    /'
  fi
  sleep 2
  rss2=$(rss_kib "$pid")
  printf '  %-12s %8s %9s %11s %11s %11s %13s %16s\n' "$target" "$clients" "$backends" "$rss0" "$rss1" \
    "$((rss1 - rss0))" "$(awk -v g=$((rss1 - rss0)) -v n="$clients" 'BEGIN { if (n > 0) printf "%.1f", g / n; else print "-" }')" "$rss2"
}

if [ "$idle_sessions" -gt 0 ] && { [ -n "$idle_sluice" ] || has_target pgbouncer; }; then
  echo
  echo "idle sessions: $idle_sessions clients, each with its own backend connection (RSS in KiB)"
  echo "  (RSS before includes what a proxy allocates at startup: sluiced sizes its connection tables"
  echo "  by max_client_connections = 2000 here; pgbouncer allocates per connection)"
  printf '  %-12s %8s %9s %11s %11s %11s %13s %16s\n' target clients backends "RSS before" "RSS open" growth "KiB/session" "RSS after close"
  if [ -n "$idle_sluice" ]; then
    idle_test "$idle_sluice" bench
    wait_backends_below $((idle_backends_before + 10)) 30 ||
      say "sluice's backend connections are still open 30 s after its clients left"
  fi
  if has_target pgbouncer; then
    idle_test pgbouncer bench_idle
  fi
fi

echo
echo "saved to $result_file"
