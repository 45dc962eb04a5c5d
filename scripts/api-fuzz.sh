#!/usr/bin/env bash
# Property-based API testing of the running service against its contract (openapi.yaml) with schemathesis:
# no server errors (5xx) and no response that violates the documented schema. Run by .ci/run after the test suite.
# Usage: scripts/api-fuzz.sh [max-examples-per-operation]   (default 25)
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-25}"
port=18095
data=".data/api-fuzz"

if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install -q 'schemathesis>=4.3,<5'
fi
swift build --product spor-access >/dev/null
bin="$(swift build --show-bin-path)/spor-access"
rm -rf "$data"

"$bin" serve --data-dir "$data" --port "$port" --log-level error &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 1
done
curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null

# Some data to reach past 404s, and an EMA administrator who is also service desk and data steward.
printf 'name,country,city,id\nAcme Pharma,NL,Leiden,ORG-100000001\nBeta Biotech,BE,Ghent,ORG-100000002\n' > "$data/oms.csv"
"$bin" organisations import "$data/oms.csv" --data-dir "$data" >/dev/null
for role in ema-admin ema-service-desk ema-data-steward; do
    echo 'fuzzing password 123' | "$bin" staff add --email fuzz@ema.example --name Fuzz --role "$role" --password-stdin --data-dir "$data" >/dev/null
done
token=$(curl -fs -X POST "http://127.0.0.1:$port/v1/sessions" -H 'Content-Type: application/json' \
    -d '{"email":"fuzz@ema.example","password":"fuzzing password 123"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

schemathesis run "http://127.0.0.1:$port/openapi.yaml" \
    --checks not_a_server_error,response_schema_conformance \
    --header "Authorization: Bearer $token" \
    --max-examples "$examples" \
    --seed 20261125 \
    --exclude-path /v1/sessions/current
