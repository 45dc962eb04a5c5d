#!/usr/bin/env bash
# Fault: SIGTERM while clients file and approve requests on keep-alive connections.
# Prints one JSON line per round: the calls in flight when the signal came and how many of them were answered (all
# must be) with `Connection: close` (all must say it); calls sent afterwards on a connection the service had closed
# without saying so (must be 0); new connections after the signal that were accepted (must be 0: refused); lost
# writes (must be 0); and how long the process took to exit (must be < 10 s).
#
# Usage: Benchmarks/faults/sigterm.sh [ROUNDS=3] [CLIENTS=8]   (SPOR_BIN: the binary; KEEP=1 keeps the work folder)
here="$(cd "$(dirname "$0")" && pwd)"
REPO="${SPOR_REPO:-$(cd "$here/../.." && pwd)}"
BIN="${SPOR_BIN:-$REPO/.build/release/spor-access}"
ROUNDS="${1:-3}"
CLIENTS="${2:-8}"
. "$here/common.sh"

init_cluster
read -r SVC < <(free_ports 1)
start_service svc "$SVC"
wait_ready "$SVC"
say "set-up: $CLIENTS organisations with a first super user, applicants"
per_round=20000
setup_organisations "$SVC" "$CLIENTS" $((ROUNDS * per_round))
failed=0
for round in $(seq 1 "$ROUNDS"); do
    [ "$round" -gt 1 ] && { start_service svc "$SVC"; wait_ready "$SVC"; }
    out="$work/out/sigterm-$round.jsonl"
    python3 "$here/faults.py" load "http://127.0.0.1:$SVC" "$out" --clients "$CLIENTS" --orgs "$CLIENTS" --seconds 7 \
        --first-applicant $(((round - 1) * per_round + 1)) &
    loader=$!
    sleep 3
    say "round $round: SIGTERM under load"
    t_term=$(date +%s.%N)
    kill -TERM "$svc_pid"
    t_exit=""
    for _ in $(seq 1 400); do
        if ! kill -0 "$svc_pid" 2>/dev/null; then t_exit=$(date +%s.%N); break; fi
        sleep 0.025
    done
    wait "$svc_pid" 2>/dev/null || true
    wait "$loader"
    figures="$(python3 "$here/faults.py" check "$out" "$OWNER_URL")"
    python3 "$here/faults.py" sigterm-report "$out" "$t_term" "${t_exit:-0}" "$figures" "$round" || failed=1
done
exit $failed
