#!/usr/bin/env python3
"""Load and checks of the fault scripts (Benchmarks/faults; standard library only, loopback only).

  faults.py load BASE_URL OUT --clients N --seconds S --orgs K [--first-applicant A] [--stop-file F]
      N clients, each on its own keep-alive connection, file an industry-user request (applicant
      bench-applicant-<n>, one fresh applicant per pair, so R7 never refuses) for organisation ORG-9000000xx and
      have its super user approve it, back to back, for S seconds or until F exists. Every call is one JSON line
      in OUT: when it was sent, how long it took, the status (or the transport error), the problem code,
      whether the response said `Connection: close`, and the request id it acknowledged.
  faults.py check OUT OWNER_URL [--since T]
      Reads OUT and the database: every acknowledged write (a 201 file, a 200 approval) must be there whole
      (the request; for an approval its active role assignment). Prints the figures as one JSON object.
  faults.py burst BASE_URL OUT --clients N --org ORG --timeout S
      N clients at once each file one request for ORG (pool exhaustion: the organisation is locked meanwhile).
  faults.py sigterm-report OUT T_TERM T_EXIT FIGURES ROUND      the SIGTERM round's figures (sigterm.sh)
  faults.py pool-report BURST OTHER AFTER T0 T1 CLIENTS POOL HOLD  the pool-exhaustion figures (pool.sh)

A call counts as unanswered when no response came within the client timeout (60 s): a hang.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

CLIENT_TIMEOUT = 60


def org_id(num):
    return f"ORG-{num:09d}"


class Client:
    def __init__(self, base, timeout=CLIENT_TIMEOUT):
        url = urllib.parse.urlparse(base)
        assert url.hostname in ("127.0.0.1", "localhost"), "loopback only"
        self.host, self.port, self.timeout = url.hostname, url.port, timeout
        self.conn = None

    def call(self, method, path, body=None, token=None):
        """One call; returns a record. A transport error closes the connection (the next call opens a new one)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = json.dumps(body).encode() if body is not None else None
        record = {"method": method, "path": path, "sent": time.time(), "reused": self.conn is not None}
        t0 = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
            record["status"] = response.status
            record["close"] = (response.getheader("Connection") or "").lower() == "close"
            record["retryAfter"] = response.getheader("Retry-After")
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = None
            record["payload"] = payload
            if isinstance(payload, dict) and "code" in payload and response.status >= 400:
                record["code"] = payload["code"]
            if record["close"]:
                self.close()
        except TimeoutError:
            record["error"] = "timeout"
            self.close()
        except (ConnectionError, http.client.HTTPException, OSError) as error:
            record["error"] = type(error).__name__
            self.close()
        record["ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return record

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def write(out, lock, record):
    payload = record.pop("payload", None)
    if isinstance(payload, dict) and record.get("status") in (200, 201) and "id" in payload:
        record["id"] = payload["id"]
    with lock:
        out.write(json.dumps(record) + "\n")
        out.flush()


def load(args):
    lock = threading.Lock()
    deadline = time.time() + args.seconds
    counter = [args.first_applicant]
    out = open(args.out, "a")

    def next_applicant():
        with lock:
            n = counter[0]
            counter[0] += 1
            return n

    def worker(index):
        c = Client(args.base)
        num = 900000001 + index % args.orgs
        org = org_id(num)
        while time.time() < deadline and not (args.stop_file and os.path.exists(args.stop_file)):
            applicant = f"bench-applicant-{next_applicant()}"
            filed = c.call("POST", "/v1/access-requests", {"role": "spor-industry-user", "organisationId": org}, applicant)
            filed["op"] = "file"
            request_id = (filed.get("payload") or {}).get("id") if filed.get("status") == 201 else None
            write(out, lock, filed)
            if request_id is None:
                if "error" in filed or filed.get("status", 0) >= 500:
                    time.sleep(0.05)  # the service or the database is away: do not spin
                continue
            approved = c.call("POST", f"/v1/organisations/{org}/access-requests/{request_id}/approve", {}, f"bench-su-{num}")
            approved["op"] = "approve"
            approved["request"] = request_id
            write(out, lock, approved)
            if "error" in approved or approved.get("status", 0) >= 500:
                time.sleep(0.05)
        c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


def burst(args):
    lock = threading.Lock()
    out = open(args.out, "a")
    gate = threading.Barrier(args.clients)

    def worker(index):
        c = Client(args.base, timeout=args.timeout)
        gate.wait()
        record = c.call("POST", "/v1/access-requests", {"role": "spor-industry-user", "organisationId": args.org},
                        f"bench-applicant-{args.first_applicant + index}")
        record["op"] = "file"
        write(out, lock, record)
        c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


def psql(url, sql):
    result = subprocess.run([os.environ.get("PSQL", "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"psql: {result.stderr.strip()}")
    return [line.split("|") for line in result.stdout.splitlines() if line]


def classify(record):
    if "error" in record:
        return "no answer (timeout)" if record["error"] == "timeout" else f"transport {record['error']}"
    status = record["status"]
    if 200 <= status < 300:
        return "2xx"
    return f"{status} {record.get('code', '')}".strip()


def check(args):
    records = [json.loads(line) for line in open(args.out) if line.strip()]
    if args.since:
        records = [r for r in records if r["sent"] >= args.since]
    filed = {r["id"] for r in records if r.get("op") == "file" and r.get("status") == 201}
    approved = {r["request"] for r in records if r.get("op") == "approve" and r.get("status") == 200}
    found_filed, found_approved = set(), set()
    if filed:
        ids = ",".join(str(i) for i in sorted(filed))
        found_filed = {int(row[0]) for row in psql(args.owner_url, f"SELECT id FROM access_requests WHERE id IN ({ids})")}
    if approved:
        ids = ",".join(str(i) for i in sorted(approved))
        rows = psql(args.owner_url, f"""
            SELECT r.id FROM access_requests r
            JOIN role_assignments a ON a.access_request_id = r.id AND a.revoked_at IS NULL
            WHERE r.id IN ({ids}) AND r.status = 'approved'""")
        found_approved = {int(row[0]) for row in rows}
    classes = {}
    for r in records:
        classes[classify(r)] = classes.get(classify(r), 0) + 1
    slowest = max((r["ms"] for r in records), default=0)
    figures = {
        "calls": len(records),
        "acknowledged": len(filed) + len(approved),
        "found": len(found_filed) + len(found_approved),
        "lost": len(filed - found_filed) + len(approved - found_approved),
        "answers": dict(sorted(classes.items())),
        "server_errors_500": sum(1 for r in records if r.get("status", 0) == 500),
        "bad_request_400": sum(1 for r in records if r.get("status", 0) == 400),
        "unanswered": sum(1 for r in records if r.get("error") == "timeout"),
        "slowest_ms": slowest,
    }
    unavailable = [r for r in records if r.get("status") == 503]
    if unavailable:
        figures["503_with_retry_after"] = sum(1 for r in unavailable if r.get("retryAfter"))
    print(json.dumps(figures))
    return figures


def sigterm_report(args):
    records = [json.loads(line) for line in open(args.out) if line.strip()]
    figures = json.loads(args.figures)
    t_term, t_exit = float(args.t_term), float(args.t_exit)
    # In flight: sent before the signal and not answered until 20 ms after `kill` ran (the signal's delivery and the
    # service's reaction take a few milliseconds; an answer in that window was written before the service knew).
    in_flight = [r for r in records if r["sent"] < t_term and r["sent"] + r["ms"] / 1000 > t_term + 0.02]
    answered = [r for r in in_flight if "status" in r]
    closing = [r for r in answered if r.get("close")]
    # A call on a kept-alive connection that the service closed without having said `Connection: close`.
    dropped = [r for r in records if r.get("reused") and r.get("error") in ("RemoteDisconnected", "ConnectionResetError",
                                                                            "BrokenPipeError", "BadStatusLine")]
    accepted_after = [r for r in records if r["sent"] > t_term + 0.2 and not r.get("reused") and "status" in r]
    line = {"scenario": "sigterm", "round": int(args.round), "calls": len(records), "in_flight_at_sigterm": len(in_flight),
            "in_flight_answered": len(answered), "answered_with_connection_close": len(closing),
            "keep_alive_calls_dropped": len(dropped), "new_connections_accepted_after": len(accepted_after),
            "lost": figures["lost"], "server_errors_500": figures["server_errors_500"],
            "exit_after_sigterm_s": round(t_exit - t_term, 2) if t_exit > 0 else None, "answers": figures["answers"]}
    line["without_close"] = [{"sent_before_sigterm_ms": round((t_term - r["sent"]) * 1000, 1), "ms": r["ms"], "status": r.get("status")}
                             for r in answered if not r.get("close")][:5]
    line["dropped"] = [{"sent_after_sigterm_ms": round((r["sent"] - t_term) * 1000, 1), "error": r.get("error")} for r in dropped][:5]
    # A dropped keep-alive call is the race every HTTP/1.1 server has at shutdown: the connection was idle when the
    # service closed it and the client's next request crossed the close (RFC 9112 §9.3.1: retry on a new connection).
    # It is reported, not failed.
    line["ok"] = (len(answered) == len(in_flight) and len(closing) == len(answered) and not accepted_after
                  and figures["lost"] == 0 and figures["server_errors_500"] == 0
                  and line["exit_after_sigterm_s"] is not None and line["exit_after_sigterm_s"] < 10)
    print(json.dumps(line))
    sys.exit(0 if line["ok"] else 1)


def pool_report(args):
    def read(path):
        return [json.loads(line) for line in open(path) if line.strip()]
    burst, other, after = read(args.burst), read(args.other), read(args.after)
    classes = {}
    for r in burst:
        classes[classify(r)] = classes.get(classify(r), 0) + 1
    refused = [r for r in burst if r.get("status") != 201]
    line = {"scenario": "pool-exhausted", "clients": int(args.clients), "pool": int(args.pool), "lock_held_s": float(args.hold),
            "answers": dict(sorted(classes.items())),
            "unanswered": sum(1 for r in burst if r.get("error") == "timeout"),
            "server_errors_500": sum(1 for r in burst if r.get("status") == 500),
            "503_with_retry_after": sum(1 for r in burst if r.get("status") == 503 and r.get("retryAfter")),
            "slowest_s": round(max(r["ms"] for r in burst) / 1000, 2),
            "median_s": round(sorted(r["ms"] for r in burst)[len(burst) // 2] / 1000, 2),
            "other_organisation_meanwhile": classify(other[0]) + f" in {other[0]['ms'] / 1000:.2f} s" if other else None,
            "after_release": classify(after[0]) if after else None}
    line["ok"] = (line["unanswered"] == 0 and line["server_errors_500"] == 0 and line["slowest_s"] < 15
                  and all(r.get("status") == 503 and r.get("retryAfter") for r in refused)
                  and bool(after) and after[0].get("status") == 201
                  # Tenant isolation: one organisation's queue takes at most its share of the pool (TenantAdmission).
                  and bool(other) and other[0].get("status") == 201 and other[0]["ms"] < 5000)
    print(json.dumps(line))
    sys.exit(0 if line["ok"] else 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("load")
    p.add_argument("base")
    p.add_argument("out")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--orgs", type=int, default=1)
    p.add_argument("--first-applicant", type=int, default=1)
    p.add_argument("--stop-file")
    p = sub.add_parser("check")
    p.add_argument("out")
    p.add_argument("owner_url")
    p.add_argument("--since", type=float)
    p = sub.add_parser("burst")
    p.add_argument("base")
    p.add_argument("out")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--org", required=True)
    p.add_argument("--first-applicant", type=int, default=1)
    p.add_argument("--timeout", type=float, default=CLIENT_TIMEOUT)
    p = sub.add_parser("sigterm-report")
    for name in ("out", "t_term", "t_exit", "figures", "round"):
        p.add_argument(name)
    p = sub.add_parser("pool-report")
    for name in ("burst", "other", "after", "t0", "t1", "clients", "pool", "hold"):
        p.add_argument(name)
    args = parser.parse_args()
    {"load": load, "check": check, "burst": burst, "sigterm-report": sigterm_report, "pool-report": pool_report}[args.command](args)


if __name__ == "__main__":
    main()
