# Shared by the fault scripts of Benchmarks/faults (sourced, not run): a throw-away PostgreSQL cluster on loopback,
# the service's roles as the embedded cluster's provisioning makes them, the service started and stopped, and the
# untimed set-up (organisations with a first super user approved by the service desk, signed-in applicants minted
# as Benchmarks/api/load_mint.sql does).
#
# Expects: $here (the script's folder), BIN (the spor-access binary), REPO (the checkout). Sets: work, pgbin, PGPORT,
# OWNER_URL, APP_URL, and the functions below.
set -euo pipefail
api="$(cd "$here/../api" && pwd)"
say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
lib() { python3 "$api/load_lib.py" "$@"; }

[ -x "$BIN" ] || { echo "$(basename "$0"): no service binary at $BIN: build it with (cd $REPO && swift build -c release --product spor-access), or give SPOR_BIN" >&2; exit 2; }
pgbin=""
for d in ${SPOR_POSTGRES_BIN:-} $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then pgbin="$d"; break; fi
done
[ -n "$pgbin" ] || { echo "$(basename "$0"): PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/spor-faults.XXXXXX")"
chmod 755 "$work"
service_pids=()
cleanup() {
    set +e
    for pid in "${service_pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    [ -f "$work/pg/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1
    if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$(id -u)" = 0 ]; then
    pguser=postgres
    id "$pguser" >/dev/null 2>&1 || { echo "$(basename "$0"): running as root needs the user postgres (initdb refuses root)" >&2; exit 2; }
    as_pg() { setpriv --reuid="$pguser" --regid="$(id -g "$pguser")" --init-groups -- "$@"; }
else
    pguser="$(id -un)"
    as_pg() { "$@"; }
fi
mkdir -p "$work/pg" "$work/sock" "$work/out" "$work/mail"
[ "$(id -u)" = 0 ] && chown "$pguser" "$work/pg" "$work/sock"
free_ports() { python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])' "$1"; }
read -r PGPORT < <(free_ports 1)

pg_start() { as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/postgres.log" -w -t 60 -o "$pgopts" start >/dev/null; }
pg_stop() { as_pg "$pgbin/pg_ctl" -D "$work/pg" -m fast -w -t 60 stop >/dev/null; }
pg_restart() { as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/postgres.log" -m fast -w -t 60 -o "$pgopts" restart >/dev/null; }
export PSQL="$pgbin/psql"
psql_super() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres "$@"; }
psql_owner() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U spor_owner -d spor_access "$@"; }

init_cluster() {
    say "initdb in $work/pg (as $pguser), port $PGPORT"
    as_pg "$pgbin/initdb" -D "$work/pg" -U postgres -A trust -E UTF8 --locale=C >"$work/initdb.log" 2>&1 \
        || { cat "$work/initdb.log" >&2; exit 1; }
    pgopts="-p $PGPORT -k $work/sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c log_line_prefix='%m [%p] %u '"
    pg_start || { cat "$work/pg/postgres.log" >&2; exit 1; }
    psql_super <<'SQL'
CREATE ROLE spor_owner LOGIN CREATEROLE PASSWORD 'faults';
CREATE ROLE spor_app LOGIN NOCREATEROLE NOCREATEDB PASSWORD 'faults';
CREATE ROLE spor_reporting NOLOGIN;
GRANT spor_app, spor_reporting TO spor_owner WITH ADMIN OPTION;
CREATE DATABASE spor_access OWNER spor_owner;
SQL
    OWNER_URL="postgres://spor_owner:faults@127.0.0.1:$PGPORT/spor_access"
    APP_URL="postgres://spor_app:faults@127.0.0.1:$PGPORT/spor_access"
}

# start_service NAME PORT [serve flags...]: runs in the background, its log in $work/NAME.log; sets NAME_pid.
# wait_ready PORT [SECONDS]: until /health/ready answers 200.
start_service() {
    local name=$1 port=$2
    shift 2
    (cd "$REPO" && SPOR_DEBUG_LEASE="${SPOR_DEBUG_LEASE:-0}" exec "$BIN" serve --host 127.0.0.1 --port "$port" --database-url "$OWNER_URL" --app-database-url "$APP_URL" \
        --mail-dir "$work/mail" --log-level "${SERVICE_LOG_LEVEL:-warning}" "$@" >>"$work/$name.log" 2>&1) &
    local pid=$!
    service_pids+=("$pid")
    eval "${name}_pid=$pid"
}
wait_ready() {
    local port=$1 limit=${2:-180}
    for _ in $(seq 1 $((limit * 10))); do
        curl -fs -o /dev/null "http://127.0.0.1:$port/health/ready" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): the service on port $port is not ready after $limit s" >&2
    return 1
}

# setup_organisations PORT COUNT APPLICANTS: COUNT organisations ORG-900000001.., each with its first super user
# (bench-su-<num>), and APPLICANTS signed-in applicants bench-applicant-1.. (tokens are their names).
ORG_BASE=900000001
setup_organisations() {
    local port=$1 count=$2 applicants=$3
    {
        echo "name,country,city,id"
        for k in $(seq 0 $((count - 1))); do echo "Fault Pharma $k,NL,Leiden,ORG-$((ORG_BASE + k))"; done
    } >"$work/orgs.csv"
    "$BIN" organisations import "$work/orgs.csv" --database-url "$OWNER_URL" --log-level error >/dev/null
    echo "faults desk password 1" | "$BIN" staff add --email desk@faults.example --name "Fault Desk" --role ema-service-desk \
        --password-stdin --database-url "$OWNER_URL" --log-level error >/dev/null
    psql_owner -v prefix=bench-su- -v from="$ORG_BASE" -v to=$((ORG_BASE + count - 1)) -f "$api/load_mint.sql" >/dev/null
    psql_owner -v prefix=bench-applicant- -v from=1 -v to="$applicants" -f "$api/load_mint.sql" >/dev/null
    # shellcheck disable=SC2046
    lib super-users "http://127.0.0.1:$port" desk@faults.example "faults desk password 1" $(seq "$ORG_BASE" $((ORG_BASE + count - 1))) >/dev/null
}
