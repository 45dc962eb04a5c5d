#!/usr/bin/env bash
# Every fault scenario of Benchmarks/faults, one after the other, against a release build; prints each one's JSON
# figures and a line per scenario, and exits non-zero when any guarantee was broken. Each scenario starts its own
# PostgreSQL cluster (as the user postgres when run as root) and service.
#
# Usage: Benchmarks/faults/run.sh [ROUNDS=3]   (SPOR_BIN: the binary; default .build/release/spor-access)
#   Takes about 5 minutes. The scenarios on their own: db-restart.sh, sigterm.sh, pool.sh, unreachable.sh.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${1:-3}"
failed=()
for scenario in "db-restart.sh $rounds 8" "sigterm.sh $rounds 8" "pool.sh 100 10 30" "unreachable.sh 8"; do
    echo "== $scenario"
    log="$(mktemp)"
    # shellcheck disable=SC2086
    "$here"/$scenario >"$log" 2>&1
    code=$?
    grep -E '^\{' "$log" || tail -20 "$log"
    rm -f "$log"
    [ "$code" -eq 0 ] || failed+=("${scenario%% *}")
done
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; exit 1; fi
echo "all fault scenarios kept their guarantees"
