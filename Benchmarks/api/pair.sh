#!/usr/bin/env bash
# The sequential request+approve pair, side by side: a baseline revision against the current HEAD, release builds,
# each with its own embedded PostgreSQL, rounds alternating (base, head, base, head, ...) on this noisy machine.
# Usage: Benchmarks/api/pair.sh [BASE_REV] [PAIRS_PER_ROUND] [ROUNDS]
#   BASE_REV defaults to c2f0efa (main before the authenticated actor of issue 9).
#   BASE_DIR/BASE_BIN, HEAD_DIR/HEAD_BIN: use a checkout and its release binary as they are, built already
#   (no worktree, no build; the revision arguments are then only labels).
#   BASE_ENV/HEAD_ENV: "NAME=value ..." in the environment of that side's service only (SPOR_EXECUTOR=nio, say).
# Prints one JSON line per round and the median pair time of each side with their ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
base_rev="${1:-c2f0efa}"
pairs="${2:-300}"
rounds="${3:-3}"
root="${TMPDIR:-/tmp}/spor-bench-api"
mkdir -p "$root"

prepare() { # name revision port
    local name=$1 rev=$2 port=$3 dir="$root/$1" bin
    local given_dir given_bin side_env
    given_dir="$(eval echo "\${${name^^}_DIR:-}")"
    side_env="$(eval echo "\${${name^^}_ENV:-}")"
    given_bin="$(eval echo "\${${name^^}_BIN:-}")"
    if [ -n "$given_bin" ]; then
        dir="$given_dir"
        bin="$given_bin"
    else
        if [ ! -d "$dir" ]; then git worktree add -q --detach "$dir" "$rev"; fi
        git -C "$dir" checkout -q --detach "$rev"
        (cd "$dir" && swift build -c release --product spor-access >/dev/null)
        bin="$(cd "$dir" && swift build -c release --show-bin-path)/spor-access"
    fi
    rm -rf "$dir/.data/bench"
    # shellcheck disable=SC2086 # side_env is words on purpose
    (cd "$dir" && exec env $side_env "$bin" serve --data-dir .data/bench --port "$port" --log-level error >"$root/$name.log" 2>&1) &
    echo $! >"$root/$name.pid"
    for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 1; done
    # One organisation per round: each round makes its organisation's first super user through the service desk.
    { echo "name,country,city"; for r in $(seq 1 "$rounds"); do echo "Bench Pharma $r,NL,Leiden"; done; } >"$root/oms.csv"
    (cd "$dir" && "$bin" organisations import "$root/oms.csv" --data-dir .data/bench --log-level error >/dev/null)
    for who in desk:ema-service-desk admin:ema-admin; do
        echo "bench password 123" | (cd "$dir" && "$bin" staff add --email "${who%%:*}@bench.example" --name "${who%%:*}" \
            --role "${who##*:}" --password-stdin --data-dir .data/bench --log-level error >/dev/null)
    done
}

stop() { kill -INT "$(cat "$root/$1.pid")" 2>/dev/null || true; }
trap 'stop base; stop head' EXIT

head_rev="$(git rev-parse HEAD)"
prepare base "$base_rev" 18201
prepare head "$head_rev" 18202
echo "# base $base_rev vs head ${head_rev:0:7}: $pairs sequential pairs per round, $rounds rounds, release builds, loopback"
results="$root/results.jsonl"
: >"$results"
for round in $(seq 1 "$rounds"); do
    SPOR_MAIL_DIR="${BASE_DIR:-$root/base}/.data/mail" python3 Benchmarks/api/pair.py http://127.0.0.1:18201 "$pairs" 1 base "Bench Pharma $round" | tee -a "$results"
    SPOR_MAIL_DIR="${HEAD_DIR:-$root/head}/.data/mail" python3 Benchmarks/api/pair.py http://127.0.0.1:18202 "$pairs" 1 head "Bench Pharma $round" | tee -a "$results"
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {t: statistics.median(r["pair_mean_ms"] for r in rows if r["tag"] == t) for t in ("base", "head")}
for t in ("base", "head"):
    rs = [r for r in rows if r["tag"] == t]
    print(f"{t}: pair {med[t]:.2f} ms (median of round means), create p50 {statistics.median(r['create_p50_ms'] for r in rs):.2f} ms, "
          f"approve p50 {statistics.median(r['approve_p50_ms'] for r in rs):.2f} ms")
print(f"head / base = {med['head'] / med['base']:.2f}")
PY
