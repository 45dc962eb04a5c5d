#!/usr/bin/env bash
# Fault: the database is unreachable when the service starts, and comes up DOWN seconds later.
# Prints one JSON line: whether the process kept running, the log line it wrote (one per attempt, saying what it
# waits for), what /health/ready and an API call answered meanwhile (503 explaining; 503 `starting` with
# Retry-After), and the seconds from PostgreSQL being up to the service being ready (must be < 5).
#
# Usage: Benchmarks/faults/unreachable.sh [DOWN=8]   (SPOR_BIN: the binary)
here="$(cd "$(dirname "$0")" && pwd)"
REPO="${SPOR_REPO:-$(cd "$here/../.." && pwd)}"
BIN="${SPOR_BIN:-$REPO/.build/release/spor-access}"
DOWN="${1:-8}"
. "$here/common.sh"

init_cluster
pg_stop
read -r SVC < <(free_ports 1)
say "starting the service with PostgreSQL stopped; starting PostgreSQL after $DOWN s"
SERVICE_LOG_LEVEL=info start_service svc "$SVC"
sleep "$DOWN"
ready_body="$(curl -s "http://127.0.0.1:$SVC/health/ready" || echo 'no answer')"
ready_status="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SVC/health/ready" || true)"
api_headers="$(curl -s -D - -o "$work/out/api.json" "http://127.0.0.1:$SVC/v1/organisations?q=acme" || true)"
alive=0; kill -0 "$svc_pid" 2>/dev/null && alive=1
pg_start
t_up=$(date +%s.%N)
t_ready=""
for _ in $(seq 1 1000); do
    if curl -fs -o /dev/null "http://127.0.0.1:$SVC/health/ready"; then t_ready=$(date +%s.%N); break; fi
    sleep 0.02
done
python3 - "$work/svc.log" "$ready_status" "$ready_body" "$api_headers" "$work/out/api.json" "$alive" "$t_up" "$t_ready" <<'PY'
import json, sys
log, ready_status, ready_body, headers, api, alive, up, ready = sys.argv[1:9]
lines = [l for l in open(log) if "waiting for the database" in l]
status = headers.split("\n", 1)[0].split(" ")[1] if headers.startswith("HTTP") else None
retry = next((l.split(":", 1)[1].strip() for l in headers.splitlines() if l.lower().startswith("retry-after:")), None)
try:
    code = json.load(open(api)).get("code")
except Exception:
    code = None
line = {"scenario": "unreachable-at-start", "kept_running": alive == "1", "log_lines_while_down": len(lines),
        "first_log_line": lines[0].strip()[:300] if lines else None,
        "ready_while_down": {"status": int(ready_status or 0), "body": ready_body[:300]},
        "api_while_down": {"status": int(status or 0), "code": code, "retryAfter": retry},
        "ready_after_up_s": round(float(ready) - float(up), 2) if ready else None}
line["ok"] = (line["kept_running"] and len(lines) >= 1 and line["ready_while_down"]["status"] == 503
              and line["api_while_down"]["status"] == 503 and code == "starting" and retry is not None
              and line["ready_after_up_s"] is not None and line["ready_after_up_s"] < 5)
print(json.dumps(line))
sys.exit(0 if line["ok"] else 1)
PY
