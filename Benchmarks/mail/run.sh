#!/usr/bin/env bash
# Mail delivery throughput of SPOR Access (issue "E-mail that reaches people"): how many outbox messages per second
# the service's worker hands to a local SMTP server (aiosmtpd, scripts/smtp-sink.py) and writes to the mail folder,
# against a release build, on a PostgreSQL cluster of its own. Loopback only.
#
# Usage: Benchmarks/mail/run.sh [--messages N] [--rounds R] [--bin PATH] [--keep]
#   --messages N   messages queued per run (MESSAGES=5000)
#   --rounds R     runs of each transport, alternating (ROUNDS=3)
#   --bin PATH     the spor-access binary (SPOR_BIN; default: .build/release/spor-access of this checkout)
#   --keep         keep the work folder (cluster, logs, received mail)
# Each run: the service is started with the transport, N messages are inserted into the outbox in one transaction
# (as the owner, so the figure is delivery alone, not the commands that write messages), and the clock runs from
# that commit until the last message is recorded as sent. It prints messages/s per run, the median per transport,
# and checks that the SMTP server received each message exactly once.
# Needs PostgreSQL 15+ server binaries (/usr/lib/postgresql/*/bin), python3 with aiosmtpd (pip install aiosmtpd).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$here/../.." && pwd)"
MESSAGES="${MESSAGES:-5000}"
ROUNDS="${ROUNDS:-3}"
BIN="${SPOR_BIN:-$REPO/.build/release/spor-access}"
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) MESSAGES="$2"; shift ;;
        --rounds) ROUNDS="$2"; shift ;;
        --bin) BIN="$2"; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$MESSAGES" =~ ^[0-9]+$ && "$ROUNDS" =~ ^[0-9]+$ ]] || { echo "run.sh: counts are numbers" >&2; exit 2; }
[ -x "$BIN" ] || { echo "run.sh: no service binary at $BIN: swift build -c release --product spor-access, or --bin" >&2; exit 2; }
python3 -c 'import aiosmtpd' 2>/dev/null || { echo "run.sh: python3 -m pip install aiosmtpd" >&2; exit 2; }
pgbin=""
for d in ${SPOR_POSTGRES_BIN:-} $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ]; then pgbin="$d"; break; fi
done
[ -n "$pgbin" ] || { echo "run.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 2; }
say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/spor-mail.XXXXXX")"
chmod 755 "$work"
pids=()
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    [ -f "$work/pg/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1
    if [ "$KEEP" = 1 ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "run.sh: running as root needs the user postgres (initdb refuses root)" >&2; exit 2; }
    as_pg() { setpriv --reuid=postgres --regid="$(id -g postgres)" --init-groups -- "$@"; }
else
    as_pg() { "$@"; }
fi
mkdir -p "$work/pg" "$work/sock"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg" "$work/sock"
read -r PGPORT SVC SINK < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

say "PostgreSQL in $work/pg, port $PGPORT"
as_pg "$pgbin/initdb" -D "$work/pg" -U postgres -A trust -E UTF8 --locale=C >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/postgres.log" -w -t 60 \
    -o "-p $PGPORT -k $work/sock -c listen_addresses=127.0.0.1 -c shared_buffers=256MB" start >/dev/null \
    || { cat "$work/pg/postgres.log" >&2; exit 1; }
psql_super() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres "$@"; }
psql_db() { "$pgbin/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U spor_owner -d spor_access "$@"; }
psql_super <<'SQL'
CREATE ROLE spor_owner LOGIN CREATEROLE PASSWORD 'bench';
CREATE ROLE spor_app LOGIN NOCREATEROLE NOCREATEDB PASSWORD 'bench';
CREATE ROLE spor_reporting NOLOGIN;
GRANT spor_app, spor_reporting TO spor_owner WITH ADMIN OPTION;
CREATE DATABASE spor_access OWNER spor_owner;
SQL
OWNER_URL="postgres://spor_owner:bench@127.0.0.1:$PGPORT/spor_access"
APP_URL="postgres://spor_app:bench@127.0.0.1:$PGPORT/spor_access"
(cd "$REPO" && "$BIN" migrate --database-url "$OWNER_URL" --log-level warning >"$work/migrate.log" 2>&1) || { cat "$work/migrate.log" >&2; exit 1; }

# One run: TRANSPORT (smtp|drop) and the round number; prints messages/s.
run() {
    local transport=$1 round=$2 flags=() sink_pid=""
    local dir="$work/$transport-$round"
    mkdir -p "$dir/mail"
    if [ "$transport" = smtp ]; then
        python3 "$REPO/scripts/smtp-sink.py" --port "$SINK" --dir "$dir/mail" >"$dir/sink.log" 2>&1 &
        sink_pid=$!
        pids+=("$sink_pid")
        for _ in $(seq 1 100); do grep -q ready "$dir/sink.log" 2>/dev/null && break; sleep 0.1; done
        flags=(--smtp-url "smtp://127.0.0.1:$SINK")
    else
        flags=(--mail-dir "$dir/mail")
    fi
    (cd "$REPO" && exec "$BIN" serve --host 127.0.0.1 --port "$SVC" --database-url "$OWNER_URL" --app-database-url "$APP_URL" \
        --no-migrate --log-level warning "${flags[@]}" >"$dir/service.log" 2>&1) &
    local svc=$!
    pids+=("$svc")
    for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$SVC/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
    psql_db -c "TRUNCATE notification_outbox" >/dev/null
    local start end
    start=$(date +%s.%N)
    psql_db >/dev/null <<SQL
INSERT INTO notification_outbox (recipient_email, template, subject, body, subject_type, subject_id)
SELECT 'person-' || i || '@example.com', 'request-decided', 'Your access request ' || i || ' – decided',
       repeat('Your request for the SPOR industry user role at ORG-100000001 was approved. ', 6), 'access_request', i::text
FROM generate_series(1, $MESSAGES) AS i;
SQL
    while [ "$(psql_db -c "SELECT count(*) FROM notification_outbox WHERE delivered_at IS NULL")" != 0 ]; do sleep 0.05; done
    end=$(date +%s.%N)
    local dead received
    dead=$(psql_db -c "SELECT count(*) FROM notification_outbox WHERE dead_at IS NOT NULL")
    received=$(find "$dir/mail" -type f \( -name '*.json' -o -name '*.eml' \) | wc -l)
    kill -INT "$svc" 2>/dev/null; wait "$svc" 2>/dev/null || true
    [ -n "$sink_pid" ] && { kill -TERM "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null || true; }
    python3 -c "
import sys
n, t = $MESSAGES, $end - $start
print(f'$transport round $round: {n} messages in {t:.2f} s = {n / t:.0f} messages/s (received {$received}, dead {$dead})')"
    [ "$received" = "$MESSAGES" ] || { echo "run.sh: $transport received $received of $MESSAGES" >&2; exit 1; }
}

say "$ROUNDS rounds of $MESSAGES messages, SMTP (aiosmtpd on loopback) and the mail folder, alternating"
results="$work/results.txt"
for round in $(seq 1 "$ROUNDS"); do
    for transport in smtp drop; do run "$transport" "$round" | tee -a "$results"; done
done
python3 - "$results" <<'PY'
import re, statistics, sys
by = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+) round \d+: .* = (\d+) messages/s", line)
    if m: by.setdefault(m.group(1), []).append(int(m.group(2)))
for transport, rates in by.items():
    print(f"median {transport}: {statistics.median(rates):.0f} messages/s over {len(rates)} runs")
PY
