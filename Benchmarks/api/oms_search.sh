#!/usr/bin/env bash
# OMS search over a large dictionary (issue "Performance": p95 < 5 ms over 1,000,000 organisations).
# Starts the release binary's embedded cluster in a temporary folder (it migrates), loads N organisations as the owner
# (names from a fixed vocabulary, seeded), and times spor_search_organisations — the one statement behind
# GET /v1/organisations?q= — with pgbench, one client, a rotating set of search terms; prints p50/p95/p99.
# Usage: Benchmarks/api/oms_search.sh [BIN] [ORGANISATIONS=1000000] [SEARCHES=2000]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../.build/release/spor-access}"
count="${2:-1000000}"
searches="${3:-2000}"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
work="$(mktemp -d /tmp/spor-oms.XXXXXX)"; chmod 755 "$work"
port=$((20000 + RANDOM % 20000))
cleanup() { kill -INT "$svc" 2>/dev/null || true; wait "$svc" 2>/dev/null || true; rm -rf "$work"; }
"$bin" serve --data-dir "$work/data" --port "$port" --log-level error >"$work/serve.log" 2>&1 &
svc=$!
trap cleanup EXIT
for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 1; done
pgport="$(grep -o 'port=[0-9]*' "$work/data/postmaster.opts" 2>/dev/null | head -1 | cut -d= -f2 || true)"
[ -n "$pgport" ] || pgport="$(sed -n '4p' "$work/data/pgdata/postmaster.pid")"
owner_pw="$(grep '^spor_owner=' "$work/data/credentials" | cut -d= -f2-)"
export PGPASSWORD="$owner_pw"
psql_owner() { "$pgbin/psql" -X -q -h 127.0.0.1 -p "$pgport" -U spor_owner -d spor_access -v ON_ERROR_STOP=1 "$@"; }
echo "# loading $count organisations (owner, user triggers off for the load)"
start=$(date +%s)
psql_owner <<SQL
SELECT setseed(0.42);
ALTER TABLE organisations DISABLE TRIGGER USER;
INSERT INTO organisations (name, country, city)
SELECT initcap(w1.w) || ' ' || initcap(w2.w) || ' ' || (ARRAY['Pharma','Biotech','Laboratories','Therapeutics','Medical','Health'])[1 + (g % 6)] || ' ' || g,
       (ARRAY['NL','DE','FR','IT','ES','BE','SE','PL','IE','AT'])[1 + (g % 10)], 'City ' || (g % 500)
FROM generate_series(1, $count) g,
     LATERAL (SELECT (ARRAY['nordic','alpine','baltic','iberian','atlantic','danube','rhine','celtic','adriatic','aegean',
                             'orion','vega','sirius','lyra','nova','aurora','zenith','helix','quantum','vector'])[1 + ((g * 7 + 3) % 20)] AS w) w1,
     LATERAL (SELECT (ARRAY['gen','cure','vita','med','bio','life','care','pharm','thera','lab',
                             'cell','core','path','gene','immune','neuro','cardio','derm','onco','renal'])[1 + ((g * 13 + 5) % 20)] AS w) w2;
ALTER TABLE organisations ENABLE TRIGGER USER;
SELECT spor_rebuild_organisation_search();   -- the search words, which the disabled trigger did not write (0047)
VACUUM ANALYZE organisations;
SQL
echo "# loaded in $(( $(date +%s) - start )) s: $(psql_owner -At -c 'SELECT count(*) FROM organisations') organisations"
cat >"$work/search.sql" <<'SQL'
\set t random(1, 8)
SELECT * FROM spor_search_organisations((ARRAY['nordic gen','Alpine Cure Pharma','vega','quantum onco','baltc','Orion Lab 4711','atlantic cardio biotech','zenith'])[:t], NULL, 21, 0);
SQL
"$pgbin/pgbench" -n -h 127.0.0.1 -p "$pgport" -U spor_owner -c 1 -t 50 -f "$work/search.sql" spor_access >"$work/warmup.log" 2>&1 || { cat "$work/warmup.log"; exit 1; }  # warm-up
(cd "$work" && "$pgbin/pgbench" -n -h 127.0.0.1 -p "$pgport" -U spor_owner -c 1 -t "$searches" -f "$work/search.sql" -l --log-prefix=search spor_access >"$work/pgbench.log" 2>&1) || { cat "$work/pgbench.log"; exit 1; }
python3 - "$work" "$count" <<'PY'
import glob, statistics, sys
lat = sorted(int(line.split()[2]) / 1000 for f in glob.glob(sys.argv[1] + "/search.[0-9]*") for line in open(f))
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"OMS search over {int(sys.argv[2]):,} organisations, {len(lat)} searches, 1 client: "
      f"p50 {q(0.50):.2f} ms, p95 {q(0.95):.2f} ms, p99 {q(0.99):.2f} ms")
PY
echo "# each term alone (mean of 20 searches in one session, after one warm-up):"
for term in 'nordic gen' 'Alpine Cure Pharma' 'vega' 'quantum onco' 'baltc' 'Orion Lab 4711' 'atlantic cardio biotech' 'zenith'; do
    { echo '\timing on'; for _ in $(seq 1 21); do echo "SELECT count(*) FROM spor_search_organisations('$term', NULL, 21, 0);"; done; } |
        psql_owner -At | awk -v t="$term" '/^Time:/ { n++; if (n > 1) { s += $2; c++ } } /^[0-9]+$/ { rows = $1 } END { printf "    %-26s %2d results, %.2f ms\n", t, rows, s / c }'
done
