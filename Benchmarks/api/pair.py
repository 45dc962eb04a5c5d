#!/usr/bin/env python3
"""The sequential request+approve pair against a running SPOR Access service (loopback only).

Setup (untimed): an organisation, a service desk agent and an administrator (made by the caller through the CLI),
the organisation's first super user (registered, verified with the e-mailed token read by the administrator,
ticket with letter, approved by the service desk) and one signed-in applicant.
Timed: N pairs, each `POST /v1/access-requests` (industry user) by the applicant then `POST .../approve` by the
super user; between pairs, untimed, the applicant drops the role again so the next request is allowed (R7).

Usage: pair.py BASE_URL PAIRS ROUNDS [TAG] [ORGANISATION NAME]   (prints one JSON line per round)
Each invocation needs an organisation without a super user (it makes the first one through the service desk).
"""
import base64
import os
import http.client
import json
import statistics
import sys
import time
import urllib.parse

PASSWORD = "bench password 123"


class Client:
    def __init__(self, base):
        url = urllib.parse.urlparse(base)
        assert url.hostname in ("127.0.0.1", "localhost"), "loopback only"
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def call(self, method, path, body=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        payload = json.loads(raw) if raw and response.getheader("Content-Type", "").find("json") >= 0 else None
        return response.status, payload


def expect(status, payload, wanted, what):
    if status not in wanted:
        raise SystemExit(f"{what}: HTTP {status} {payload}")
    return payload


def sign_in(c, email):
    return expect(*c.call("POST", "/v1/sessions", {"email": email, "password": PASSWORD}), (201,), "sign-in " + email)["token"]


def onboard(c, email, admin):
    expect(*c.call("POST", "/v1/accounts", {"email": email, "displayName": email.split("@")[0], "password": PASSWORD}), (201,), "register")
    # The verification e-mail, from the service's mail folder (SPOR_MAIL_DIR) once the outbox worker wrote it.
    token = None
    for _ in range(100):
        page = expect(*c.call("GET", "/v1/admin/notifications?recipient=" + urllib.parse.quote(email), token=admin), (200,), "outbox")
        sent = [n for n in page["items"] if n["template"] == "verify-email" and n["status"] == "sent"]
        if sent:
            path = os.path.join(os.environ.get("SPOR_MAIL_DIR", ".data/mail"), f"{sent[0]['id']:08d}-verify-email.eml")
            with open(path, encoding="utf-8") as mail:
                token = mail.read().split()[-1]
            break
        time.sleep(0.1)
    if token is None:
        raise SystemExit(f"no verification e-mail for {email}")
    expect(*c.call("POST", "/v1/accounts/verify", {"token": token}), (200,), "verify")
    bearer = sign_in(c, email)
    answers = [{"question": q, "answer": a} for q, a in (("First pet?", "Rex"), ("Birth city?", "Leiden"), ("School?", "Regenboog"))]
    expect(*c.call("PUT", "/v1/me/security-questions", {"answers": answers}, bearer), (204,), "security questions")
    return bearer


def main():
    base, pairs, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    tag = sys.argv[4] if len(sys.argv) > 4 else "run"
    organisation = sys.argv[5] if len(sys.argv) > 5 else "Bench Pharma 1"
    c = Client(base)
    admin = sign_in(c, "admin@bench.example")
    desk = sign_in(c, "desk@bench.example")
    found = expect(*c.call("GET", "/v1/organisations?q=" + urllib.parse.quote(organisation)), (200,), "search")["items"]
    org = next(o["id"] for o in found if o["name"] == organisation)
    stamp = str(int(time.time() * 1000))
    su = onboard(c, f"su-{stamp}@bench.example", admin)
    req = expect(*c.call("POST", "/v1/access-requests", {"role": "spor-industry-super-user", "organisationId": org}, su), (201,), "su request")
    letter = base64.b64encode(b"%PDF-1.4\n% SPOR User Affiliation Template Letter\n%%EOF\n").decode()
    ticket = expect(*c.call("POST", "/v1/service-desk/tickets", {
        "subject": f"SPOR Super user role access \u2013 request ID {req['id']}",
        "signatory": {"name": "Dr. A. Director", "jobTitle": "Head of Regulatory Affairs", "email": "director@bench.example",
                      "organisationId": org, "hasManagerialAuthority": True},
        "letter": {"fileName": "letter.pdf", "contentType": "application/pdf", "contentBase64": letter}}, su), (201,), "ticket")
    expect(*c.call("POST", f"/v1/service-desk/tickets/{ticket['id']}/approve", {}, desk), (200,), "desk approval")
    applicant = onboard(c, f"applicant-{stamp}@bench.example", admin)

    def drop():
        me = expect(*c.call("GET", "/v1/me", token=applicant), (200,), "me")
        for a in me["roleAssignments"]:
            if a["role"] == "spor-industry-user":
                expect(*c.call("DELETE", f"/v1/me/role-assignments/{a['assignmentId']}", token=applicant), (204,), "drop")

    summary = []
    for r in range(rounds):
        creates, approves, pairs_ms = [], [], []
        for _ in range(pairs):
            t0 = time.perf_counter()
            filed = expect(*c.call("POST", "/v1/access-requests", {"role": "spor-industry-user", "organisationId": org}, applicant), (201,), "file")
            t1 = time.perf_counter()
            expect(*c.call("POST", f"/v1/organisations/{org}/access-requests/{filed['id']}/approve", {}, su), (200,), "approve")
            t2 = time.perf_counter()
            creates.append((t1 - t0) * 1000)
            approves.append((t2 - t1) * 1000)
            pairs_ms.append((t2 - t0) * 1000)
            drop()
        q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1]
        line = {"tag": tag, "round": r + 1, "pairs": pairs, "pair_mean_ms": round(statistics.mean(pairs_ms), 2),
                "create_p50_ms": round(statistics.median(creates), 2), "create_p95_ms": round(q(creates, 95), 2),
                "approve_p50_ms": round(statistics.median(approves), 2), "approve_p95_ms": round(q(approves, 95), 2),
                "pairs_per_s": round(1000 / statistics.mean(pairs_ms), 1)}
        print(json.dumps(line), flush=True)
        summary.append(line)


if __name__ == "__main__":
    main()
