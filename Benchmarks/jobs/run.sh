#!/usr/bin/env bash
# The background jobs of issue 12 at OMS scale: what one round of each costs when nothing is due (every minute, on
# every instance) and when work is due.
#
# Starts `spor-access serve` (release build if there is one) with an embedded cluster in .data/bench-jobs (fresh each
# run), loads Benchmarks/reporting/generate.sql (5,000 organisations, 100,000 accounts, 300,000 requests and their
# role assignments), adds 500,000 organisations without members (OMS holds far more organisations than have SPOR
# users) and gives a fifth of the active assignments an end within 60 days. Then times, with EXPLAIN ANALYZE, median
# of $RUNS runs, each in a transaction that is rolled back:
#   - the scan that picks the organisations due a review: 0042's (every organisation) and 0044's (the organisations
#     holding active roles), with nothing due and 13 months on;
#   - one round of each job function: spor_open_due_reviews, spor_close_due_reviews, spor_end_lapsed_grants,
#     spor_send_grant_notices, spor_send_reminders, with nothing due (clock now) and with the clock moved on.
# What is due at the start (reminders, notices) is marked sent first, so the serving instance's own job rounds stay
# idle while the figures are taken.
# Usage: Benchmarks/jobs/run.sh   Env: RUNS=5 BENCH_HTTP_PORT=18082 BENCH_KEEP=1 (reuse the data)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DATA=.data/bench-jobs
RUNS=${RUNS:-5}
HTTP_PORT=${BENCH_HTTP_PORT:-18082}
BIN=.build-release/release/spor-access
[[ -x $BIN ]] || BIN=.build/release/spor-access
[[ -x $BIN ]] || { echo "== building spor-access (release)"; swift build -c release --product spor-access; BIN=.build/release/spor-access; }

if [[ -z ${BENCH_KEEP:-} ]]; then rm -rf "$DATA"; fi
mkdir -p "$DATA"
"$BIN" serve --data-dir "$DATA" --port "$HTTP_PORT" --log-level error >"$DATA/serve.log" 2>&1 &
SERVE_PID=$!
trap 'kill -INT $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null || true' EXIT
for i in $(seq 1 240); do
    curl -fs "http://127.0.0.1:$HTTP_PORT/health/ready" >/dev/null 2>&1 && break
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$DATA/serve.log"; exit 1; }
    [[ $i == 240 ]] && { echo "not ready after 120 s"; exit 1; }
    sleep 0.5
done
PGPASSWORD=$(sed -n 's/^spor_owner=//p' "$DATA/credentials")
PGPORT=$(sed -n 4p "$DATA/pgdata/postmaster.pid")
export PGHOST=127.0.0.1 PGPORT PGUSER=spor_owner PGPASSWORD PGDATABASE=spor_access
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

if [[ $(psql_ -At -c 'SELECT count(*) FROM organisations') -lt 500000 ]]; then
    echo "== loading (generate.sql, then 500,000 organisations without members and grant ends)"
    psql_ -f Benchmarks/reporting/generate.sql
    psql_ <<'SQL'
BEGIN;
ALTER TABLE organisations DISABLE TRIGGER USER;
ALTER TABLE role_assignments DISABLE TRIGGER USER;
INSERT INTO organisations (id, name, country, city, address, status, created_at)
SELECT 'ORG-' || (200000000 + n), 'OMS organisation ' || n, 'NL', 'City ' || (n % 300), n || ' Side Street', 'active',
       now() - interval '5 years'
FROM generate_series(1, 500000) n;
INSERT INTO organisation_super_user_epochs (organisation_id) SELECT id FROM organisations ON CONFLICT DO NOTHING;
UPDATE role_assignments SET ends_at = greatest(effective_from + interval '1 hour', now() + (1 + id % 60) * interval '1 day')
WHERE revoked_at IS NULL AND organisation_id IS NOT NULL AND id % 5 = 0;
ALTER TABLE organisations ENABLE TRIGGER USER;
ALTER TABLE role_assignments ENABLE TRIGGER USER;
-- What is due today counts as sent already, so that the serving instance's own job rounds stay idle while the
-- figures are taken (the measured rounds move the clock on inside their own rolled-back transactions).
INSERT INTO reminders (kind, subject_type, subject_id, organisation_id)
SELECT 'request-reminder', 'access_request', id::text, organisation_id FROM access_requests
WHERE status = 'pending' AND approver_kind = 'organisation-super-users' ON CONFLICT DO NOTHING;
INSERT INTO reminders (kind, subject_type, subject_id, organisation_id)
SELECT 'ticket-overdue', 'service_desk_ticket', id::text, organisation_id FROM service_desk_tickets WHERE status = 'open'
ON CONFLICT DO NOTHING;
INSERT INTO grant_notices (assignment_id, days_before, organisation_id)
SELECT g.id, d, g.organisation_id FROM role_assignments g, unnest(ARRAY[14, 3]) d
WHERE g.revoked_at IS NULL AND g.ends_at <= now() + interval '14 days' ON CONFLICT DO NOTHING;
COMMIT;
ANALYZE organisations, role_assignments, access_reviews, organisation_super_user_epochs;
SQL
fi
psql_ -At -F ' ' -c "SELECT count(*) AS organisations,
    (SELECT count(DISTINCT organisation_id) FROM role_assignments WHERE revoked_at IS NULL AND organisation_id IS NOT NULL),
    (SELECT count(*) FROM role_assignments WHERE revoked_at IS NULL),
    (SELECT count(*) FROM role_assignments WHERE revoked_at IS NULL AND ends_at IS NOT NULL) FROM organisations" |
    awk '{ printf "   %s organisations, %s of them with active roles; %s active assignments, %s with an end\n", $1, $2, $3, $4 }'

old_scan="SELECT count(*) FROM (SELECT org.id FROM organisations org WHERE org.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM access_reviews r WHERE r.organisation_id = org.id AND r.closed_at IS NULL)
  AND EXISTS (SELECT 1 FROM role_assignments g WHERE g.organisation_id = org.id AND g.revoked_at IS NULL
              AND (g.ends_at IS NULL OR g.ends_at > spor_job_now()))
  AND coalesce((SELECT max(r.opened_at) FROM access_reviews r WHERE r.organisation_id = org.id),
               (SELECT min(g.granted_at) FROM role_assignments g WHERE g.organisation_id = org.id AND g.revoked_at IS NULL
                  AND (g.ends_at IS NULL OR g.ends_at > spor_job_now()))) + interval '12 months' <= spor_job_now()
  ORDER BY org.id LIMIT 100) due"
new_scan="SELECT count(*) FROM (SELECT held.organisation_id FROM (SELECT g.organisation_id, min(g.granted_at) AS oldest
    FROM role_assignments g WHERE g.organisation_id IS NOT NULL AND g.revoked_at IS NULL
      AND (g.ends_at IS NULL OR g.ends_at > spor_job_now()) GROUP BY g.organisation_id) held
  JOIN organisations org ON org.id = held.organisation_id AND org.status = 'active'
  LEFT JOIN LATERAL (SELECT max(r.opened_at) AS last_opened, bool_or(r.closed_at IS NULL) AS open
                     FROM access_reviews r WHERE r.organisation_id = held.organisation_id) past ON true
  WHERE NOT coalesce(past.open, false) AND coalesce(past.last_opened, held.oldest) + interval '12 months' <= spor_job_now()
  ORDER BY held.organisation_id LIMIT 100) due"
old_scan=$(tr '\n' ' ' <<<"$old_scan")
new_scan=$(tr '\n' ' ' <<<"$new_scan")
# "label|clock offset|sql"
queries=(
    "review scan, 0042 (every organisation)|0|$old_scan"
    "review scan, 0044 (organisations with roles)|0|$new_scan"
    "review scan, 0042, 13 months on|13 months|$old_scan"
    "review scan, 0044, 13 months on|13 months|$new_scan"
)
for offset in 0 "13 months"; do
    for job in "spor_open_due_reviews(100)" "spor_close_due_reviews(100)" "spor_end_lapsed_grants(500)" \
               "spor_send_grant_notices(500)" "spor_send_reminders(500)"; do
        queries+=("$job|$offset|SELECT $job")
    done
done

script=$(mktemp)
for run in $(seq 0 "$RUNS"); do
    for q in "${queries[@]}"; do
        IFS='|' read -r label offset sql <<<"$q"
        printf '\\echo @@ %s|%s|%s\nBEGIN;\nUPDATE settings SET job_clock_offset = %s;\nEXPLAIN (ANALYZE, FORMAT TEXT) %s;\nROLLBACK;\n' \
            "$label" "$offset" "$run" "'$offset'::interval" "$sql" >>"$script"
    done
done
psql_ -At -f "$script" >"$DATA/plans.txt"
rm -f "$script"
echo
echo "== one round, median of $RUNS runs (ms), rolled back"
awk -v runs="$RUNS" '
    /^@@ / { split(substr($0, 4), k, "|"); key = k[1] " @ +" k[2]; run = k[3]; if (!(key in seen)) { seen[key] = 1; keys[++n] = key }; next }
    /Execution Time:/ && run >= 1 { t[key, run] = $3 }
    END { for (i = 1; i <= n; i++) { m = 0; for (r = 1; r <= runs; r++) v[++m] = t[keys[i], r] + 0
            for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (v[b] < v[a]) { x = v[a]; v[a] = v[b]; v[b] = x }
            printf "%-60s %10.1f\n", keys[i], (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 } }' "$DATA/plans.txt"
