#!/usr/bin/env bash
# Installs everything sluice needs to build, test, benchmark and run its demo, from
# Debian 12 packages. Safe to rerun: when every package is already installed it makes
# no apt call at all. Runs as root, or as a user with sudo; never reads stdin.
#
# Usage: tools/install-deps.sh [--force]   (--force runs apt even when nothing is missing)
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  liburing-dev libssl-dev libhyperscan-dev libpg-query-dev libprotobuf-c-dev
  libmimalloc-dev libpq-dev
  # tests, fuzzers and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev
  # runtime: the PostgreSQL we test against, pgbouncer for comparison, scripts' tools
  postgresql-15 postgresql-client-15 pgbouncer
  procps iproute2 ca-certificates openssl python3
)

force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

log() { echo "install-deps: $*" >&2; }

if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
  log "this script installs Debian packages (Debian 12 'bookworm'); apt-get was not found."
  exit 1
fi

# A package counts as present when dpkg says "install ok installed".
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ] && [ "$force" -eq 0 ]; then
  log "all ${#packages[@]} packages are already installed."
  exit 0
fi
if [ "${#missing[@]}" -gt 0 ]; then log "missing: ${missing[*]}"; fi
to_install=("${missing[@]}")
[ "${#to_install[@]}" -gt 0 ] || to_install=("${packages[@]}")

# Root runs apt directly; anyone else goes through sudo. Without a terminal, sudo must
# not need a password (CI has no stdin), so test that first instead of hanging.
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  if sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  elif [ -t 0 ]; then
    log "sudo will ask for your password to install packages."
    as_root=(sudo)
  else
    log "sudo needs a password but there is no terminal to type it in."
    log "run this script as root, or configure passwordless sudo, or install: ${to_install[*]}"
    exit 1
  fi
else
  log "installing packages needs root: run this script as root, or install sudo."
  log "packages to install: ${to_install[*]}"
  exit 1
fi

# Another apt (unattended-upgrades, a parallel job) may hold the dpkg lock: wait for it.
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

log "apt-get update"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q
log "apt-get install ${to_install[*]}"
# Debian's postgresql-15 may create and start a 'main' cluster on port 5432 and pgbouncer
# may start on 6432; nothing in sluice depends on either.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q \
  --no-install-recommends "${to_install[@]}"
log "done."
