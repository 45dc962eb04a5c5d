#!/usr/bin/env bash
# The long property-based run of the whole contract (issue 13; CI runs the short scripts/api-fuzz.sh): schemathesis
# with every phase — examples, coverage, fuzzing and the stateful phase (sequences of calls along the links it infers
# between operations) — once for each kind of caller: anonymous, an applicant (verified, security questions set), an
# organisation's super user, and EMA staff (administrator, service desk and data steward). Checks: no server error
# (5xx) and no response that violates the documented schema, status code or headers.
# Prints, per caller, the calls made and the failures found, and a total; exits non-zero on any failure.
#
# Usage: scripts/api-fuzz-long.sh [MAX_EXAMPLES=40] [SEED]   (a fresh seed each run unless given; it is printed)
#   SPOR_BIN: the service binary (default: the debug build, built if needed). The service runs with an embedded
#   PostgreSQL in a folder of its own under .data/.
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-40}"
seed="${2:-$(python3 -c 'import random; print(random.randrange(1, 2**31))')}"
port="${SPOR_FUZZ_PORT:-18097}"
data=".data/api-fuzz-long"
out="$data/out"

if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install -q 'schemathesis>=4.3,<5'
fi
if [ -z "${SPOR_BIN:-}" ]; then
    swift build --product spor-access >/dev/null
    SPOR_BIN="$(swift build --show-bin-path)/spor-access"
fi
bin="$SPOR_BIN"
rm -rf "$data"
mkdir -p "$out"

"$bin" serve --data-dir "$data" --port "$port" --mail-dir "$data/mail" --log-level error >"$out/service.log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 1
done
curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null

printf 'name,country,city,id\nAcme Pharma,NL,Leiden,ORG-100000001\nBeta Biotech,BE,Ghent,ORG-100000002\n' >"$data/oms.csv"
"$bin" organisations import "$data/oms.csv" --data-dir "$data" >/dev/null
for role in ema-admin ema-service-desk ema-data-steward; do
    echo 'fuzzing password 123' | "$bin" staff add --email fuzz@ema.example --name Fuzz --role "$role" --password-stdin --data-dir "$data" >/dev/null
done

# The callers' tokens: staff signs in; the applicant and the super user register, verify with the e-mailed link (the
# mail folder), answer the security questions; the super user's request goes through the service desk with a letter.
python3 - "http://127.0.0.1:$port" "$data/mail" "$out/tokens" <<'PY'
import base64, glob, http.client, json, os, sys, time, urllib.parse
base, mail, tokens = sys.argv[1:4]
url = urllib.parse.urlparse(base)
def call(method, path, body=None, token=None, wanted=(200, 201, 204)):
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token: headers["Authorization"] = "Bearer " + token
    c.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
    r = c.getresponse(); raw = r.read()
    if r.status not in wanted: raise SystemExit(f"{method} {path}: {r.status} {raw[:300]}")
    return json.loads(raw) if raw else None
def person(email):
    call("POST", "/v1/accounts", {"email": email, "displayName": email.split("@")[0], "password": "fuzzing password 123"})
    for _ in range(100):
        files = [f for f in glob.glob(os.path.join(mail, "*-verify-email.eml")) if email in open(f).read()]
        if files: break
        time.sleep(0.1)
    token = open(files[0]).read().split()[-1]
    call("POST", "/v1/accounts/verify", {"token": token})
    bearer = call("POST", "/v1/sessions", {"email": email, "password": "fuzzing password 123"})["token"]
    answers = [{"question": q, "answer": "fuzz"} for q in ("First pet?", "Birth city?", "First school?")]
    call("PUT", "/v1/me/security-questions", {"answers": answers}, bearer)
    return bearer
staff = call("POST", "/v1/sessions", {"email": "fuzz@ema.example", "password": "fuzzing password 123"})["token"]
applicant = person("applicant@fuzz.example")
su = person("super-user@fuzz.example")
req = call("POST", "/v1/access-requests", {"role": "spor-industry-super-user", "organisationId": "ORG-100000001"}, su)
letter = base64.b64encode(b"%PDF-1.4\n% SPOR User Affiliation Template Letter\n%%EOF\n").decode()
ticket = call("POST", "/v1/service-desk/tickets", {
    "subject": f"SPOR Super user role access \u2013 request ID {req['id']}",
    "signatory": {"name": "Dr. A. Director", "jobTitle": "Head of Regulatory Affairs", "email": "director@fuzz.example",
                  "organisationId": "ORG-100000001", "hasManagerialAuthority": True},
    "letter": {"fileName": "letter.pdf", "contentType": "application/pdf", "contentBase64": letter}}, su)
call("POST", f"/v1/service-desk/tickets/{ticket['id']}/approve", {}, staff)
# Something for the super user to decide, and for the applicant to track.
call("POST", "/v1/access-requests", {"role": "spor-industry-user", "organisationId": "ORG-100000001"}, applicant)
with open(tokens, "w") as f:
    f.write(f"anonymous -\napplicant {applicant}\nsuper-user {su}\nstaff {staff}\n")
PY

echo "schemathesis over the whole contract: phases examples,coverage,fuzzing,stateful; up to $examples examples per operation; seed $seed"
failed=0
total_calls=0
while read -r caller token; do
    auth=()
    [ "$token" != "-" ] && auth=(--header "Authorization: Bearer $token")
    set +e
    schemathesis run "http://127.0.0.1:$port/openapi.yaml" \
        --phases examples,coverage,fuzzing,stateful \
        --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance \
        "${auth[@]}" --max-examples "$examples" --seed "$seed" \
        --exclude-path /v1/sessions/current \
        --report junit --report-dir "$out/$caller" >"$out/$caller.txt" 2>&1
    code=$?
    set -e
    calls=$(grep -A1 "^Test cases:" "$out/$caller.txt" | grep -oE "[0-9]+ generated" | grep -oE "[0-9]+" || echo 0)
    failures=$(grep -A1 "^Test cases:" "$out/$caller.txt" | grep -oE "[0-9]+ unique failures" | grep -oE "^[0-9]+" || echo 0)
    echo "  $caller: $calls generated test cases, ${failures:-0} failures (schemathesis exit $code)"
    [ "$code" -ne 0 ] && { failed=1; tail -60 "$out/$caller.txt"; }
    total_calls=$((total_calls + calls))
done <"$out/tokens"
echo "total: $total_calls generated test cases over 4 callers; seed $seed; reports in $out"
exit $failed
