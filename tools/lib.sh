# Sourced by tools/demo.sh and bench/e2e.sh, not run on its own.
# shellcheck shell=bash

# PostgreSQL and pgbouncer refuse to run as root: as root they run as the postgres OS
# user (created by Debian's postgresql-common), otherwise as the user running the script.
# pg_os_user is read by the scripts that source this file.
# shellcheck disable=SC2034
if [ "$(id -u)" -eq 0 ]; then
  pg_os_user=postgres
  as_pg=(runuser -u postgres --)
else
  pg_os_user=$(id -un)
  as_pg=()
fi

# Runs a command as the PostgreSQL OS user, from a directory that user can enter.
pg_run() { (cd / && "${as_pg[@]}" "$@"); }
