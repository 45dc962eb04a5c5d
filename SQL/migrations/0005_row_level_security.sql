-- 0005 — R13 tenant isolation by row-level security, and the application role's privileges.
--
-- Policies apply to spor_app (the owner owns the tables and is exempt). They key on the per-transaction
-- acting account (spor_actor()): with none set, tenant tables show nothing. A super user sees the rows of
-- the organisations where they hold an active super-user role; staff see everything.
-- Uncorrelated sub-selects ((SELECT f())) are evaluated once per statement, not once per row.

-- The OMS dictionary is public (R1); only data stewards add to it (R17).
ALTER TABLE organisations ENABLE ROW LEVEL SECURITY;
CREATE POLICY r1_organisations_public ON organisations FOR SELECT TO spor_app USING (true);
CREATE POLICY r17_organisations_by_data_steward ON organisations FOR INSERT TO spor_app
    WITH CHECK ((SELECT spor_has_staff_role(spor_actor(), 'ema-data-steward')));
CREATE POLICY r17_organisations_update_by_data_steward ON organisations FOR UPDATE TO spor_app
    USING ((SELECT spor_has_staff_role(spor_actor(), 'ema-data-steward')));

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_accounts_read ON accounts FOR SELECT TO spor_app USING (
    id = (SELECT spor_actor())
    OR (SELECT spor_actor_is_staff())
    OR id IN (SELECT account_id FROM role_assignments
              WHERE organisation_id IN (SELECT spor_actor_super_user_organisations()))
    OR id IN (SELECT requester_id FROM access_requests
              WHERE organisation_id IN (SELECT spor_actor_super_user_organisations())));
-- Self-registration: the new account acts as itself.
CREATE POLICY r13_accounts_insert ON accounts FOR INSERT TO spor_app WITH CHECK (id = (SELECT spor_actor()));
CREATE POLICY r13_accounts_update ON accounts FOR UPDATE TO spor_app USING (id = (SELECT spor_actor()));

ALTER TABLE credentials ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_credentials_own ON credentials TO spor_app
    USING (account_id = (SELECT spor_actor())) WITH CHECK (account_id = (SELECT spor_actor()));
ALTER TABLE verification_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_verification_tokens_own ON verification_tokens TO spor_app
    USING (account_id = (SELECT spor_actor())) WITH CHECK (account_id = (SELECT spor_actor()));
ALTER TABLE security_answers ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_security_answers_own ON security_answers TO spor_app
    USING (account_id = (SELECT spor_actor())) WITH CHECK (account_id = (SELECT spor_actor()));
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_sessions_own ON sessions TO spor_app
    USING (account_id = (SELECT spor_actor())) WITH CHECK (account_id = (SELECT spor_actor()));

ALTER TABLE staff_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_staff_roles_read ON staff_roles FOR SELECT TO spor_app
    USING (account_id = (SELECT spor_actor()) OR (SELECT spor_actor_is_staff()));
CREATE POLICY r4_staff_roles_by_admin ON staff_roles FOR INSERT TO spor_app
    WITH CHECK ((SELECT spor_has_staff_role(spor_actor(), 'ema-admin')));

ALTER TABLE access_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_access_requests_read ON access_requests FOR SELECT TO spor_app USING (
    requester_id = (SELECT spor_actor())
    OR (SELECT spor_actor_is_staff())
    OR organisation_id IN (SELECT spor_actor_super_user_organisations()));
CREATE POLICY r13_access_requests_insert ON access_requests FOR INSERT TO spor_app
    WITH CHECK (requester_id = (SELECT spor_actor()));
CREATE POLICY r13_access_requests_update ON access_requests FOR UPDATE TO spor_app USING (
    requester_id = (SELECT spor_actor())
    OR (SELECT spor_actor_is_staff())
    OR organisation_id IN (SELECT spor_actor_super_user_organisations()));

ALTER TABLE role_assignments ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_role_assignments_read ON role_assignments FOR SELECT TO spor_app USING (
    account_id = (SELECT spor_actor())
    OR (SELECT spor_actor_is_staff())
    OR organisation_id IN (SELECT spor_actor_super_user_organisations()));
CREATE POLICY r13_role_assignments_insert ON role_assignments FOR INSERT TO spor_app WITH CHECK (
    account_id = (SELECT spor_actor())
    OR (SELECT spor_actor_is_staff())
    OR organisation_id IN (SELECT spor_actor_super_user_organisations()));
CREATE POLICY r13_role_assignments_update ON role_assignments FOR UPDATE TO spor_app USING (
    account_id = (SELECT spor_actor())
    OR (SELECT spor_actor_is_staff())
    OR organisation_id IN (SELECT spor_actor_super_user_organisations()));

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_documents_read ON documents FOR SELECT TO spor_app
    USING (owner_id = (SELECT spor_actor()) OR (SELECT spor_actor_is_staff()));
CREATE POLICY r13_documents_insert ON documents FOR INSERT TO spor_app WITH CHECK (owner_id = (SELECT spor_actor()));

ALTER TABLE service_desk_tickets ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_tickets_read ON service_desk_tickets FOR SELECT TO spor_app
    USING (requester_id = (SELECT spor_actor()) OR (SELECT spor_actor_is_staff()));
CREATE POLICY r13_tickets_insert ON service_desk_tickets FOR INSERT TO spor_app
    WITH CHECK (requester_id = (SELECT spor_actor()));
CREATE POLICY r13_tickets_update ON service_desk_tickets FOR UPDATE TO spor_app
    USING ((SELECT spor_has_staff_role(spor_actor(), 'ema-service-desk')));

ALTER TABLE oms_change_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_oms_change_requests_read ON oms_change_requests FOR SELECT TO spor_app
    USING (requester_id = (SELECT spor_actor()) OR (SELECT spor_actor_is_staff()));
CREATE POLICY r13_oms_change_requests_insert ON oms_change_requests FOR INSERT TO spor_app
    WITH CHECK (requester_id = (SELECT spor_actor()));
CREATE POLICY r13_oms_change_requests_update ON oms_change_requests FOR UPDATE TO spor_app
    USING ((SELECT spor_has_staff_role(spor_actor(), 'ema-data-steward')));
ALTER TABLE oms_change_request_documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_oms_documents_read ON oms_change_request_documents FOR SELECT TO spor_app
    USING (change_request_id IN (SELECT id FROM oms_change_requests));
CREATE POLICY r13_oms_documents_insert ON oms_change_request_documents FOR INSERT TO spor_app
    WITH CHECK (change_request_id IN (SELECT id FROM oms_change_requests WHERE requester_id = (SELECT spor_actor())));

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_audit_read ON audit_events FOR SELECT TO spor_app USING (
    (SELECT spor_actor_is_staff())
    OR organisation_id IN (SELECT spor_actor_super_user_organisations())
    OR (organisation_id IS NULL AND actor_id = (SELECT spor_actor())));
CREATE POLICY r15_audit_insert ON audit_events FOR INSERT TO spor_app
    WITH CHECK (actor_id IS NOT DISTINCT FROM (SELECT spor_actor()));

ALTER TABLE notification_outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_outbox_read ON notification_outbox FOR SELECT TO spor_app
    USING ((SELECT spor_has_staff_role(spor_actor(), 'ema-admin')) OR recipient_account_id = (SELECT spor_actor()));
CREATE POLICY r16_outbox_insert ON notification_outbox FOR INSERT TO spor_app WITH CHECK (true);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_idempotency_own ON idempotency_keys TO spor_app
    USING (account_id IS NOT DISTINCT FROM (SELECT spor_actor()))
    WITH CHECK (account_id IS NOT DISTINCT FROM (SELECT spor_actor()));

-- Privileges: what the application role may do at all (policies narrow it to rows). No DELETE or TRUNCATE
-- anywhere but on its own idempotency keys and sessions; owner-only objects stay out of reach.
GRANT SELECT ON settings TO spor_app;
GRANT SELECT, INSERT, UPDATE ON organisations, accounts, access_requests, role_assignments, service_desk_tickets,
    oms_change_requests TO spor_app;
GRANT SELECT, INSERT, UPDATE ON credentials, verification_tokens, security_answers, sessions TO spor_app;
GRANT DELETE ON security_answers, sessions, idempotency_keys TO spor_app;
GRANT SELECT, INSERT ON staff_roles, documents, oms_change_request_documents, audit_events TO spor_app;
GRANT SELECT, INSERT ON notification_outbox, idempotency_keys TO spor_app;
GRANT UPDATE ON idempotency_keys TO spor_app;
GRANT USAGE ON SEQUENCE organisation_number_seq, access_request_id_seq, service_desk_ticket_id_seq TO spor_app;

------------------------------------------------------------------------------------------------------------
-- Entry points for work without an acting account (SECURITY DEFINER, narrow): sign-in, e-mail verification,
-- session lookup, expiry of due requests, and outbox delivery.
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_login_candidate(login_email text)
    RETURNS TABLE (account_id uuid, status text, password_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.id, a.status, c.password_hash FROM accounts a JOIN credentials c ON c.account_id = a.id
    WHERE lower(a.email) = lower(login_email)
$$;
COMMENT ON FUNCTION spor_login_candidate(text) IS 'Sign-in: the account and password hash for an e-mail (before anyone is acting).';

CREATE FUNCTION spor_account_for_email(lookup_email text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN (SELECT id FROM accounts WHERE lower(email) = lower(lookup_email));
COMMENT ON FUNCTION spor_account_for_email(text) IS 'R2: the existing account of an e-mail address, so it is reused and never duplicated.';

CREATE FUNCTION spor_verification_account(token bytea) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN (SELECT account_id FROM verification_tokens
            WHERE token_hash = token AND used_at IS NULL AND expires_at > now());
COMMENT ON FUNCTION spor_verification_account(bytea) IS 'R2: the account an unused, unexpired verification token belongs to (SHA-256 of the token).';

CREATE FUNCTION spor_session_account(token bytea) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN (SELECT s.account_id FROM sessions s JOIN accounts a ON a.id = s.account_id
            WHERE s.token_hash = token AND s.revoked_at IS NULL AND s.expires_at > now() AND a.status = 'active');
COMMENT ON FUNCTION spor_session_account(bytea) IS 'Authentication: the active account of a live session (SHA-256 of the bearer token).';

GRANT EXECUTE ON FUNCTION spor_login_candidate(text), spor_account_for_email(text), spor_verification_account(bytea),
    spor_session_account(bytea) TO spor_app;
