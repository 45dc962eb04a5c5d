#!/usr/bin/env bash
# The load benchmark of SPOR Access (issue "Performance"): the request+approve pair and the main reads under
# concurrency, against a release build, on its own PostgreSQL cluster, with the database-only ceiling (pgbench) of
# the same pair next to it. See Benchmarks/api/README.md for what the figures mean.
#
# Usage: Benchmarks/api/load.sh [options]            (everything also as an environment variable, in brackets)
#   --repo DIR            checkout whose build and migrations are measured (SPOR_REPO; default: this checkout)
#   --bin PATH            the spor-access binary (SPOR_BIN; default: DIR/.build/release/spor-access)
#   --migrations-dir DIR  migrations the service applies (SPOR_MIGRATIONS_DIR; default: DIR/SQL/migrations)
#   --orgs "1 64"         organisation counts (ORG_SETS)      --clients "1 8 32"  client counts (CLIENT_SET)
#   --pairs N             pairs per configuration (PAIRS=5000)  --reads N  read requests per configuration (READS=5000)
#   --seconds S           time limit of each timed phase, whichever comes first (PHASE_SECONDS=30)
#   --pgbench-pairs N     most pairs of a pgbench run (PGBENCH_PAIRS=5000; it runs about as long as the API's pair
#                         phase: PHASE_SECONDS x the API's pairs/s, at least 300)
#   --filler-orgs N       extra OMS organisations for the search (FILLER_ORGS=2000)
#   --pending N           pending requests filed per organisation before the reads (PENDING_PER_ORG=5)
#   --warmup N            untimed pairs at each configuration's client count before it is timed, then ANALYZE
#                         (WARMUP_PAIRS=500; 0: none). Without them the first configuration is timed on nearly empty
#                         tables whose statistics make the service's cached plans sequential scans (RESULTS.md)
#   --no-scale-out        skip 2 instances behind pgbouncer (SCALE_OUT=0)   --pool N  pgbouncer pool size (PGBOUNCER_POOL=20)
#   --synchronous-commit on|off   PostgreSQL's setting (SYNC_COMMIT=on)
#   --mail-dir DIR        where the services' mail drop writes the outbox's messages (MAIL_DIR; default: the work
#                         folder's mail/, removed with it; a fresh folder, never the checkout's .data/mail)
#   --log-statements off|trace|all   trace: log one sequential pair's statements (log_min_duration_statement=0 for it
#                         only) and print them; all: the setting for the whole run (LOG_STATEMENTS=off)
#   --top-statements N    load pg_stat_statements (track=all: statements inside the functions too) and print the N
#                         statements of most execution time of each pair phase (TOP_STATEMENTS=0: off)
#   --top-functions N     track_functions=all: print the N functions (PL/pgSQL and SQL) of most self time of each pair
#                         phase, with calls per pair (TOP_FUNCTIONS=0: off)
#   PG_SETTINGS="name=value ..."  extra PostgreSQL settings for the cluster (experiments; printed with the results)
#   --results FILE        JSON lines appended here (RESULTS; default: Benchmarks/api/results/load.jsonl)
#   --quick               small counts (PAIRS=200 READS=300 PGBENCH_PAIRS=300 FILLER_ORGS=200 PHASE_SECONDS=15)
#   --keep                keep the work folder (cluster, logs, plans) (KEEP=1)
# Loopback only. Needs PostgreSQL 15+ server binaries and pgbench (/usr/lib/postgresql/*/bin), pgbouncer for the
# scale-out configuration (installed with apt-get when missing), python3, curl, and a Swift toolchain for the load
# generator (Benchmarks/api/LoadGenerator, built on first use).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

REPO="${SPOR_REPO:-$(cd "$here/../.." && pwd)}"
BIN="${SPOR_BIN:-}"
MIGRATIONS="${SPOR_MIGRATIONS_DIR:-}"
ORG_SETS="${ORG_SETS:-1 64}"
CLIENT_SET="${CLIENT_SET:-1 8 32}"
PAIRS="${PAIRS:-5000}"
READS="${READS:-5000}"
PHASE_SECONDS="${PHASE_SECONDS:-30}"
PGBENCH_PAIRS="${PGBENCH_PAIRS:-5000}"
FILLER_ORGS="${FILLER_ORGS:-2000}"
PENDING_PER_ORG="${PENDING_PER_ORG:-5}"
WARMUP_PAIRS="${WARMUP_PAIRS:-500}"
SCALE_OUT="${SCALE_OUT:-1}"
SCALE_OUT_CLIENTS="${SCALE_OUT_CLIENTS:-32}"
PGBOUNCER_POOL="${PGBOUNCER_POOL:-20}"
SYNC_COMMIT="${SYNC_COMMIT:-on}"
MAIL_DIR="${MAIL_DIR:-}"
LOG_STATEMENTS="${LOG_STATEMENTS:-off}"
TOP_STATEMENTS="${TOP_STATEMENTS:-0}"
TOP_FUNCTIONS="${TOP_FUNCTIONS:-0}"
RESULTS="${RESULTS:-$here/results/load.jsonl}"
KEEP="${KEEP:-0}"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --repo) REPO="$2"; shift ;;
        --bin) BIN="$2"; shift ;;
        --migrations-dir) MIGRATIONS="$2"; shift ;;
        --orgs) ORG_SETS="$2"; shift ;;
        --clients) CLIENT_SET="$2"; shift ;;
        --pairs) PAIRS="$2"; shift ;;
        --reads) READS="$2"; shift ;;
        --seconds) PHASE_SECONDS="$2"; shift ;;
        --pgbench-pairs) PGBENCH_PAIRS="$2"; shift ;;
        --filler-orgs) FILLER_ORGS="$2"; shift ;;
        --pending) PENDING_PER_ORG="$2"; shift ;;
        --warmup) WARMUP_PAIRS="$2"; shift ;;
        --no-scale-out) SCALE_OUT=0 ;;
        --pool) PGBOUNCER_POOL="$2"; shift ;;
        --synchronous-commit) SYNC_COMMIT="$2"; shift ;;
        --mail-dir) MAIL_DIR="$2"; shift ;;
        --log-statements) LOG_STATEMENTS="$2"; shift ;;
        --top-statements) TOP_STATEMENTS="$2"; shift ;;
        --top-functions) TOP_FUNCTIONS="$2"; shift ;;
        --results) RESULTS="$2"; shift ;;
        --quick) PAIRS=200; READS=300; PGBENCH_PAIRS=300; FILLER_ORGS=200; PHASE_SECONDS=15 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "load.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$TOP_STATEMENTS" "$TOP_FUNCTIONS" "$PAIRS" "$READS" "$PGBENCH_PAIRS" "$FILLER_ORGS" "$PENDING_PER_ORG" "$WARMUP_PAIRS" "$PGBOUNCER_POOL" "$SCALE_OUT_CLIENTS"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "load.sh: '$n' is not a count" >&2; exit 2; }
done
[[ "$PHASE_SECONDS" =~ ^[0-9]+$ ]] && [ "$PHASE_SECONDS" -ge 1 ] && [ "$PHASE_SECONDS" -le 600 ] \
    || { echo "load.sh: --seconds must be 1..600" >&2; exit 2; }
case "$LOG_STATEMENTS" in off|trace|all) ;; *) echo "load.sh: --log-statements off|trace|all" >&2; exit 2 ;; esac
case "$SYNC_COMMIT" in on|off) ;; *) echo "load.sh: --synchronous-commit on|off" >&2; exit 2 ;; esac

REPO="$(cd "$REPO" && pwd)"
BIN="${BIN:-$REPO/.build/release/spor-access}"
MIGRATIONS="${MIGRATIONS:-$REPO/SQL/migrations}"
[ -x "$BIN" ] || { echo "load.sh: no service binary at $BIN: build it with (cd $REPO && swift build -c release --product spor-access), or give --bin" >&2; exit 2; }
[ -d "$MIGRATIONS" ] || { echo "load.sh: no migrations folder $MIGRATIONS" >&2; exit 2; }

say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
lib() { python3 "$here/load_lib.py" "$@"; }

# ---------------------------------------------------------------------------------------------------------------
# Tools
pgbin=""
for d in ${SPOR_POSTGRES_BIN:-} $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pgbench" ]; then pgbin="$d"; break; fi
done
[ -n "$pgbin" ] || { echo "load.sh: PostgreSQL server binaries with pgbench not found (apt-get install postgresql)" >&2; exit 2; }
if [ "$SCALE_OUT" = 1 ] && ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
    say "installing pgbouncer (Debian package) for the scale-out configuration"
    if [ "$(id -u)" = 0 ]; then
        (apt-get install -y -qq pgbouncer >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq pgbouncer >/dev/null 2>&1; }) || true
    fi
    command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { say "pgbouncer is not installable: the scale-out configuration is skipped"; SCALE_OUT=0; }
fi
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

# ---------------------------------------------------------------------------------------------------------------
# Work folder, cluster user, ports
work="$(mktemp -d "${TMPDIR:-/tmp}/spor-load.XXXXXX")"
chmod 755 "$work"
service_pids=()
watchers=()
bouncer_pid=""
cleanup() {
    set +e
    for pid in "${watchers[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${service_pids[@]}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${service_pids[@]}"; do wait "$pid" 2>/dev/null; done
    [ -n "$bouncer_pid" ] && kill -INT "$bouncer_pid" 2>/dev/null
    [ -f "$work/pg/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1
    if [ "$KEEP" = 1 ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$(id -u)" = 0 ]; then
    pguser=postgres
    id "$pguser" >/dev/null 2>&1 || { echo "load.sh: running as root needs the user postgres (initdb refuses root)" >&2; exit 2; }
    as_pg() { setpriv --reuid="$pguser" --regid="$(id -g "$pguser")" --init-groups -- "$@"; }
else
    pguser="$(id -un)"
    as_pg() { "$@"; }
fi
mkdir -p "$work/pg" "$work/sock" "$work/pgbouncer" "$work/plans" "$work/out"
MAIL_DIR="${MAIL_DIR:-$work/mail}"
mkdir -p "$MAIL_DIR"
[ "$(id -u)" = 0 ] && chown "$pguser" "$work/pg" "$work/sock" "$work/pgbouncer"
read -r PGPORT SVC1 SVC2 BOUNCER < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

say "building the load generator (Benchmarks/api/LoadGenerator, release)"
swift build -c release --package-path "$here/LoadGenerator" >"$work/loadgen-build.log" 2>&1 \
    || { cat "$work/loadgen-build.log" >&2; exit 1; }
LOADGEN="$(swift build -c release --package-path "$here/LoadGenerator" --show-bin-path)/spor-load"


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL: a standalone cluster in the work folder, loopback only
say "initdb in $work/pg (as $pguser), port $PGPORT"
as_pg "$pgbin/initdb" -D "$work/pg" -U postgres -A trust -E UTF8 --locale=C >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log" >&2; exit 1; }
pgopts="-p $PGPORT -k $work/sock -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB"
pgopts+=" -c synchronous_commit=$SYNC_COMMIT -c log_line_prefix='%m [%p] %u ' -c log_lock_waits=on"
[ "$LOG_STATEMENTS" = all ] && pgopts+=" -c log_min_duration_statement=0"
[ "$TOP_FUNCTIONS" -gt 0 ] && pgopts+=" -c track_functions=all"
[ -n "${PG_SETTINGS:-}" ] && for kv in $PG_SETTINGS; do pgopts+=" -c $kv"; done   # experiments: PG_SETTINGS="a=1 b=2"
[ "$TOP_STATEMENTS" -gt 0 ] && pgopts+=" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c pg_stat_statements.max=5000"
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/postgres.log" -w -t 60 -o "$pgopts" start >/dev/null \
    || { cat "$work/pg/postgres.log" >&2; exit 1; }
POSTMASTER="$(head -1 "$work/pg/postmaster.pid")"
psql_super() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres "$@"; }
psql_db() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d spor_access "$@"; }
psql_owner() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U spor_owner -d spor_access "$@"; }
# The roles as the embedded cluster's provisioning makes them (Sources/EmbeddedPostgres/ClusterProvisioning.swift).
psql_super <<'SQL'
CREATE ROLE spor_owner LOGIN CREATEROLE PASSWORD 'bench';
CREATE ROLE spor_app LOGIN NOCREATEROLE NOCREATEDB PASSWORD 'bench';
CREATE ROLE spor_reporting NOLOGIN;
GRANT spor_app, spor_reporting TO spor_owner WITH ADMIN OPTION;
CREATE DATABASE spor_access OWNER spor_owner;
SQL
OWNER_URL="postgres://spor_owner:bench@127.0.0.1:$PGPORT/spor_access"
APP_URL="postgres://spor_app:bench@127.0.0.1:$PGPORT/spor_access"

# ---------------------------------------------------------------------------------------------------------------
# The service
start_service() { # NAME PORT OWNER_URL APP_URL [serve flags...]
    local name=$1 port=$2 owner=$3 app=$4
    shift 4
    (cd "$REPO" && exec "$BIN" serve --host 127.0.0.1 --port "$port" --database-url "$owner" --app-database-url "$app" \
        --migrations-dir "$MIGRATIONS" --mail-dir "$MAIL_DIR" --log-level warning "$@" >"$work/$name.log" 2>&1) &
    local pid=$!
    service_pids+=("$pid")
    for _ in $(seq 1 600); do
        if curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then
            eval "${name}_pid=$pid"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "load.sh: $name exited:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
        sleep 0.3
    done
    echo "load.sh: $name not ready after 180 s" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
}
stop_service() { # PID
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local kept=()
    for p in "${service_pids[@]}"; do [ "$p" != "$1" ] && kept+=("$p"); done
    service_pids=("${kept[@]}")
}

say "starting the service ($BIN, migrations from $MIGRATIONS) on port $SVC1; it migrates the database"
start_service svc1 "$SVC1" "$OWNER_URL" "$APP_URL"
[ "$TOP_STATEMENTS" -gt 0 ] && psql_db -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
rev="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -n "$(git -C "$REPO" status --porcelain -- Sources SQL Package.swift 2>/dev/null)" ] && rev="$rev+dirty"

# ---------------------------------------------------------------------------------------------------------------
# Set-up (not timed): organisations, the service desk agent, accounts and sessions, first super users
org_base_of() { echo $((800000001 + $1 * 10000)); }   # organisation numbers of org set index $1: ORG-8000x0001...
org_sets=($ORG_SETS)
{
    echo "name,country,city,id"
    for j in "${!org_sets[@]}"; do
        base=$(org_base_of "$j")
        for k in $(seq 0 $((org_sets[j] - 1))); do
            echo "Bench Set$j Pharma $k,NL,Leiden,ORG-$((base + k))"
        done
    done
} >"$work/plans/bench-orgs.csv"
lib filler-csv "$work/plans/filler-orgs.csv" "$FILLER_ORGS"
say "importing $(($(wc -l <"$work/plans/bench-orgs.csv") - 1)) benchmark organisations and $FILLER_ORGS filler organisations (spor-access organisations import)"
"$BIN" organisations import "$work/plans/bench-orgs.csv" --database-url "$OWNER_URL" --log-level error >/dev/null
[ "$FILLER_ORGS" -gt 0 ] && "$BIN" organisations import "$work/plans/filler-orgs.csv" --database-url "$OWNER_URL" --log-level error >/dev/null
DESK_PASSWORD="bench desk password 1"
echo "$DESK_PASSWORD" | "$BIN" staff add --email desk@bench.example --name "Bench Desk" --role ema-service-desk \
    --password-stdin --database-url "$OWNER_URL" --log-level error >/dev/null

mint() { # PREFIX FROM TO
    [ "$3" -ge "$2" ] || return 0
    psql_owner -v prefix="$1" -v from="$2" -v to="$3" -f "$here/load_mint.sql" >/dev/null
}
next_applicant=1
take_applicants() { # COUNT -> sets $first; mints bench-applicant-<first..first+COUNT-1>
    first=$next_applicant
    next_applicant=$((next_applicant + $1))
    mint bench-applicant- "$first" $((next_applicant - 1))
}
for j in "${!org_sets[@]}"; do
    base=$(org_base_of "$j")
    mint bench-su- "$base" $((base + org_sets[j] - 1))
    nums=$(seq "$base" $((base + org_sets[j] - 1)))
    say "first super users of ${org_sets[j]} organisation(s) over the API (request, ticket with letter, service desk approval)"
    # shellcheck disable=SC2086
    lib super-users "http://127.0.0.1:$SVC1" desk@bench.example "$DESK_PASSWORD" $nums
done

missing_functions="$(psql_owner -At -c "SELECT string_agg(f, ' ') FROM unnest(ARRAY['spor_submission_facts', 'spor_file_request', 'spor_decision_facts', 'spor_decide_request', 'spor_check_deferred_rules']) AS f WHERE NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = f)")"
pgbench_ok=1
if [ -n "$missing_functions" ]; then
    pgbench_ok=0
    say "pgbench part SKIPPED: this schema has no $missing_functions (revisions before migrations 0021 and 0029); API figures only"
fi

# ---------------------------------------------------------------------------------------------------------------
# Measuring helpers
rss_watch() { # OUT PID: the largest VmRSS (kB) seen, every 0.2 s, until OUT.stop exists
    local out=$1 pid=$2 max=0 k v rest
    while [ ! -e "$out.stop" ] && [ -d "$work/out" ] && kill -0 "$pid" 2>/dev/null; do
        if [ -r "/proc/$pid/status" ]; then
            while read -r k v rest; do
                if [ "$k" = "VmRSS:" ]; then [ "$v" -gt "$max" ] && max=$v; break; fi
            done <"/proc/$pid/status"
        fi
        echo "$max" >"$out"
        sleep 0.2
    done
}
status_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_snapshot() { # -> machine busy, service, postgres, pgbouncer CPU (seconds), read by one process
    read -r machine_cpu svc_cpu pg_cpu bouncer_cpu < <(lib snapshot "$POSTMASTER" "${bouncer_pid:--}" "${current_pids[@]}")
}
sub() { python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 2))" "$1" "$2"; }
prepare_database() { # untimed: an empty outbox, steady statistics and no checkpoint debt before a timed phase
    # The pgbench ceiling queues two messages a pair that only the service's worker delivers: without this wait the
    # next configuration's timed phase ran beside the delivery of thousands of them (mail drop fsyncs, claims).
    local waited=0 queued
    while :; do
        queued=$(psql_owner -At -c "SELECT count(*) FROM notification_outbox WHERE delivered_at IS NULL AND dead_at IS NULL" 2>/dev/null || echo 0)
        [ "$queued" = 0 ] && break
        [ "$waited" -ge 300 ] && { say "  outbox still holds $queued message(s) after ${waited} s: timing anyway"; break; }
        sleep 1; waited=$((waited + 1))
    done
    [ "$waited" -gt 0 ] && say "  waited ${waited} s for the outbox to drain"
    psql_owner -c "VACUUM (ANALYZE) accounts, sessions, security_answers, access_requests, role_assignments, audit_events, notification_outbox" >/dev/null 2>&1 || true
    psql_super -c "CHECKPOINT" >/dev/null
}

timed() { # PHASE LABEL -- spor-load arguments...: runs the generator with CPU and RSS measured around it
    local phase=$1 label=$2
    shift 3
    local out="$work/out/$label-$phase.json" i=0
    watchers=()
    rm -f "$work/out/rss-"*
    for pid in "${current_pids[@]}"; do
        rss_watch "$work/out/rss-$i" "$pid" &
        watchers+=($!)
        i=$((i + 1))
    done
    cpu_snapshot
    local s0=$svc_cpu p0=$pg_cpu b0=$bouncer_cpu m0=$machine_cpu
    "$LOADGEN" "$@" --label "$label" --out "$out" 2>>"$work/out/$label-$phase.stderr" || { cat "$work/out/$label-$phase.stderr" >&2; exit 1; }
    cpu_snapshot
    touch "$work/out/rss-"{0..3}.stop
    for w in "${watchers[@]}"; do wait "$w" 2>/dev/null || true; done
    watchers=()
    eval "${phase}_json=$out"
    eval "${phase}_svc_cpu=$(sub "$svc_cpu" "$s0")"
    eval "${phase}_pg_cpu=$(sub "$pg_cpu" "$p0")"
    eval "${phase}_bouncer_cpu=$(sub "$bouncer_cpu" "$b0")"
    eval "${phase}_machine_cpu=$(sub "$machine_cpu" "$m0")"
    local max=0 v
    for f in "$work/out/rss-"[0-9]; do [ -f "$f" ] && v=$(cat "$f") && [ "$v" -gt "$max" ] && max=$v; done
    [ "$max" -gt "$rss_max_kb" ] && rss_max_kb=$max
    if [ -s "$work/out/$label-$phase.stderr" ]; then sed 's/^/    /' "$work/out/$label-$phase.stderr" | head -5; fi
}

run_pgbench() { # LABEL ORGS ORG_BASE CLIENTS PORT API_PAIRS_PER_S -> pgbench_json
    local label=$1 orgs=$2 obase=$3 clients=$4 port=$5 api_rate=$6
    # pgbench has -t or -T, not both, and every pair needs a minted applicant: so the count is bounded, and chosen to
    # take about as long as the API's pair phase at most (PHASE_SECONDS at the API's rate, if pgbench is no slower),
    # at least 300 pairs and at most PGBENCH_PAIRS.
    local pairs
    pairs=$(python3 -c "import sys; print(max(min(300, int(sys.argv[3])), min(int(sys.argv[3]), int(float(sys.argv[1] or 0) * int(sys.argv[2])))))" \
        "$api_rate" "$PHASE_SECONDS" "$PGBENCH_PAIRS")
    local per_client=$(((pairs + clients - 1) / clients)) threads=$((clients > 1 ? 2 : 1))
    take_applicants $((per_client * clients))
    prepare_database
    # The protocol the service uses: its pair's statements prepared once per connection (-M prepared), except behind
    # pgbouncer, where it sends them unprepared (-M extended: unnamed statements with parameters, as PostgresNIO does).
    local mode=prepared
    [ "$port" = "$BOUNCER" ] && mode=extended
    "$pgbin/pgbench" -n -M "$mode" -r -h 127.0.0.1 -p "$port" -U spor_app -c "$clients" -j "$threads" -t "$per_client" \
        -D base="$first" -D nclients="$clients" -D orgs="$orgs" -D orgbase="$obase" -D i=0 \
        -f "$here/pgbench_pair.sql" spor_access >"$work/out/$label-pgbench.log" 2>&1 || true
    lib pgbench "$work/out/$label-pgbench.log" >"$work/out/$label-pgbench.json"
    pgbench_json="$work/out/$label-pgbench.json"
    if grep -q "aborted\|ERROR" "$work/out/$label-pgbench.log"; then
        say "  pgbench reported errors (first lines):"
        grep -m 3 "aborted\|ERROR" "$work/out/$label-pgbench.log" | sed 's/^/    /'
    fi
}

mkdir -p "$(dirname "$RESULTS")"
: >"$work/run.jsonl"

run_config() { # ORGS ORG_BASE CLIENTS INSTANCES TARGETS PGBENCH_PORT
    local orgs=$1 obase=$2 clients=$3 instances=$4 targets=$5 pgbench_port=$6
    local via=direct
    [ "$instances" -gt 1 ] && via=pgbouncer
    local label="${orgs}orgs-${clients}clients-${instances}x"
    echo
    say "== $orgs organisation(s) x $clients client(s), $instances instance(s)$([ "$via" = pgbouncer ] && echo " behind pgbouncer (transaction pooling)") =="
    # Fresh applicants: one per pair, the pending prefill, and the reads' "my requests" come from the pairs.
    take_applicants "$PAIRS"
    lib plan-pair "$work/plans/$label-pair.tsv" "$first" "$PAIRS" "$obase" "$orgs"
    local pending=$((PENDING_PER_ORG * orgs))
    take_applicants "$pending"
    [ "$pending" -gt 0 ] && lib plan-pair "$work/plans/$label-file.tsv" "$first" "$pending" "$obase" "$orgs"
    if [ "$WARMUP_PAIRS" -gt 0 ]; then
        # Untimed: the pair at this configuration's concurrency, so that the statistics prepare_database takes next
        # describe tables that hold requests, grants and messages, and the service's connections plan against them.
        take_applicants "$WARMUP_PAIRS"
        lib plan-pair "$work/plans/$label-warmup.tsv" "$first" "$WARMUP_PAIRS" "$obase" "$orgs"
        "$LOADGEN" pair --target "$targets" --clients "$clients" --plan "$work/plans/$label-warmup.tsv" \
            --max-seconds 120 --label "$label-warmup" --out "$work/out/$label-warmup.json"
        say "  warm-up: $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('pairs_ok'), 'pairs,', d.get('pairs_per_s'), 'pairs/s, untimed')" "$work/out/$label-warmup.json")"
    fi
    prepare_database
    if [ "$pending" -gt 0 ]; then
        "$LOADGEN" file --target "$targets" --clients "$(( clients < 8 ? clients : 8 ))" --plan "$work/plans/$label-file.tsv" \
            --max-seconds 120 --label "$label-prefill" --out "$work/out/$label-prefill.json"
    fi
    rss_max_kb=0
    [ "$TOP_STATEMENTS" -gt 0 ] && psql_db -c "SELECT pg_stat_statements_reset()" >/dev/null
    [ "$TOP_FUNCTIONS" -gt 0 ] && psql_db -c "SELECT pg_stat_reset()" >/dev/null
    timed pairs "$label" -- pair --target "$targets" --clients "$clients" --plan "$work/plans/$label-pair.tsv" \
        --max-seconds "$PHASE_SECONDS"
    if [ "$TOP_STATEMENTS" -gt 0 ]; then
        echo "  top statements of the pair phase by execution time (pg_stat_statements, track=all; nested = inside a function):"
        psql_db -At -F ' | ' -c "SELECT round(total_exec_time::numeric, 1) || ' ms', calls || ' calls', round(mean_exec_time::numeric, 3) || ' ms/call', CASE WHEN toplevel THEN 'top' ELSE 'nested' END, left(regexp_replace(query, '\s+', ' ', 'g'), 120) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'spor_access') ORDER BY total_exec_time DESC LIMIT $TOP_STATEMENTS" \
            | tee "$work/out/$label-top-statements.txt" | sed 's/^/    /'
    fi
    if [ "$TOP_FUNCTIONS" -gt 0 ]; then
        sleep 1   # function statistics reach the view when each backend reports them (at most once a second)
        local done_pairs
        done_pairs=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('pairs_ok', 0) or 1)" "$pairs_json" 2>/dev/null || echo 1)
        echo "  functions of the pair phase by self time (track_functions=all; $done_pairs pairs):"
        psql_db -At -F ' | ' -c "SELECT round(self_time::numeric, 1) || ' ms self', round(total_time::numeric, 1) || ' ms total', round(calls::numeric / $done_pairs, 1) || ' calls/pair', round((self_time / greatest(calls, 1) * 1000)::numeric, 1) || ' us self/call', funcname FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT $TOP_FUNCTIONS" \
            | tee "$work/out/$label-top-functions.txt" | sed 's/^/    /'
    fi
    lib plan-reads "$work/plans/$label-reads.tsv" "$work/plans/$label-pair.tsv" "$obase" "$orgs" 999 "$pairs_json"
    timed reads "$label" -- reads --target "$targets" --clients "$clients" --plan "$work/plans/$label-reads.tsv" \
        --count "$READS" --max-seconds "$PHASE_SECONDS"
    local hwm=0 v
    for pid in "${current_pids[@]}"; do v=$(status_kb "$pid" VmHWM); [ "${v:-0}" -gt "$hwm" ] && hwm=$v; done
    pgbench_json=""
    local skipped="" direct_json=""
    # Two instances: also the ratio to pgbench straight to PostgreSQL at the same organisations and clients.
    [ "$instances" -gt 1 ] && [ -f "$work/out/${orgs}orgs-${clients}clients-1x-pgbench.json" ] \
        && direct_json="$work/out/${orgs}orgs-${clients}clients-1x-pgbench.json"
    if [ "$pgbench_ok" = 1 ]; then
        run_pgbench "$label" "$orgs" "$obase" "$clients" "$pgbench_port" \
            "$(python3 -c "import json, sys; print(json.load(open(sys.argv[1])).get('pairs_per_s', 0))" "$pairs_json")"
    else
        skipped="spor_file_request missing"
    fi
    lib merge config="$label" orgs="$orgs" clients="$clients" instances="$instances" via="$via" rev="$rev" bin="$BIN" \
        timestamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)" synchronous_commit="$SYNC_COMMIT" \
        pairs_json="$pairs_json" reads_json="$reads_json" pgbench_json="$pgbench_json" pgbench_skipped="$skipped" \
        service_cpu_pairs_s="$pairs_svc_cpu" postgres_cpu_pairs_s="$pairs_pg_cpu" pgbouncer_cpu_pairs_s="$pairs_bouncer_cpu" \
        service_cpu_reads_s="$reads_svc_cpu" postgres_cpu_reads_s="$reads_pg_cpu" pgbouncer_cpu_reads_s="$reads_bouncer_cpu" \
        machine_cpu_pairs_s="$pairs_machine_cpu" machine_cpu_reads_s="$reads_machine_cpu" cores="$(nproc)" \
        pgbench_direct_json="$direct_json" \
        service_rss_max_mb="$(python3 -c "print(round($rss_max_kb / 1024, 1))")" \
        service_hwm_mb="$(python3 -c "print(round($hwm / 1024, 1))")" >"$work/out/$label.line"
    cat "$work/out/$label.line" >>"$RESULTS"
    cat "$work/out/$label.line" >>"$work/run.jsonl"
    lib show "$work/out/$label.line"
}

# ---------------------------------------------------------------------------------------------------------------
# Optional: the statements of one sequential pair, from PostgreSQL's log
if [ "$LOG_STATEMENTS" = trace ]; then
    take_applicants 1
    lib plan-pair "$work/plans/trace.tsv" "$first" 1 "$(org_base_of 0)" 1
    psql_super -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    psql_owner -c "SELECT 'spor-load trace begin'" >/dev/null
    "$LOADGEN" pair --target "http://127.0.0.1:$SVC1" --clients 1 --plan "$work/plans/trace.tsv" --out "$work/out/trace.json"
    psql_owner -c "SELECT 'spor-load trace end'" >/dev/null
    psql_super -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null
    echo
    say "statements of one pair (log_min_duration_statement = 0 for this pair only; background workers may interleave):"
    # Each executed statement with its duration and parameters; parse and bind steps are left out.
    awk '/spor-load trace begin/ { on = 1; next } /spor-load trace end/ { on = 0 }
        !on { next }
        /^[0-9][0-9][0-9][0-9]-/ {
            keep = 0
            if (match($0, /duration: [0-9.]+ ms +(statement|execute [^:]*): /)) {
                split(substr($0, RSTART), d, " "); printf "  [%s ms] %s\n", d[2], substr($0, RSTART + RLENGTH); keep = 1
            } else if (last && match($0, /DETAIL: +parameters: /)) {
                printf "      parameters: %s\n", substr($0, RSTART + RLENGTH)
            }
            last = keep; next
        }
        keep { print "    " $0 }' "$work/pg/postgres.log" | tee "$work/out/trace-statements.txt"
fi

# ---------------------------------------------------------------------------------------------------------------
# The configurations
say "timed configurations: organisations {$ORG_SETS} x clients {$CLIENT_SET}, $PAIRS pairs and $READS reads each (at most ${PHASE_SECONDS} s a phase)"
current_pids=("$svc1_pid")
for j in "${!org_sets[@]}"; do
    for clients in $CLIENT_SET; do
        run_config "${org_sets[j]}" "$(org_base_of "$j")" "$clients" 1 "http://127.0.0.1:$SVC1" "$PGPORT"
    done
done

if [ "$SCALE_OUT" = 1 ]; then
    # The largest organisation set, two instances behind pgbouncer (transaction pooling), the clients split over both.
    last=$((${#org_sets[@]} - 1))
    stop_service "$svc1_pid"
    cat >"$work/pgbouncer/userlist.txt" <<EOF
"spor_owner" ""
"spor_app" ""
EOF
    cat >"$work/pgbouncer/pgbouncer.ini" <<EOF
[databases]
spor_access = host=127.0.0.1 port=$PGPORT dbname=spor_access

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER
unix_socket_dir =
auth_type = trust
auth_file = $work/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = $PGBOUNCER_POOL
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = $work/pgbouncer/pgbouncer.log
pidfile = $work/pgbouncer/pgbouncer.pid
EOF
    [ "$(id -u)" = 0 ] && chown -R "$pguser" "$work/pgbouncer"
    as_pg "$PGBOUNCER" -d "$work/pgbouncer/pgbouncer.ini"
    for _ in $(seq 1 50); do [ -s "$work/pgbouncer/pgbouncer.pid" ] && break; sleep 0.1; done
    bouncer_pid="$(cat "$work/pgbouncer/pgbouncer.pid")"
    B_OWNER="postgres://spor_owner:bench@127.0.0.1:$BOUNCER/spor_access"
    B_APP="postgres://spor_app:bench@127.0.0.1:$BOUNCER/spor_access"
    say "pgbouncer $("$PGBOUNCER" --version | head -1 | awk '{print $2}') on port $BOUNCER (pool $PGBOUNCER_POOL); two service instances on ports $SVC1 and $SVC2 (--no-migrate, SPOR_PREPARED_STATEMENTS=off)"
    # pgbouncer 1.18 in transaction mode keeps no named statements across transactions: the instances behind it send
    # the pair's statements unprepared (the variable, not the flag, so that older binaries start too).
    SPOR_PREPARED_STATEMENTS=off start_service svc1 "$SVC1" "$B_OWNER" "$B_APP" --no-migrate
    SPOR_PREPARED_STATEMENTS=off start_service svc2 "$SVC2" "$B_OWNER" "$B_APP" --no-migrate
    current_pids=("$svc1_pid" "$svc2_pid")
    run_config "${org_sets[last]}" "$(org_base_of "$last")" "$SCALE_OUT_CLIENTS" 2 "http://127.0.0.1:$SVC1,http://127.0.0.1:$SVC2" "$BOUNCER"
fi

lib summary "$work/run.jsonl"
echo
say "results appended to $RESULTS (one JSON line per configuration)"
