#!/usr/bin/env bash
# Fault: the pool exhausted — an organisation's lock held elsewhere for HOLD seconds (an open transaction in psql)
# while CLIENTS clients at once file requests for it, against a service with POOL connections.
# Prints one JSON line: how the calls were answered (each within a bound: the connection wait, 5 s, or the lock
# timeout, 5 s, then 503 with Retry-After; never a hang or a 500), the slowest answer, and a call for another
# organisation made meanwhile. A call after the lock is released succeeds.
#
# Usage: Benchmarks/faults/pool.sh [CLIENTS=100] [POOL=10] [HOLD=30]   (SPOR_BIN: the binary)
here="$(cd "$(dirname "$0")" && pwd)"
REPO="${SPOR_REPO:-$(cd "$here/../.." && pwd)}"
BIN="${SPOR_BIN:-$REPO/.build/release/spor-access}"
CLIENTS="${1:-100}"
POOL="${2:-10}"
HOLD="${3:-30}"
. "$here/common.sh"

init_cluster
read -r SVC < <(free_ports 1)
start_service svc "$SVC" --pool-size "$POOL"
wait_ready "$SVC"
say "set-up: 2 organisations with a first super user, $((CLIENTS + 10)) applicants"
setup_organisations "$SVC" 2 $((CLIENTS + 10))
locked="ORG-$ORG_BASE"
say "holding $locked's lock for $HOLD s; $CLIENTS clients file requests for it at once (pool: $POOL connections)"
psql_owner -c "BEGIN; SELECT 1 FROM organisations WHERE id = '$locked' FOR UPDATE; SELECT pg_sleep($HOLD); COMMIT;" >/dev/null &
holder=$!
sleep 1
t0=$(date +%s.%N)
python3 "$here/faults.py" burst "http://127.0.0.1:$SVC" "$work/out/pool.jsonl" --clients "$CLIENTS" --org "$locked" --timeout 60 &
burst=$!
sleep 2
python3 "$here/faults.py" burst "http://127.0.0.1:$SVC" "$work/out/other.jsonl" --clients 1 --org "ORG-$((ORG_BASE + 1))" \
    --first-applicant $((CLIENTS + 1)) --timeout 60
wait "$burst"
t1=$(date +%s.%N)
wait "$holder"
python3 "$here/faults.py" burst "http://127.0.0.1:$SVC" "$work/out/after.jsonl" --clients 1 --org "$locked" \
    --first-applicant $((CLIENTS + 2)) --timeout 60
python3 "$here/faults.py" pool-report "$work/out/pool.jsonl" "$work/out/other.jsonl" "$work/out/after.jsonl" "$t0" "$t1" "$CLIENTS" "$POOL" "$HOLD"
