#!/usr/bin/env bash
# Fault: PostgreSQL goes away while clients file and approve requests — `pg_ctl restart -m fast`, and a stop with
# the database down for DOWN seconds before it starts again.
# Prints one JSON line per round: calls sent, writes acknowledged (201 file, 200 approve), found afterwards in the
# database, lost (must be 0), how every call was answered (503 while the database is away; never a hang, a 500 or a
# 400), and the seconds from PostgreSQL being back to the service being ready again (/health/ready 200; must be < 5).
# Ends with SIGTERM: the process must exit within 10 s, also after the restarts.
#
# Usage: Benchmarks/faults/db-restart.sh [ROUNDS=3] [CLIENTS=8] [DOWN="0 3"]
#   SPOR_BIN: the service binary (default .build/release/spor-access); KEEP=1 keeps the work folder.
here="$(cd "$(dirname "$0")" && pwd)"
REPO="${SPOR_REPO:-$(cd "$here/../.." && pwd)}"
BIN="${SPOR_BIN:-$REPO/.build/release/spor-access}"
ROUNDS="${1:-3}"
CLIENTS="${2:-8}"
DOWNS="${3:-0 3}"
. "$here/common.sh"

init_cluster
read -r SVC < <(free_ports 1)
start_service svc "$SVC"
wait_ready "$SVC"
say "set-up: $CLIENTS organisations with a first super user, applicants"
per_round=20000
rounds_total=$((ROUNDS * $(echo "$DOWNS" | wc -w)))
setup_organisations "$SVC" "$CLIENTS" $((rounds_total * per_round))
failed=0
round=0
for down in $DOWNS; do
    for _ in $(seq 1 "$ROUNDS"); do
        round=$((round + 1))
        out="$work/out/restart-$round.jsonl"
        python3 "$here/faults.py" load "http://127.0.0.1:$SVC" "$out" --clients "$CLIENTS" --orgs "$CLIENTS" --seconds $((10 + down)) \
            --first-applicant $(((round - 1) * per_round + 1)) &
        loader=$!
        sleep 4
        t_down=$(date +%s.%N)
        if [ "$down" = 0 ]; then
            say "round $round: pg_ctl restart -m fast under load"
            pg_restart
        else
            say "round $round: pg_ctl stop -m fast under load, $down s down, start"
            pg_stop
            sleep "$down"
            pg_start
        fi
        t_up=$(date +%s.%N)
        t_ready=""
        for _ in $(seq 1 600); do
            if curl -fs -o /dev/null "http://127.0.0.1:$SVC/health/ready"; then t_ready=$(date +%s.%N); break; fi
            sleep 0.02
        done
        wait "$loader"
        figures="$(python3 "$here/faults.py" check "$out" "$OWNER_URL")"
        python3 - "$figures" "$t_down" "$t_up" "$t_ready" "$round" "$down" <<'PY' || failed=1
import json, sys
f = json.loads(sys.argv[1])
down, up, ready, rnd, mode = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
line = {"scenario": "db-restart", "round": rnd, "mode": "restart -m fast" if mode == "0" else f"stop, {mode} s down, start",
        "database_away_s": round(up - down, 2), "ready_after_back_s": round(float(ready) - up, 2) if ready else None}
line.update(f)
ok = (f["lost"] == 0 and f["server_errors_500"] == 0 and f["bad_request_400"] == 0 and f["unanswered"] == 0
      and line["ready_after_back_s"] is not None and line["ready_after_back_s"] < 5)
line["ok"] = ok
print(json.dumps(line))
sys.exit(0 if ok else 1)
PY
    done
done
say "SIGTERM after the restarts"
t0=$(date +%s.%N)
kill -TERM "$svc_pid"
for _ in $(seq 1 200); do kill -0 "$svc_pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$svc_pid" 2>/dev/null; then
    echo '{"scenario": "db-restart", "sigterm_exit_s": null, "ok": false}'
    failed=1
else
    python3 -c "import sys; print('{\"scenario\": \"db-restart\", \"sigterm_exit_s\": %.2f, \"ok\": true}' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)"
fi
exit $failed
