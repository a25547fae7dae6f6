#!/usr/bin/env bash
# Find a PostgreSQL server for the tooling and print the environment to use it,
# as shell `export` lines (eval them).
#
# 1. The server libpq's usual variables (PGHOST, PGPORT, PGUSER) or its local
#    default point at, when it answers.
# 2. Otherwise a private cluster under .state/pg, started with the installed
#    initdb/pg_ctl.
# 3. Otherwise a clear message on how to install PostgreSQL, and exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PGDATA_DIR=$ROOT/.state/pg
PRIVATE_PORT=${WINBACK_PG_PORT:-54329}

answers() { psql -X -q -A -t -d postgres -c 'SELECT 1' >/dev/null 2>&1; }

if command -v psql >/dev/null && answers; then
    for var in PGHOST PGPORT PGUSER PGPASSWORD; do
        [ -n "${!var:-}" ] && printf 'export %s=%q\n' "$var" "${!var}"
    done
    exit 0
fi

find_bin() {
    command -v "$1" 2>/dev/null && return 0
    ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1
}
INITDB=$(find_bin initdb || true)
PG_CTL=$(find_bin pg_ctl || true)
if [ -z "$INITDB" ] || [ -z "$PG_CTL" ] || ! command -v psql >/dev/null; then
    cat >&2 <<'MSG'
No PostgreSQL server answers and no PostgreSQL binaries were found.
Install PostgreSQL (Debian/Ubuntu: `sudo apt-get install postgresql`; macOS:
`brew install postgresql`), or point PGHOST/PGPORT/PGUSER at a server you can
reach, then run this command again.
MSG
    exit 1
fi

# initdb refuses to run as root: run the private cluster as `postgres` then.
AS=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "Running as root and no 'postgres' user exists for a private cluster." >&2; exit 1; }
    AS=(runuser -u postgres --)
fi
mkdir -p "$PGDATA_DIR"
[ ${#AS[@]} -gt 0 ] && chown postgres "$PGDATA_DIR"
if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    echo ">> creating a private PostgreSQL cluster in $PGDATA_DIR" >&2
    "${AS[@]}" "$INITDB" -D "$PGDATA_DIR" -U "$(id -un)" --auth=trust -E UTF8 >/dev/null
fi
export PGHOST=$PGDATA_DIR PGPORT=$PRIVATE_PORT PGUSER=$(id -un)
if ! answers; then
    echo ">> starting the private PostgreSQL cluster on $PGHOST:$PGPORT" >&2
    "${AS[@]}" "$PG_CTL" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
        -o "-k $PGDATA_DIR -p $PRIVATE_PORT -c listen_addresses=''" start >/dev/null
fi
answers || { echo "The private PostgreSQL cluster did not start: see $PGDATA_DIR/server.log" >&2; exit 1; }
printf 'export PGHOST=%q PGPORT=%q PGUSER=%q\n' "$PGHOST" "$PGPORT" "$PGUSER"
