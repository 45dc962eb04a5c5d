-- Benchmark data set for the reporting views (run by run.sh as spor_owner on a freshly migrated database).
--
-- 5,000 organisations, 100,000 accounts (40 of them service desk staff), 300,000 access requests filed over the
-- last 18 months, a role assignment for every approved request (about 10% later revoked), a service desk ticket
-- for every first-super-user request (about 20,000) and 2,000 OMS change requests.
--
-- Everything is deterministic: pseudo-random numbers come from hashtext() of a label and the row number, so two
-- runs produce the same rows (times are relative to now(), so that the "pending" and "age" columns mean something).
-- The rule triggers are switched off while loading (ALTER TABLE ... DISABLE TRIGGER USER): this is bulk data, not
-- traffic, and the audit/outbox triggers would otherwise demand an event per row. Plain CHECK, UNIQUE and foreign
-- key constraints still apply, so every row is one the schema accepts.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- A uniform number in [0, 1) from a label.
CREATE FUNCTION pg_temp.u(label text) RETURNS float8
    LANGUAGE sql IMMUTABLE RETURN (hashtext(label)::bigint + 2147483648) / 4294967296.0;

BEGIN;
ALTER TABLE organisations DISABLE TRIGGER USER;
ALTER TABLE accounts DISABLE TRIGGER USER;
ALTER TABLE staff_roles DISABLE TRIGGER USER;
ALTER TABLE documents DISABLE TRIGGER USER;
ALTER TABLE access_requests DISABLE TRIGGER USER;
ALTER TABLE role_assignments DISABLE TRIGGER USER;
ALTER TABLE service_desk_tickets DISABLE TRIGGER USER;
ALTER TABLE oms_change_requests DISABLE TRIGGER USER;

-- Organisations ORG-100000001 … ORG-100005000; every 50th is inactive.
INSERT INTO organisations (id, name, country, city, address, status, created_at)
SELECT 'ORG-' || (100000000 + n), 'Organisation ' || n,
       (ARRAY['NL','BE','DE','FR','IT','ES','PT','AT','DK','SE','FI','IE','PL','CZ','HU','RO','GR','LU','SI','SK'])[1 + n % 20],
       'City ' || (n % 300), n || ' Main Street', CASE WHEN n % 50 = 0 THEN 'inactive' ELSE 'active' END,
       now() - interval '3 years'
FROM generate_series(1, 5000) n;
SELECT setval('organisation_number_seq', 100005000);

-- Accounts 1…100,000 (ids md5('acct' || n)); 1…40 are service desk staff. 97% active, 2% pending, 1% disabled.
INSERT INTO accounts (id, email, display_name, status, security_questions_waived, created_at, verified_at)
SELECT md5('acct' || n)::uuid, 'user' || n || '@company' || (n % 977) || '.example', 'User ' || n,
       CASE WHEN n <= 40 OR pg_temp.u('st' || n) < 0.97 THEN 'active'
            WHEN pg_temp.u('st' || n) < 0.99 THEN 'pending' ELSE 'disabled' END,
       n <= 40, now() - interval '600 days' * pg_temp.u('ac' || n), now() - interval '590 days' * pg_temp.u('ac' || n)
FROM generate_series(1, 100000) n;
INSERT INTO staff_roles (account_id, role) SELECT md5('acct' || n)::uuid, 'ema-service-desk' FROM generate_series(1, 40) n;

-- One affiliation letter that every ticket points at.
INSERT INTO documents (id, owner_id, file_name, content_type, bytes, sha256, size)
SELECT md5('letter')::uuid, md5('acct41')::uuid, 'affiliation.pdf', 'application/pdf', b, sha256(b), octet_length(b)
FROM (SELECT convert_to(E'%PDF-1.4\n% SPOR User Affiliation Template Letter\n%%EOF\n', 'UTF8') AS b) d;

-- 300,000 access requests, filed uniformly over the last 548 days. Organisations are skewed (a few large ones,
-- a long tail: n = 1 + 5000·u²). Roles: 8% unaffiliated, 17% super user (45% of those first super users,
-- routed to the service desk), 75% industry user. Requests younger than 30 days are 60% pending; older ones
-- ended 72% approved, 12% rejected, 8% cancelled, 8% expired. Every 10th organisation never got a super user.
-- Decisions for an organisation are taken by one of three accounts of its own (its super users, in effect).
INSERT INTO access_requests (id, organisation_id, requester_id, role, status, approver_kind, created_at, expires_at,
                             decided_by, decided_at, decision_reason)
SELECT id, organisation_id, requester_id, role, status, approver_kind, created_at,
       CASE WHEN role <> 'spor-unaffiliated-user' THEN created_at + interval '30 days' END,
       CASE WHEN status IN ('approved', 'rejected') AND role <> 'spor-unaffiliated-user' THEN
                CASE WHEN approver_kind = 'ema-service-desk' THEN md5('acct' || (1 + floor(ud * 40)::int))::uuid
                     ELSE md5('acct' || (41 + (org * 13 + floor(pg_temp.u('a' || id) * 3)::int) % 99960))::uuid END
            WHEN status = 'cancelled' THEN requester_id END,
       CASE WHEN status = 'pending' THEN NULL
            WHEN role = 'spor-unaffiliated-user' THEN created_at
            WHEN status = 'expired' THEN created_at + interval '30 days'
            WHEN status = 'cancelled' THEN least(now(), created_at + interval '72 hours' * ud)
            ELSE least(now(), created_at + interval '240 hours' * ud * ud) END,
       CASE WHEN status = 'rejected' THEN 'Not affiliated with the organisation.' END
FROM (
    SELECT id, role, org, organisation_id, requester_id, created_at, ud,
           CASE WHEN role = 'spor-unaffiliated-user' THEN 'automatic'
                WHEN role = 'spor-industry-super-user' AND pg_temp.u('k' || id) < 0.45 THEN 'ema-service-desk'
                ELSE 'organisation-super-users' END AS approver_kind,
           CASE WHEN role = 'spor-unaffiliated-user' THEN 'approved'
                WHEN role = 'spor-industry-super-user' AND org % 10 = 0 AND s >= 0.6 AND age < 30 THEN 'rejected'
                WHEN role = 'spor-industry-super-user' AND org % 10 = 0 AND s < 0.72 AND age >= 30 THEN 'rejected'
                WHEN age < 30 AND s < 0.6 THEN 'pending'
                WHEN age < 30 THEN CASE WHEN s < 0.9 THEN 'approved' ELSE 'rejected' END
                WHEN s < 0.72 THEN 'approved' WHEN s < 0.84 THEN 'rejected' WHEN s < 0.92 THEN 'cancelled'
                ELSE 'expired' END AS status
    FROM (
        SELECT 10000 + i AS id, role, org,
               CASE WHEN role <> 'spor-unaffiliated-user' THEN 'ORG-' || (100000000 + org) END AS organisation_id,
               md5('acct' || (41 + floor(pg_temp.u('q' || i) * 99960)::int))::uuid AS requester_id,
               now() - interval '548 days' * t AS created_at, 548 * t AS age, s, ud
        FROM (
            SELECT i,
                   CASE WHEN pg_temp.u('r' || i) < 0.08 THEN 'spor-unaffiliated-user'
                        WHEN pg_temp.u('r' || i) < 0.25 THEN 'spor-industry-super-user'
                        ELSE 'spor-industry-user' END AS role,
                   1 + floor(5000 * pg_temp.u('o' || i) ^ 2)::int AS org,
                   pg_temp.u('t' || i) AS t, pg_temp.u('s' || i) AS s, pg_temp.u('d' || i) AS ud
            FROM generate_series(1, 300000) i) base) shaped) final
ON CONFLICT DO NOTHING;  -- R7: the rare second pending request of a (requester, role, organisation) is dropped
SELECT setval('access_request_id_seq', (SELECT max(id) FROM access_requests));

-- A role assignment for every approved request (newest first wins R7's "held once at a time"); about 10% revoked.
INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, granted_by, first_super_user,
                              granted_at, effective_from, revoked_at, revoked_by, revoke_reason)
SELECT organisation_id, requester_id, role, 'access-request', id, decided_by, false, decided_at, decided_at,
       CASE WHEN pg_temp.u('v' || id) < 0.1 THEN decided_at + interval '30 days' END,
       CASE WHEN pg_temp.u('v' || id) < 0.1 THEN requester_id END,
       CASE WHEN pg_temp.u('v' || id) < 0.1 THEN 'Left the organisation.' END
FROM access_requests WHERE status = 'approved'
ORDER BY decided_at DESC
ON CONFLICT DO NOTHING;

-- A service desk ticket for every first-super-user request, opened an hour after it; resolved within 0–48 h
-- (skewed: about 29% late); open while the request is pending.
INSERT INTO service_desk_tickets (id, organisation_id, access_request_id, requester_id, subject, signatory_name,
                                  signatory_job_title, signatory_email, signatory_organisation_id,
                                  signatory_has_managerial_authority, letter_document_id, status, opened_at, due_at,
                                  resolution, resolved_by, resolved_at)
SELECT 500000 + row_number() OVER (ORDER BY r.id), r.organisation_id, r.id, r.requester_id,
       'SPOR super user role access – request ID ' || r.id, 'Dr. A. Director', 'Head of Regulatory Affairs',
       'director@example.com', r.organisation_id, true, md5('letter')::uuid,
       CASE WHEN r.status = 'pending' THEN 'open' ELSE 'resolved' END,
       r.created_at + interval '1 hour', r.created_at + interval '25 hours',
       CASE WHEN r.status = 'pending' THEN NULL WHEN r.status = 'approved' THEN 'approved' ELSE 'rejected' END,
       CASE WHEN r.status <> 'pending' THEN md5('acct' || (1 + r.id % 40))::uuid END,
       CASE WHEN r.status <> 'pending' THEN r.created_at + interval '1 hour' + interval '48 hours' * pg_temp.u('x' || r.id) ^ 2 END
FROM access_requests r
WHERE r.approver_kind = 'ema-service-desk';
SELECT setval('service_desk_ticket_id_seq', (SELECT max(id) FROM service_desk_tickets));

-- 2,000 OMS change requests: 60% approved (pointing at an organisation), 25% rejected, 15% pending.
INSERT INTO oms_change_requests (requester_id, name, country, city, justification, status, created_at, decided_by,
                                 decided_at, decision_reason, organisation_id)
SELECT md5('acct' || (41 + n * 37 % 99960))::uuid, 'Candidate ' || n, 'NL', 'Leiden', 'Not in OMS yet', status, created_at,
       CASE WHEN status <> 'pending' THEN md5('acct1')::uuid END,
       CASE WHEN status <> 'pending' THEN least(now(), created_at + interval '100 hours' * pg_temp.u('od' || n)) END,
       CASE WHEN status = 'rejected' THEN 'Not a legal entity.' END,
       CASE WHEN status = 'approved' THEN 'ORG-' || (100000000 + 1 + n % 5000) END
FROM (SELECT n, now() - interval '548 days' * pg_temp.u('oc' || n) AS created_at,
             CASE WHEN pg_temp.u('os' || n) < 0.6 THEN 'approved' WHEN pg_temp.u('os' || n) < 0.85 THEN 'rejected'
                  ELSE 'pending' END AS status
      FROM generate_series(1, 2000) n) c;

ALTER TABLE organisations ENABLE TRIGGER USER;
ALTER TABLE accounts ENABLE TRIGGER USER;
ALTER TABLE staff_roles ENABLE TRIGGER USER;
ALTER TABLE documents ENABLE TRIGGER USER;
ALTER TABLE access_requests ENABLE TRIGGER USER;
ALTER TABLE role_assignments ENABLE TRIGGER USER;
ALTER TABLE service_desk_tickets ENABLE TRIGGER USER;
ALTER TABLE oms_change_requests ENABLE TRIGGER USER;
COMMIT;

-- Statistics and the visibility map (index-only scans need it), as autovacuum would have them on a live system.
VACUUM (ANALYZE) organisations, accounts, access_requests, role_assignments, service_desk_tickets, oms_change_requests;

SELECT 'organisations' AS "table", count(*) AS "rows" FROM organisations
UNION ALL SELECT 'accounts', count(*) FROM accounts
UNION ALL SELECT 'access_requests', count(*) FROM access_requests
UNION ALL SELECT 'role_assignments', count(*) FROM role_assignments
UNION ALL SELECT 'service_desk_tickets', count(*) FROM service_desk_tickets
UNION ALL SELECT 'oms_change_requests', count(*) FROM oms_change_requests;
