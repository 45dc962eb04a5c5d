-- Mints active accounts with a live session each, as the owner (set-up of Benchmarks/api/load.sh, never timed):
-- account n of the range has the bearer token :'prefix' || n, so the load generator and pgbench know every token
-- without asking. psql -v prefix=bench-applicant- -v from=1 -v to=1000 -f load_mint.sql
--
-- What an account and its session are made of (see Sources/AccessTestSupport/Fixture.swift, `session(of:)`, and
-- StaffAdministration.addStaff): an active, verified account; three security answers (R3, bcrypt like the real
-- ones: one hash of cost 4 shared by all, made once here); a session whose token_hash is SHA-256 of the token
-- text; and one audit event about the account in the same transaction, which covers all three rows (R15 checks,
-- at commit, an event with subject ('account', id) of this transaction for each changed row).
\set ON_ERROR_STOP on
SELECT crypt('bench answer', gen_salt('bf', 4)) AS answer_hash \gset
BEGIN;
CREATE TEMP TABLE bench_new ON COMMIT DROP AS
    SELECT n, :'prefix' || n AS token, md5(:'prefix' || n)::uuid AS id
    FROM generate_series(:from::bigint, :to::bigint) AS n;
INSERT INTO accounts (id, email, display_name, status, security_questions_waived, verified_at)
    SELECT id, token || '@bench.example', 'Bench ' || token, 'active', false, now() FROM bench_new;
INSERT INTO security_answers (account_id, question, answer_hash)
    SELECT id, question, :'answer_hash'
    FROM bench_new CROSS JOIN unnest(ARRAY['First pet?', 'Birth city?', 'First school?']) AS question;
INSERT INTO sessions (token_hash, account_id, expires_at)
    SELECT sha256(convert_to(token, 'UTF8')), id, now() + interval '2 days' FROM bench_new;
INSERT INTO audit_events (action, subject_type, subject_id, after)
    SELECT 'account.created-by-administrator', 'account', id::text,
           jsonb_build_object('email', token || '@bench.example', 'status', 'active')
    FROM bench_new;
COMMIT;
