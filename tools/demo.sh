#!/usr/bin/env bash
# The first command to run: installs dependencies, builds sluice, starts a demo
# PostgreSQL 15 with sample data and sluiced in front of it, and prints how to connect.
#
#   tools/demo.sh          start the demo (restarts it cleanly when it already runs)
#   tools/demo.sh stop     stop sluiced and the demo PostgreSQL (data is kept)
#   tools/demo.sh status   say what is running
#   tools/demo.sh clean    stop everything and delete the demo directory
#
# Environment: SLUICE_DEMO_DIR (default /var/tmp/sluice-demo-$USER),
# SLUICE_DEMO_PG_PORT (default 54329), SLUICE_DEMO_PORT (default 6432).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

demo_dir=${SLUICE_DEMO_DIR:-/var/tmp/sluice-demo-$(id -un)}
pg_port=${SLUICE_DEMO_PG_PORT:-54329}
pg_bin=/usr/lib/postgresql/15/bin
sluiced=$repo/build/release/tools/sluiced
sluicectl=$repo/build/release/tools/sluicectl
gateway_user=alice
gateway_password=alice-demo-password

# PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres OS user
# (pg_os_user and pg_run, from tools/lib.sh), and lives in its own subdirectory.
pg_dir=$demo_dir/pg
pgdata=$pg_dir/data
pg_socket_dir=$pg_dir/socket
pg_log=$pg_dir/postgresql.log
# shellcheck source=SCRIPTDIR/lib.sh
. "$repo/tools/lib.sh"
sluiced_pidfile=$demo_dir/sluiced.pid
sluiced_log=$demo_dir/sluiced.log
config=$demo_dir/sluice.toml
password_file=$demo_dir/app.password

say() { echo "demo: $*" >&2; }
die() { echo "demo: error: $*" >&2; exit 1; }

pg_psql() { pg_run "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pg_socket_dir" -p "$pg_port" "$@"; }
pg_is_running() { [ -f "$pgdata/PG_VERSION" ] && pg_run "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; }

port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# The pid in the pidfile, if that process is still our sluiced.
sluiced_pid() {
  local pid
  pid=$(cat "$sluiced_pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q sluiced || return 1
  echo "$pid"
}

stop_sluiced() {
  local pid i
  if pid=$(sluiced_pid); then
    say "stopping sluiced (pid $pid, SIGTERM: drains sessions, then exits)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 500; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "sluiced did not exit within 50 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$sluiced_pidfile"
}

stop_postgres() {
  if pg_is_running; then
    say "stopping the demo PostgreSQL"
    pg_run "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
  fi
}

status() {
  local pid
  if pid=$(sluiced_pid); then echo "sluiced: running (pid $pid), log $sluiced_log"; else echo "sluiced: not running"; fi
  if pg_is_running; then echo "PostgreSQL: running on 127.0.0.1:$pg_port, log $pg_log"; else echo "PostgreSQL: not running"; fi
}

toml_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Creates the cluster once: scram-sha-256 over TCP, trust over the private unix socket
# (used only by this script for setup).
init_postgres() {
  mkdir -p "$pg_dir"
  chmod 700 "$pg_dir"
  [ "$pg_os_user" = "$(id -un)" ] || chown "$pg_os_user:" "$pg_dir"
  pg_run mkdir -p "$pg_socket_dir"
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    say "creating the demo PostgreSQL cluster in $pgdata"
    rm -rf "$pgdata"
    pg_run "$pg_bin/initdb" -D "$pgdata" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256 >"$demo_dir/initdb.log" 2>&1 ||
      { tail -n 20 "$demo_dir/initdb.log" >&2; die "initdb failed (full output: $demo_dir/initdb.log)"; }
    pg_run tee "$pgdata/pg_hba.conf" >/dev/null <<'EOF'
# sluice demo: setup goes through the private unix socket; everything else (sluiced)
# authenticates with SCRAM over loopback TCP.
local all all                trust
host  all all 127.0.0.1/32   scram-sha-256
EOF
    echo "include 'sluice-demo.conf'" | pg_run tee -a "$pgdata/postgresql.conf" >/dev/null
  fi
  # Rewritten on every start so that SLUICE_DEMO_PG_PORT and the paths stay current.
  pg_run tee "$pgdata/sluice-demo.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pg_socket_dir'
password_encryption = 'scram-sha-256'
max_connections = 200
EOF
}

start_postgres() {
  stop_postgres
  if port_in_use "$pg_port"; then
    die "port $pg_port is already in use; set SLUICE_DEMO_PG_PORT to a free port"
  fi
  say "starting the demo PostgreSQL on 127.0.0.1:$pg_port"
  if ! pg_run "$pg_bin/pg_ctl" -D "$pgdata" -l "$pg_log" -w -t 60 start >/dev/null; then
    tail -n 20 "$pg_log" >&2 || true
    die "PostgreSQL did not start (log: $pg_log)"
  fi
}

# The application role sluice logs in as, its database, and sample data (loaded once).
setup_database() {
  local password
  if [ ! -s "$password_file" ]; then
    (umask 077 && openssl rand -hex 16 | tr -d '\n' >"$password_file")
  fi
  chmod 600 "$password_file"
  password=$(cat "$password_file")
  [[ "$password" =~ ^[0-9a-f]+$ ]] || die "$password_file does not hold a hex password; delete it and rerun"

  pg_psql -U postgres -d postgres <<EOF
SELECT 'CREATE ROLE sluice_app' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice_app') \gexec
ALTER ROLE sluice_app LOGIN PASSWORD '$password';
SELECT 'CREATE DATABASE app OWNER sluice_app' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'app') \gexec
EOF

  if [ "$(pg_psql -U sluice_app -d app -tA -c "SELECT to_regclass('public.customers') IS NULL")" = t ]; then
    say "loading sample data into database app"
    pg_psql -U sluice_app -d app -1 -f - <<'EOF'
-- Synthetic data only: example.com addresses, SSNs in the 9xx range (never issued),
-- card numbers that are the networks' published test numbers, sk_test_ keys.
CREATE TABLE customers (
  id         serial PRIMARY KEY,
  name       text NOT NULL,
  email      text NOT NULL,
  ssn        text,
  card       text,
  api_key    text,
  created_at timestamptz NOT NULL
);
CREATE TABLE products (
  id          serial PRIMARY KEY,
  sku         text UNIQUE NOT NULL,
  name        text NOT NULL,
  price       numeric(10,2) NOT NULL,
  description text
);
CREATE TABLE orders (
  id          serial PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers(id),
  product_id  integer NOT NULL REFERENCES products(id),
  amount      numeric(10,2) NOT NULL,
  status      text NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'refunded')),
  created_at  timestamptz NOT NULL
);
CREATE INDEX orders_customer_id_idx ON orders(customer_id);

INSERT INTO customers (name, email, ssn, card, api_key, created_at)
SELECT f.first || ' ' || l.last,
       lower(f.first) || '.' || lower(l.last) || i || '@example.com',
       format('9%s-%s-%s', lpad(((i * 37) % 100)::text, 2, '0'),
              lpad(((i * 53) % 90 + 10)::text, 2, '0'), lpad(((i * 7919) % 10000)::text, 4, '0')),
       (ARRAY['4111 1111 1111 1111', '5555 5555 5555 4444', '3782 822463 10005',
              '4012 8888 8888 1881', '6011 1111 1111 1117', '5105 1051 0510 5100',
              '4242 4242 4242 4242', '2223 0031 2200 3222'])[i % 8 + 1],
       'sk_test_' || md5('demo-key-' || i),
       timestamptz '2024-01-01 09:00:00+00' + (i * interval '3 days 5 hours')
FROM generate_series(1, 50) AS i,
     LATERAL (SELECT (ARRAY['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace',
                            'Heidi', 'Ivan', 'Judy', 'Mallory', 'Niaj', 'Olivia', 'Peggy',
                            'Rupert', 'Sybil', 'Trent', 'Victor', 'Walter', 'Wendy'])[(i - 1) % 20 + 1] AS first) AS f,
     LATERAL (SELECT (ARRAY['Anderson', 'Brown', 'Chen', 'Diaz', 'Evans', 'Fischer', 'Garcia',
                            'Hughes', 'Ito', 'Jones', 'Kowalski', 'Lopez', 'Moreau'])[(i * 7) % 13 + 1] AS last) AS l
ORDER BY i;

INSERT INTO products (sku, name, price, description)
SELECT format('SKU-%s', lpad(i::text, 4, '0')),
       (ARRAY['Widget', 'Gadget', 'Sprocket', 'Gizmo', 'Doohickey'])[i % 5 + 1] || ' ' ||
       (ARRAY['Mini', 'Standard', 'Pro', 'Max'])[i % 4 + 1],
       round((4.99 + (i * 13.37) % 250)::numeric, 2),
       'Demo product #' || i
FROM generate_series(1, 20) AS i;

INSERT INTO orders (customer_id, product_id, amount, status, created_at)
SELECT (i * 7) % 50 + 1,
       (i * 11) % 20 + 1,
       round((9.99 + (i * 17.31) % 480)::numeric, 2),
       (ARRAY['pending', 'paid', 'paid', 'shipped', 'shipped', 'shipped', 'refunded'])[i % 7 + 1],
       timestamptz '2024-02-01 00:00:00+00' + (i * interval '7 hours 13 minutes')
FROM generate_series(1, 400) AS i;

ANALYZE customers, products, orders;
EOF
  fi
}

# sluice.toml for the demo: one target (app), one gateway user (alice) in group agents.
write_config() {
  local verifier
  if verifier=$(printf '%s' "$gateway_password" | "$sluicectl" scram-verifier 2>/dev/null) &&
     [[ "$verifier" == SCRAM-SHA-256\$* ]]; then
    :
  else
    say "warning: 'sluicectl scram-verifier' failed; writing alice's password to the config in plaintext"
    verifier=$gateway_password
  fi
  (umask 077 && cat >"$config" <<EOF
# sluice demo configuration, written by tools/demo.sh (rewritten on every start).
[gateway]
listen = $(toml_string "127.0.0.1:$sluice_port")
shards = 0
max_client_connections = 100
log_level = "info"

# Every session and statement is recorded here before it runs (docs/audit.md).
[audit]
directory = $(toml_string "$demo_dir/audit")

[[target]]
name = "app"
host = "127.0.0.1"
port = $pg_port
database = "app"
user = "sluice_app"
password_file = $(toml_string "$password_file")

[[user]]
name = $(toml_string "$gateway_user")
password = $(toml_string "$verifier")
groups = ["agents"]

# What alice may do: read and change data in app, with the rules sluice recommends
# for AI agents (docs/configuration.md, "Policy").
[groups.agents]
targets = ["app"]
access = "read-write"
packs = ["agent-default"]

# Columns masked by what they are, whatever they hold (docs/masking.md).
[[mask.column]]
table = "public.customers"
column = "ssn"
strategy = "partial:4"

[[mask.column]]
table = "public.customers"
column = "email"
EOF
  )
}

start_sluiced() {
  local pid i
  if ! "$sluiced" --config "$config" --check >"$demo_dir/check.log" 2>&1; then
    cat "$demo_dir/check.log" >&2
    die "sluiced rejected $config"
  fi
  say "starting sluiced on 127.0.0.1:$sluice_port (log: $sluiced_log)"
  echo "---- $(date -u +%FT%TZ) tools/demo.sh start" >>"$sluiced_log"
  nohup "$sluiced" --config "$config" >>"$sluiced_log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$sluiced_pidfile"
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$sluiced_log" >&2
      die "sluiced exited during startup (log: $sluiced_log)"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$sluice_port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$sluiced_log" >&2
  die "sluiced did not accept connections on 127.0.0.1:$sluice_port within 10 s (log: $sluiced_log)"
}

# The gateway port: SLUICE_DEMO_PORT if given, else 6432, or the next free port when
# something else (Debian's pgbouncer service listens on 6432 by default) has it.
choose_sluice_port() {
  if [ -n "${SLUICE_DEMO_PORT:-}" ]; then
    sluice_port=$SLUICE_DEMO_PORT
    port_in_use "$sluice_port" && die "port $sluice_port (SLUICE_DEMO_PORT) is already in use"
    return 0
  fi
  for sluice_port in $(seq 6432 6499); do
    if ! port_in_use "$sluice_port"; then
      [ "$sluice_port" = 6432 ] || say "port 6432 is in use (by Debian's pgbouncer service?); using $sluice_port"
      return 0
    fi
  done
  die "no free port in 6432-6499; set SLUICE_DEMO_PORT"
}

start() {
  say "installing dependencies (tools/install-deps.sh)"
  tools/install-deps.sh
  say "building (tools/build.sh release)"
  tools/build.sh release
  [ -x "$sluiced" ] || die "$sluiced was not built"
  [ -x "$sluicectl" ] || die "$sluicectl was not built"

  stop_sluiced
  mkdir -p "$demo_dir"
  chmod 755 "$demo_dir"
  if [ "${#as_pg[@]}" -gt 0 ] && ! pg_run test -x "$demo_dir"; then
    die "the postgres OS user cannot enter $demo_dir; choose another SLUICE_DEMO_DIR (e.g. under /var/tmp)"
  fi
  init_postgres
  start_postgres
  setup_database
  choose_sluice_port
  write_config
  start_sluiced

  cat <<EOF

sluice is running. Connect through it with:

  PGPASSWORD=$gateway_password psql "host=127.0.0.1 port=$sluice_port dbname=app user=$gateway_user"

Then try for example:  SELECT id, name, email, card, api_key FROM customers ORDER BY id LIMIT 5;
(e-mail addresses, SSNs, card numbers and API keys come back masked: docs/masking.md)
and:                    SELECT ssn || '' FROM customers;
(refused: a masked column may only leave as a bare column)

  sluice log:       $sluiced_log
  sluice config:    $config
  audit trail:      $sluicectl audit tail --config $config
                    $sluicectl audit verify $demo_dir/audit
  PostgreSQL:       127.0.0.1:$pg_port (log: $pg_log)
  Stop the demo:    tools/demo.sh stop
EOF
}

case "${1:-start}" in
  start) start ;;
  stop) stop_sluiced; stop_postgres; say "stopped" ;;
  status) status ;;
  clean) stop_sluiced; stop_postgres; rm -rf "$demo_dir"; say "removed $demo_dir" ;;
  *) echo "usage: $0 [start|stop|status|clean]" >&2; exit 2 ;;
esac
