#!/usr/bin/env bash
# Reporting views benchmark.
#
# Starts `spor-access serve` with an embedded cluster in .data/bench (fresh each run), loads generate.sql
# (100,000 accounts, 300,000 access requests, ...), then times every reporting view with
# EXPLAIN (ANALYZE, BUFFERS) — median of $RUNS runs after one warm-up — whole and, for the per-organisation views,
# filtered to one organisation. When SQL/migrations/0008_reporting_indexes.sql exists, the same queries are also
# timed with its indexes dropped (inside a transaction that is rolled back), so the table shows what they buy.
# Prints the figures; plans go to .data/bench/plans-*.txt. Stops the server (SIGINT) at the end.
#
# Usage: Benchmarks/reporting/run.sh            (from anywhere; needs curl and psql)
# Env:   RUNS=5  BENCH_ORG=ORG-100000101  BENCH_HTTP_PORT=18081  BENCH_KEEP=1 (reuse .data/bench and its data)
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH_DIR=$ROOT/Benchmarks/reporting
DATA=.data/bench
HTTP_PORT=${BENCH_HTTP_PORT:-18081}
RUNS=${RUNS:-5}
ORG=${BENCH_ORG:-ORG-100000101}
BIN=.build/debug/spor-access
INDEXES_FILE=SQL/migrations/0008_reporting_indexes.sql
VIEWS=(organisations_without_super_user organisations_with_single_super_user pending_access_requests service_desk_sla
       role_holders approval_activity request_funnel oms_change_requests)
PER_ORGANISATION=(organisations_without_super_user organisations_with_single_super_user pending_access_requests
                  service_desk_sla role_holders approval_activity)
started=$(date +%s)

if [[ ! -x $BIN ]]; then
    echo "== building spor-access"
    swift build --product spor-access
fi

SERVE_PID=
stop_server() {
    if [[ -n $SERVE_PID ]] && kill -0 "$SERVE_PID" 2>/dev/null; then
        echo "== stopping the server (SIGINT to $SERVE_PID)"
        kill -INT "$SERVE_PID" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$SERVE_PID" 2>/dev/null; then
            echo "   still running after 30 s: SIGTERM"
            kill -TERM "$SERVE_PID" 2>/dev/null || true
        fi
        wait "$SERVE_PID" 2>/dev/null || true
    fi
    SERVE_PID=
}
trap stop_server EXIT

if [[ -z ${BENCH_KEEP:-} ]]; then rm -rf "$DATA"; fi
mkdir -p "$DATA"
echo "== starting spor-access serve (embedded cluster in $DATA, HTTP port $HTTP_PORT)"
"$BIN" serve --data-dir "$DATA" --port "$HTTP_PORT" >"$DATA/serve.log" 2>&1 &
SERVE_PID=$!
for i in $(seq 1 240); do
    if curl -fs "http://127.0.0.1:$HTTP_PORT/health/ready" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVE_PID" 2>/dev/null; then echo "serve exited:"; cat "$DATA/serve.log"; exit 1; fi
    if [[ $i == 240 ]]; then echo "not ready after 120 s:"; tail -20 "$DATA/serve.log"; exit 1; fi
    sleep 0.5
done

PGPASSWORD=$(sed -n 's/^spor_owner=//p' "$DATA/credentials")
PGPORT=$(sed -n 4p "$DATA/pgdata/postmaster.pid")
export PGHOST=127.0.0.1 PGPORT PGUSER=spor_owner PGPASSWORD PGDATABASE=spor_access
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
echo "   ready: PostgreSQL $(psql_ -At -c 'SHOW server_version') on port $PGPORT"

if [[ -z ${BENCH_KEEP:-} ]] || [[ $(psql_ -At -c 'SELECT count(*) FROM access_requests') -lt 300000 ]]; then
    echo "== loading generate.sql"
    t0=$(date +%s)
    psql_ -f "$BENCH_DIR/generate.sql"
    echo "   loaded in $(( $(date +%s) - t0 )) s"
fi
psql_ -c "SELECT count(*) FILTER (WHERE status = 'pending') AS pending_requests,
                 count(*) FILTER (WHERE approver_kind = 'ema-service-desk') AS first_super_user_requests,
                 (SELECT count(*) FROM role_assignments WHERE revoked_at IS NULL) AS active_assignments
          FROM access_requests"

# The SELECTs to time: "view|variant|sql".
queries=()
for view in "${VIEWS[@]}"; do
    queries+=("$view|all|SELECT * FROM reporting.$view")
done
for view in "${PER_ORGANISATION[@]}"; do
    queries+=("$view|$ORG|SELECT * FROM reporting.$view WHERE organisation_id = '$ORG'")
done

# measure <phase> <prelude sql> <epilogue sql>: runs every query once to warm up and $RUNS times measured, in one
# session as spor_reporting; prints "view|variant|median ms|index|rows|seq scans" lines.
measure() {
    local phase=$1 prelude=$2 epilogue=$3 script out
    script=$(mktemp) out="$DATA/plans-$phase.txt"
    {
        echo "$prelude"
        echo "SET ROLE spor_reporting;"
        for run in $(seq 0 "$RUNS"); do
            for q in "${queries[@]}"; do
                IFS='|' read -r view variant sql <<<"$q"
                echo "\\echo @@ $view|$variant|$run"
                echo "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) $sql;"
            done
        done
        echo "RESET ROLE;"
        echo "$epilogue"
    } >"$script"
    psql_ -At -f "$script" >"$out"
    rm -f "$script"
    awk -v runs="$RUNS" '
        /^@@ / { split(substr($0, 4), k, "|"); key = k[1] "|" k[2]; run = k[3]; first = 1
                 if (!(key in order)) { order[key] = ++n; keys[n] = key }; next }
        first && /actual time=/ { if (run == 1) { match($0, /actual time=[0-9.]+ rows=[0-9]+/); a = substr($0, RSTART, RLENGTH)
                                                  rows[key] = substr(a, index(a, "rows=") + 5) }
                                  first = 0 }
        run == 1 && /Index (Only )?Scan|Bitmap Index Scan/ { index_[key] = "yes" }
        run == 1 && /Seq Scan on / { match($0, /Seq Scan on [a-z_]+/); t = substr($0, RSTART + 12, RLENGTH - 12)
                                     if (index(" " seq[key] " ", " " t " ") == 0) seq[key] = (seq[key] ? seq[key] " " : "") t }
        /Execution Time:/ && run >= 1 { times[key, run] = $3 }
        END {
            for (i = 1; i <= n; i++) {
                key = keys[i]; m = 0
                for (r = 1; r <= runs; r++) v[++m] = times[key, r] + 0
                for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (v[b] < v[a]) { t = v[a]; v[a] = v[b]; v[b] = t }
                median = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
                printf "%s|%.1f|%s|%s|%s\n", key, median, (key in index_) ? "yes" : "no", rows[key], (key in seq) ? seq[key] : "-"
            }
        }' "$out"
}

print_table() {
    local title=$1 data=$2
    echo
    echo "== $title (median of $RUNS runs, ms)"
    { echo "view|variant|median ms|index|rows|seq scans"; echo "$data"; } | column -t -s '|'
}

if [[ -f $INDEXES_FILE ]]; then
    mapfile -t extra < <(grep -oE '^CREATE (UNIQUE )?INDEX (IF NOT EXISTS )?[a-z0-9_]+' "$INDEXES_FILE" | awk '{print $NF}')
    drops=$(printf 'DROP INDEX %s;\n' "${extra[@]}")
    without=$(measure without-0008 "BEGIN; $drops" "ROLLBACK;")
    print_table "without the 0008 indexes (${extra[*]})" "$without"
    with=$(measure with-0008 "" "")
    print_table "with the 0008 indexes" "$with"
else
    with=$(measure current "" "")
    print_table "current schema" "$with"
fi

echo
echo "== total $(( $(date +%s) - started )) s"
stop_server
