-- 0002 — the data model: the OMS dictionary, accounts, roles, access requests, tickets, documents,
-- OMS change requests, audit trail, notification outbox, idempotency keys.
--
-- Rows that belong to one organisation carry organisation_id and their indexes lead with it, so the schema
-- can later be distributed by tenant. The rules (R4–R18) are added by 0003–0005; this file holds shapes
-- and the constraints that are plain column checks.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- unaccent() is STABLE (it reads a dictionary); an index needs an IMMUTABLE wrapper with the dictionary named.
CREATE FUNCTION spor_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));
COMMENT ON FUNCTION spor_fold(text) IS 'Case- and accent-folded text for organisation name search (trigram index).';

-- Settings of the running system (one row).
CREATE TABLE settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    unaffiliated_activation_delay interval NOT NULL DEFAULT interval '0' CHECK (unaffiliated_activation_delay >= interval '0'),
    request_lifetime interval NOT NULL DEFAULT interval '30 days' CHECK (request_lifetime > interval '0')
);
INSERT INTO settings DEFAULT VALUES;
COMMENT ON TABLE settings IS 'System settings (one row): R5 activation delay of the unaffiliated role, R18 lifetime of pending requests.';

-- R1: the OMS dictionary.
CREATE SEQUENCE organisation_number_seq START 100000001 MINVALUE 1 MAXVALUE 999999999;
CREATE TABLE organisations (
    id text PRIMARY KEY DEFAULT ('ORG-' || lpad(nextval('organisation_number_seq')::text, 9, '0'))
        CONSTRAINT r1_organisation_id_format CHECK (id ~ '^ORG-[0-9]{9}$'),
    name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 300),
    country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    city text NOT NULL CHECK (length(btrim(city)) BETWEEN 1 AND 200),
    address text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organisations_name_search ON organisations USING gin (spor_fold(name) gin_trgm_ops);
CREATE INDEX organisations_country ON organisations (country, id);
COMMENT ON TABLE organisations IS 'R1: the OMS dictionary of organisations. Ids are ORG- and nine digits from organisation_number_seq.';

-- R2: accounts, one per e-mail address (case-insensitive).
CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    email text NOT NULL CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' AND length(email) <= 254),
    display_name text NOT NULL CHECK (length(btrim(display_name)) BETWEEN 1 AND 200),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'disabled')),
    -- R3: staff created by the administrator command are exempt from security questions.
    security_questions_waived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    verified_at timestamptz
);
CREATE UNIQUE INDEX r2_accounts_email_unique ON accounts (lower(email));
COMMENT ON TABLE accounts IS 'R2: one account per e-mail (case-insensitive); pending until the e-mailed token is verified.';

CREATE TABLE credentials (
    account_id uuid PRIMARY KEY REFERENCES accounts (id),
    password_hash text NOT NULL CHECK (password_hash ~ '^\$2[aby]\$[0-9]{2}\$'),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE credentials IS 'bcrypt password hashes. Not readable by the application role except through spor_login_candidate().';

CREATE TABLE verification_tokens (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    account_id uuid NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX verification_tokens_account ON verification_tokens (account_id);
COMMENT ON TABLE verification_tokens IS 'R2: e-mail verification tokens, stored as SHA-256 only.';

CREATE TABLE security_answers (
    account_id uuid NOT NULL REFERENCES accounts (id),
    question text NOT NULL CHECK (length(btrim(question)) BETWEEN 1 AND 300),
    answer_hash text NOT NULL CHECK (answer_hash ~ '^\$2[aby]\$[0-9]{2}\$'),
    set_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, question)
);
COMMENT ON TABLE security_answers IS 'R3: answers to security questions, bcrypt-hashed.';

CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    account_id uuid NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_account ON sessions (account_id);
COMMENT ON TABLE sessions IS 'Bearer sessions; tokens are random and stored only as SHA-256.';

-- R4: staff roles, granted by the administrator command only.
CREATE TABLE staff_roles (
    account_id uuid NOT NULL REFERENCES accounts (id),
    role text NOT NULL CONSTRAINT r4_staff_role_names CHECK (role IN ('ema-service-desk', 'ema-data-steward', 'ema-admin')),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, role)
);
COMMENT ON TABLE staff_roles IS 'R4: EMA staff roles (service desk, data steward, admin). Never granted through access requests.';

-- Access requests (R4–R12, R18). Ids are the "Access Request ID" users quote: numeric, from 10000.
CREATE SEQUENCE access_request_id_seq START 10000 MINVALUE 10000;
CREATE TABLE access_requests (
    id bigint PRIMARY KEY DEFAULT nextval('access_request_id_seq'),
    organisation_id text REFERENCES organisations (id),
    requester_id uuid NOT NULL REFERENCES accounts (id),
    role text NOT NULL CONSTRAINT r4_requestable_roles
        CHECK (role IN ('spor-unaffiliated-user', 'spor-industry-user', 'spor-industry-super-user')),
    justification text CHECK (length(justification) <= 2000),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired')),
    approver_kind text NOT NULL CHECK (approver_kind IN ('automatic', 'ema-service-desk', 'organisation-super-users')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    decided_by uuid REFERENCES accounts (id),
    decided_at timestamptz,
    decision_reason text CHECK (length(decision_reason) <= 2000),
    CONSTRAINT r4_organisation_matches_role CHECK ((role = 'spor-unaffiliated-user') = (organisation_id IS NULL)),
    CONSTRAINT r5_unaffiliated_is_automatic CHECK ((role = 'spor-unaffiliated-user') = (approver_kind = 'automatic')),
    CONSTRAINT r18_decided_has_time CHECK ((status = 'pending') = (decided_at IS NULL)),
    CONSTRAINT r18_pending_expires CHECK (status <> 'pending' OR expires_at IS NOT NULL)
);
-- R7: at most one pending request per (user, role, organisation).
CREATE UNIQUE INDEX r7_one_pending_request ON access_requests (requester_id, role, coalesce(organisation_id, ''))
    WHERE status = 'pending';
CREATE INDEX access_requests_organisation ON access_requests (organisation_id, status, created_at);
CREATE INDEX access_requests_requester ON access_requests (requester_id, created_at DESC);
CREATE INDEX access_requests_pending_expiry ON access_requests (expires_at) WHERE status = 'pending';
COMMENT ON TABLE access_requests IS 'Requests for SPOR roles; pending → approved | rejected | cancelled | expired (R18). approver_kind records the routing (R8).';

-- Role assignments: who holds which SPOR role in which organisation, and why.
CREATE TABLE role_assignments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id text REFERENCES organisations (id),
    account_id uuid NOT NULL REFERENCES accounts (id),
    role text NOT NULL CONSTRAINT r4_assignable_roles
        CHECK (role IN ('spor-unaffiliated-user', 'spor-industry-user', 'spor-industry-super-user')),
    source text NOT NULL CHECK (source IN ('access-request', 'staff-grant')),
    access_request_id bigint UNIQUE REFERENCES access_requests (id),
    granted_by uuid REFERENCES accounts (id),
    first_super_user boolean NOT NULL DEFAULT false,
    granted_at timestamptz NOT NULL DEFAULT now(),
    effective_from timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_by uuid REFERENCES accounts (id),
    revoke_reason text CHECK (length(revoke_reason) <= 2000),
    CONSTRAINT r4_organisation_matches_role CHECK ((role = 'spor-unaffiliated-user') = (organisation_id IS NULL)),
    CONSTRAINT source_is_recorded CHECK ((source = 'access-request') = (access_request_id IS NOT NULL)),
    CONSTRAINT first_super_user_role CHECK (NOT first_super_user OR role = 'spor-industry-super-user'),
    CONSTRAINT revocation_is_complete CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
-- A role is held at most once at a time per (account, role, organisation).
CREATE UNIQUE INDEX r7_one_active_assignment ON role_assignments (account_id, role, coalesce(organisation_id, ''))
    WHERE revoked_at IS NULL;
-- R11: an organisation never has two active first super users.
CREATE UNIQUE INDEX r11_one_first_super_user ON role_assignments (organisation_id)
    WHERE first_super_user AND revoked_at IS NULL;
CREATE INDEX role_assignments_organisation ON role_assignments (organisation_id, role) WHERE revoked_at IS NULL;
CREATE INDEX role_assignments_account ON role_assignments (account_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE role_assignments IS 'SPOR roles held, each from an approved access request or a staff grant; revoked rows are kept.';

-- Documents: the affiliation letter and OMS supporting documents. R10: PDF, PNG or JPEG by content, at most 10 MB.
CREATE TABLE documents (
    id uuid PRIMARY KEY,
    organisation_id text REFERENCES organisations (id),
    owner_id uuid NOT NULL REFERENCES accounts (id),
    file_name text NOT NULL CHECK (length(btrim(file_name)) BETWEEN 1 AND 255),
    content_type text NOT NULL CHECK (content_type IN ('application/pdf', 'image/png', 'image/jpeg')),
    bytes bytea NOT NULL,
    sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32),
    size integer NOT NULL CHECK (size BETWEEN 1 AND 10485760),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT r10_size_matches CHECK (size = octet_length(bytes)),
    CONSTRAINT r10_sha256_matches CHECK (sha256 = sha256(bytes)),
    CONSTRAINT r10_content_matches_type CHECK (
        (content_type = 'application/pdf' AND substring(bytes FROM 1 FOR 5) = '\x255044462d'::bytea)
        OR (content_type = 'image/png' AND substring(bytes FROM 1 FOR 8) = '\x89504e470d0a1a0a'::bytea)
        OR (content_type = 'image/jpeg' AND substring(bytes FROM 1 FOR 3) = '\xffd8ff'::bytea))
);
CREATE INDEX documents_owner ON documents (owner_id);
COMMENT ON TABLE documents IS 'Uploaded documents (affiliation letters, OMS evidence): bytes, type checked against the magic bytes, SHA-256, size.';

-- R10: EMA service desk tickets for first-super-user requests; due 24 hours after opening.
CREATE SEQUENCE service_desk_ticket_id_seq START 500000;
CREATE TABLE service_desk_tickets (
    id bigint PRIMARY KEY DEFAULT nextval('service_desk_ticket_id_seq'),
    organisation_id text NOT NULL REFERENCES organisations (id),
    access_request_id bigint NOT NULL REFERENCES access_requests (id),
    requester_id uuid NOT NULL REFERENCES accounts (id),
    subject text NOT NULL CHECK (length(subject) <= 500),
    description text CHECK (length(description) <= 5000),
    signatory_name text NOT NULL CHECK (length(btrim(signatory_name)) BETWEEN 1 AND 200),
    signatory_job_title text NOT NULL CHECK (length(btrim(signatory_job_title)) BETWEEN 1 AND 200),
    signatory_email text NOT NULL CHECK (signatory_email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    signatory_organisation_id text NOT NULL REFERENCES organisations (id),
    signatory_has_managerial_authority boolean NOT NULL,
    letter_document_id uuid NOT NULL REFERENCES documents (id),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    opened_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL,
    resolution text CHECK (resolution IN ('approved', 'rejected')),
    resolution_comment text CHECK (length(resolution_comment) <= 2000),
    resolved_by uuid REFERENCES accounts (id),
    resolved_at timestamptz,
    CONSTRAINT r10_due_in_24_hours CHECK (due_at = opened_at + interval '24 hours'),
    CONSTRAINT r10_subject_names_the_process CHECK (subject ILIKE '%SPOR super user role access%'),
    CONSTRAINT r10_subject_quotes_the_request CHECK (strpos(subject, access_request_id::text) > 0),
    CONSTRAINT r10_signatory_of_the_organisation CHECK (signatory_organisation_id = organisation_id),
    CONSTRAINT r10_signatory_has_authority CHECK (signatory_has_managerial_authority),
    CONSTRAINT resolution_is_complete CHECK (
        (status = 'open') = (resolution IS NULL AND resolved_by IS NULL AND resolved_at IS NULL))
);
CREATE INDEX service_desk_tickets_organisation ON service_desk_tickets (organisation_id, opened_at);
CREATE INDEX service_desk_tickets_request ON service_desk_tickets (access_request_id);
CREATE INDEX service_desk_tickets_open ON service_desk_tickets (due_at) WHERE status = 'open';
COMMENT ON TABLE service_desk_tickets IS 'R10: service requests to the EMA service desk asking for the first super user of an organisation.';

-- R17: OMS change requests (add an organisation).
CREATE TABLE oms_change_requests (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 700000) PRIMARY KEY,
    requester_id uuid NOT NULL REFERENCES accounts (id),
    name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 300),
    country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    city text NOT NULL CHECK (length(btrim(city)) BETWEEN 1 AND 200),
    address text CHECK (length(address) <= 500),
    justification text CHECK (length(justification) <= 2000),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_by uuid REFERENCES accounts (id),
    decided_at timestamptz,
    decision_reason text CHECK (length(decision_reason) <= 2000),
    organisation_id text REFERENCES organisations (id),
    CONSTRAINT r17_approval_creates_organisation CHECK ((status = 'approved') = (organisation_id IS NOT NULL)),
    CONSTRAINT r17_rejection_has_reason CHECK (status <> 'rejected' OR length(btrim(decision_reason)) > 0),
    CONSTRAINT r17_decided_has_time CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX oms_change_requests_requester ON oms_change_requests (requester_id, created_at DESC);
CREATE INDEX oms_change_requests_status ON oms_change_requests (status, created_at);
CREATE TABLE oms_change_request_documents (
    change_request_id bigint NOT NULL REFERENCES oms_change_requests (id),
    document_id uuid NOT NULL REFERENCES documents (id),
    PRIMARY KEY (change_request_id, document_id)
);
COMMENT ON TABLE oms_change_requests IS 'R17: requests to add an organisation to OMS, decided by a data steward.';

-- R15: the audit trail, append-only.
CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id text,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_id uuid,
    action text NOT NULL CHECK (action ~ '^[a-z][a-z-]*(\.[a-z-]+)+$'),
    subject_type text NOT NULL,
    subject_id text NOT NULL,
    before jsonb,
    after jsonb,
    transaction_id bigint NOT NULL DEFAULT txid_current()
);
CREATE INDEX audit_events_organisation ON audit_events (organisation_id, occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor_id, occurred_at);
CREATE INDEX audit_events_subject ON audit_events (subject_type, subject_id, transaction_id);
COMMENT ON TABLE audit_events IS 'R15: one event per change, written in the same transaction; never updated or deleted.';

-- R16: notifications, written in the same transaction as the change, delivered at least once.
CREATE TABLE notification_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id text,
    recipient_account_id uuid REFERENCES accounts (id),
    recipient_email text NOT NULL,
    template text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    subject_type text NOT NULL,
    subject_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    transaction_id bigint NOT NULL DEFAULT txid_current(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    delivered_at timestamptz
);
CREATE INDEX notification_outbox_undelivered ON notification_outbox (id) WHERE delivered_at IS NULL;
CREATE INDEX notification_outbox_recipient ON notification_outbox (recipient_email, id DESC);
CREATE INDEX notification_outbox_subject ON notification_outbox (subject_type, subject_id, transaction_id);
COMMENT ON TABLE notification_outbox IS 'R16: notifications to send (e-mail), written with the change that causes them.';

-- Idempotency-Key replay store for mutating POSTs.
CREATE TABLE idempotency_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id uuid,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash bytea NOT NULL,
    status_code integer,
    response_body bytea,
    response_content_type text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idempotency_keys_key ON idempotency_keys (coalesce(account_id::text, ''), key);
COMMENT ON TABLE idempotency_keys IS 'First responses of mutating POSTs, by Idempotency-Key, replayed for 24 hours.';
