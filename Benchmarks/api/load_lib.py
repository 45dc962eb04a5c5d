#!/usr/bin/env python3
"""Helpers of Benchmarks/api/load.sh (standard library only; nothing here is on the timed path).

  load_lib.py plan-pair   OUT FIRST COUNT ORG_BASE ORGS      pair/file plan: applicant FIRST+k files for org k % ORGS
  load_lib.py plan-reads  OUT PAIR_PLAN ORG_BASE ORGS LINES [PAIRS_JSON]  reads plan: my requests (applicants the
                          pair phase reached), the pending list, the OMS search, in turn
  load_lib.py super-users BASE_URL DESK_EMAIL PASSWORD ORGNUM...   first super user of each organisation, over the API
  load_lib.py filler-csv  OUT COUNT                           OMS filler organisations (name,country,city)
  load_lib.py proc-cpu    PID...                              utime+stime (s) of processes
  load_lib.py pg-cpu      POSTMASTER_PID                      CPU (s) of a cluster: postmaster with its reaped children + live children
  load_lib.py machine-cpu                             busy CPU (s) of the whole machine, all cores
  load_lib.py snapshot    POSTMASTER BOUNCER|- PID...      machine, service, postgres, pgbouncer CPU (s) at once
  load_lib.py pgbench     LOG                                 pgbench's output as JSON
  load_lib.py merge       ...                                 one configuration's JSON line (see load.sh)
  load_lib.py summary     RESULTS.jsonl                       the summary table and the targets

Tokens are deterministic: applicant n is `bench-applicant-<n>`, the super user of organisation ORG-<num> is
`bench-su-<num>` (see load.sh, mint_accounts).
"""
import base64
import http.client
import json
import os
import re
import sys
import urllib.parse

TICKS = os.sysconf("SC_CLK_TCK")

SEARCH_TERMS = ["pharma", "bio", "labor", "sante", "therapeutics", "medica", "gen", "vita", "nordic", "leiden",
                "solo", "bench", "ph", "xyz-no-match"]
WORDS_A = ["Acme", "Nordic", "Alpine", "Baltic", "Iberia", "Rhine", "Danube", "Celtic", "Aurora", "Helix", "Vita",
           "Medica", "Santé", "Œuvre", "Zenith", "Orion", "Polar", "Atlas", "Lumen", "Nova"]
WORDS_B = ["Pharma", "Bio", "Laboratoires", "Therapeutics", "Generics", "Biotech", "Health", "Vaccines", "Diagnostics",
           "Medical", "Life Sciences", "Chemie", "Pharmazeutika", "Farmacéutica"]
COUNTRIES = [("NL", "Leiden"), ("DE", "Berlin"), ("FR", "Lyon"), ("BE", "Gent"), ("IT", "Milano"), ("ES", "Madrid"),
             ("SE", "Uppsala"), ("DK", "Aarhus"), ("IE", "Cork"), ("AT", "Wien"), ("PL", "Kraków"), ("PT", "Porto")]


def org_id(num):
    return f"ORG-{num:09d}"


def plan_pair(out, first, count, org_base, orgs):
    first, count, org_base, orgs = int(first), int(count), int(org_base), int(orgs)
    with open(out, "w") as f:
        for k in range(count):
            num = org_base + k % orgs
            f.write(f"bench-applicant-{first + k}\t{org_id(num)}\tbench-su-{num}\n")


def plan_reads(out, pair_plan, org_base, orgs, lines, pairs_json=None):
    org_base, orgs, lines = int(org_base), int(orgs), int(lines)
    applicants = [line.split("\t")[0] for line in open(pair_plan) if line.strip()]
    used = call(load_json(pairs_json), "create", "count") if pairs_json else None
    if used:
        applicants = applicants[:used]  # the plan lines the pair phase reached, in order: these have a request
    if not applicants:
        raise SystemExit("plan-reads: the pair plan is empty")
    with open(out, "w") as f:
        for k in range(lines):
            num = org_base + k % orgs
            kind = k % 3
            if kind == 0:
                f.write(f"my-requests\t/v1/me/access-requests\t{applicants[k % len(applicants)]}\n")
            elif kind == 1:
                f.write(f"org-pending\t/v1/organisations/{org_id(num)}/access-requests?status=pending\tbench-su-{num}\n")
            else:
                term = urllib.parse.quote(SEARCH_TERMS[(k // 3) % len(SEARCH_TERMS)])
                f.write(f"oms-search\t/v1/organisations?q={term}\t-\n")


def filler_csv(out, count):
    count = int(count)
    with open(out, "w") as f:
        f.write("name,country,city\n")
        for k in range(count):
            a = WORDS_A[k % len(WORDS_A)]
            b = WORDS_B[(k // len(WORDS_A)) % len(WORDS_B)]
            country, city = COUNTRIES[(k * 7) % len(COUNTRIES)]
            f.write(f"{a} {b} {k},{country},{city}\n")


class Client:
    def __init__(self, base):
        url = urllib.parse.urlparse(base)
        if url.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("loopback only")
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)

    def call(self, method, path, body=None, token=None, wanted=(200,)):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        self.conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.status not in wanted:
            raise SystemExit(f"{method} {path}: HTTP {response.status} {raw[:500]!r}")
        return json.loads(raw) if raw else None


def super_users(base, desk_email, password, *nums):
    """The first super user of each organisation, the way the process has it (R8, R10): the request, the service
    desk ticket with the affiliation letter, the desk's approval. The accounts are minted beforehand (bench-su-<num>)."""
    c = Client(base)
    desk = c.call("POST", "/v1/sessions", {"email": desk_email, "password": password}, wanted=(201,))["token"]
    letter = base64.b64encode(b"%PDF-1.4\n% SPOR User Affiliation Template Letter\n%%EOF\n").decode()
    for num in nums:
        org, token = org_id(int(num)), f"bench-su-{num}"
        req = c.call("POST", "/v1/access-requests", {"role": "spor-industry-super-user", "organisationId": org}, token, (201,))
        if req["approverKind"] != "ema-service-desk":
            raise SystemExit(f"{org}: expected the service desk to decide the first super user, got {req['approverKind']}")
        ticket = c.call("POST", "/v1/service-desk/tickets", {
            "subject": f"SPOR Super user role access \u2013 request ID {req['id']}",
            "signatory": {"name": "Dr. A. Director", "jobTitle": "Head of Regulatory Affairs",
                          "email": "director@bench.example", "organisationId": org, "hasManagerialAuthority": True},
            "letter": {"fileName": "letter.pdf", "contentType": "application/pdf", "contentBase64": letter}}, token, (201,))
        c.call("POST", f"/v1/service-desk/tickets/{ticket['id']}/approve", {}, desk, (200,))
    print(f"first super users approved by the service desk: {len(nums)}")


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def proc_cpu(*pids):
    total = 0
    for pid in pids:
        try:
            fields = stat_fields(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    print(f"{total / TICKS:.2f}")


def machine_cpu():
    """Busy CPU seconds of the whole machine (all cores) from /proc/stat: everything but idle and iowait."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    print(f"{busy / TICKS:.2f}")


def pg_cpu(postmaster):
    """The postmaster's own CPU plus cutime/cstime (backends that ended and were reaped), plus every live child."""
    postmaster = int(postmaster)
    fields = stat_fields(postmaster)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == postmaster:
            continue
        try:
            f = stat_fields(name)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if int(f[1]) == postmaster:
            total += int(f[11]) + int(f[12])
    print(f"{total / TICKS:.2f}")


def snapshot(postmaster, bouncer, *pids):
    """machine busy, service (pids summed), postgres, pgbouncer CPU seconds, read together in one process."""
    import contextlib, io
    out = []
    for fn, args in ((machine_cpu, ()), (proc_cpu, pids), (pg_cpu, (postmaster,)), (proc_cpu, (bouncer,) if bouncer != "-" else ())):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            fn(*args)
        out.append(buf.getvalue().strip())
    print(" ".join(out))


def pgbench(log):
    out = {"tps": None, "processed": None, "planned": None, "latency_avg_ms": None, "failed": 0, "aborted": None,
           "statements_ms": []}
    text = open(log, errors="replace").read()
    in_statements = False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("tps = "):
            out["tps"] = float(s.split()[2])
        elif s.startswith("number of transactions actually processed:"):
            done, _, planned = s.split(":", 1)[1].strip().partition("/")
            out["processed"], out["planned"] = int(done), int(planned) if planned else None
        elif s.startswith("number of failed transactions:"):
            out["failed"] = int(s.split(":", 1)[1].split()[0])
        elif s.startswith("latency average ="):
            out["latency_avg_ms"] = float(s.split("=")[1].split()[0])
        elif "statement latencies in milliseconds" in s:
            in_statements = True
        elif in_statements and s and s[0].isdigit():
            m = re.match(r"^([\d.]+)\s+(?:(\d+)\s+)?(.*)$", s)
            if m and not m.group(3).startswith("\\"):
                out["statements_ms"].append({"ms": float(m.group(1)), "sql": m.group(3)[:160]})
        if "aborted in command" in s:
            out["aborted"] = (out["aborted"] or 0) + 1
    print(json.dumps(out))


def load_json(path):
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as f:
        return json.loads(f.read())


def merge(args):
    """merge KEY=VALUE...: numbers stay numbers; *_json=PATH embeds a JSON file."""
    out = {}
    for arg in args:
        key, _, value = arg.partition("=")
        if key.endswith("_json"):
            out[key[:-5]] = load_json(value)
            continue
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    pairs, bench = out.get("pairs") or {}, out.get("pgbench") or {}
    if pairs.get("pairs_per_s") and bench.get("tps"):
        out["api_over_pgbench"] = round(pairs["pairs_per_s"] / bench["tps"], 3)
    direct = out.get("pgbench_direct") or {}
    if pairs.get("pairs_per_s") and direct.get("tps"):
        out["api_over_pgbench_direct"] = round(pairs["pairs_per_s"] / direct["tps"], 3)
    print(json.dumps(out, ensure_ascii=False))


def call(result, name, key):
    c = ((result or {}).get("calls") or {}).get(name) or {}
    return c.get(key)


def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def summary(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    if not rows:
        print("no results")
        return
    print()
    print("## Summary (latencies in ms: p50/p95/p99; CPU in seconds of the timed part; RSS in MB)")
    print()
    head = ["configuration", "pairs/s", "create", "approve", "pair", "errors", "pgbench pairs/s", "API/pgbench",
            "reads/s", "my requests", "org pending", "OMS search", "read errors", "svc CPU pairs", "pg CPU pairs",
            "svc RSS max"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")

    def lat(r, name):
        return "/".join(fmt(call(r, name, k)) for k in ("p50_ms", "p95_ms", "p99_ms")) if call(r, name, "count") else "—"

    for row in rows:
        p, r, b = row.get("pairs") or {}, row.get("reads") or {}, row.get("pgbench") or {}
        errors = ", ".join(f"{k}: {v}" for k, v in (p.get("errors") or {}).items()) or "0"
        rerrors = ", ".join(f"{k}: {v}" for k, v in (r.get("errors") or {}).items()) or "0"
        print("| " + " | ".join([
            row.get("config", "?"), fmt(p.get("pairs_per_s")), lat(p, "create"), lat(p, "approve"), lat(p, "pair"), errors,
            fmt(b.get("tps")) if b.get("tps") else ("skipped" if row.get("pgbench_skipped") else "—"),
            fmt(row.get("api_over_pgbench"), 2),
            fmt(r.get("requests_per_s")), lat(r, "my-requests"), lat(r, "org-pending"), lat(r, "oms-search"), rerrors,
            fmt(row.get("service_cpu_pairs_s"), 2), fmt(row.get("postgres_cpu_pairs_s"), 2), fmt(row.get("service_rss_max_mb"))
        ]) + " |")
    print()
    print("## Targets")
    checks = []

    def find(orgs, clients, instances=1):
        for row in rows:
            if row.get("orgs") == orgs and row.get("clients") == clients and row.get("instances", 1) == instances:
                return row
        return None

    seq = [row for row in rows if row.get("clients") == 1 and (row.get("pairs") or {}).get("calls")]
    for row in seq:
        v = call(row["pairs"], "pair", "p50_ms")
        checks.append((f"sequential pair p50 <= 4 ms ({row['config']})", v, v is not None and v <= 4, "ms"))
    for orgs, target in ((64, 1000), (1, 500)):
        row = find(orgs, 32)
        v = (row or {}).get("pairs", {}).get("pairs_per_s") if row else None
        checks.append((f"{orgs} org(s) x 32 clients >= {target} pairs/s", v, v is not None and v >= target, "pairs/s"))
    for row in rows:
        ratio = row.get("api_over_pgbench")
        if ratio is not None and row.get("clients") == 32:
            checks.append((f"API >= 60 % of pgbench ({row['config']})", ratio, ratio >= 0.6, "x"))
    rss = [row.get("service_rss_max_mb") for row in rows if row.get("service_rss_max_mb") is not None]
    if rss:
        checks.append(("service RSS < 150 MB (max over the run)", max(rss), max(rss) < 150, "MB"))
    for name, value, ok, unit in checks:
        print(f"- {'met ' if ok else 'MISS'}  {name}: {fmt(value, 2)} {unit}")


def show(path):
    """One configuration in a few lines, as load.sh prints it after each."""
    row = json.loads(open(path).read())
    p, r, b = row.get("pairs") or {}, row.get("reads") or {}, row.get("pgbench") or {}

    def lat(result, name):
        c = ((result or {}).get("calls") or {}).get(name)
        if not c:
            return f"{name} —"
        return f"{name} {c['p50_ms']:.2f}/{c['p95_ms']:.2f}/{c['p99_ms']:.2f}"

    def errs(result):
        e = (result or {}).get("errors") or {}
        return ", ".join(f"{k}: {v}" for k, v in e.items()) or "none"

    print(f"  pairs: {fmt(p.get('pairs_per_s'))} pairs/s ({p.get('pairs_ok')} pairs in {fmt(p.get('elapsed_s'), 2)} s, "
          f"stopped by {p.get('stopped_by')}); p50/p95/p99 ms: {lat(p, 'create')}, {lat(p, 'approve')}, {lat(p, 'pair')}; "
          f"errors: {errs(p)}")
    print(f"  reads: {fmt(r.get('requests_per_s'))} requests/s ({r.get('requests')} in {fmt(r.get('elapsed_s'), 2)} s); "
          f"p50/p95/p99 ms: {lat(r, 'my-requests')}, {lat(r, 'org-pending')}, {lat(r, 'oms-search')}; errors: {errs(r)}")
    bouncer = ""
    if row.get("via") == "pgbouncer":
        bouncer = f", pgbouncer {fmt(row.get('pgbouncer_cpu_pairs_s'), 2)} / {fmt(row.get('pgbouncer_cpu_reads_s'), 2)}"
    print(f"  CPU s (pairs / reads): service {fmt(row.get('service_cpu_pairs_s'), 2)} / {fmt(row.get('service_cpu_reads_s'), 2)}, "
          f"postgres {fmt(row.get('postgres_cpu_pairs_s'), 2)} / {fmt(row.get('postgres_cpu_reads_s'), 2)}{bouncer}, "
          f"load generator {fmt(p.get('generator_cpu_s'), 2)} / {fmt(r.get('generator_cpu_s'), 2)}; "
          f"service RSS max {fmt(row.get('service_rss_max_mb'))} MB (VmHWM {fmt(row.get('service_hwm_mb'))} MB)")
    for phase, result in (("pairs", p), ("reads", r)):
        busy, elapsed = row.get(f"machine_cpu_{phase}_s"), result.get("elapsed_s")
        if busy is None or not elapsed:
            continue
        ours = sum(row.get(k) or 0 for k in (f"service_cpu_{phase}_s", f"postgres_cpu_{phase}_s", f"pgbouncer_cpu_{phase}_s"))
        ours += result.get("generator_cpu_s") or 0
        other = busy - ours
        cores = os.cpu_count() or 1
        if other > 0.25 * elapsed:
            print(f"  NOTE ({phase}): other processes used {other:.1f} CPU s of the {cores * elapsed:.1f} the {cores} cores had "
                  f"(machine busy {busy:.1f} s): figures of a shared, busy machine")
    if b.get("tps"):
        statements = "; ".join(f"{s['ms']:.2f} ms {s['sql'][:40]}" for s in b.get("statements_ms", []))
        print(f"  pgbench (same SQL, database only): {fmt(b['tps'])} pairs/s ({b.get('processed')}/{b.get('planned')} pairs, "
              f"{b.get('failed', 0)} failed); API / pgbench = {fmt(row.get('api_over_pgbench'), 2)}"
              + (f"; API / pgbench straight to PostgreSQL ({fmt(row['pgbench_direct']['tps'])} pairs/s) = "
                 f"{fmt(row.get('api_over_pgbench_direct'), 2)}" if row.get("api_over_pgbench_direct") else ""))
        if statements:
            print(f"    per statement: {statements}")
    elif row.get("pgbench_skipped"):
        print(f"  pgbench: skipped ({row['pgbench_skipped']})")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    {
        "plan-pair": lambda: plan_pair(*args),
        "plan-reads": lambda: plan_reads(*args),
        "filler-csv": lambda: filler_csv(*args),
        "super-users": lambda: super_users(*args),
        "proc-cpu": lambda: proc_cpu(*args),
        "pg-cpu": lambda: pg_cpu(*args),
        "machine-cpu": lambda: machine_cpu(),
        "snapshot": lambda: snapshot(*args),
        "pgbench": lambda: pgbench(*args),
        "merge": lambda: merge(args),
        "summary": lambda: summary(*args),
        "show": lambda: show(*args),
    }.get(command, lambda: (_ for _ in ()).throw(SystemExit(f"unknown command {command}\n{__doc__}")))()


if __name__ == "__main__":
    main()
