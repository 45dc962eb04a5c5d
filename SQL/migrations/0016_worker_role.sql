-- 0016 — background work under its own role.
--
-- Delivering the outbox and expiring due requests run as spor_worker. Only it can claim and mark outbox rows, so a
-- client holding the spor_app login can no longer claim the whole outbox and mark it delivered (nothing would ever be
-- sent). The service reaches spor_worker through WORKER_DATABASE_URL, or through the owner's login switching role
-- per transaction (the owner is a member, as it is of spor_app).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'spor_worker') THEN
        CREATE ROLE spor_worker NOLOGIN;
    END IF;
    IF NOT pg_has_role(current_user, 'spor_worker', 'MEMBER') THEN
        EXECUTE format('GRANT spor_worker TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO spor_worker;
GRANT SELECT ON schema_migrations TO spor_worker;

REVOKE EXECUTE ON FUNCTION spor_claim_notifications(integer), spor_mark_notification(bigint, text),
    spor_expire_due_requests(integer) FROM spor_app;
GRANT EXECUTE ON FUNCTION spor_claim_notifications(integer), spor_mark_notification(bigint, text),
    spor_expire_due_requests(integer), spor_actor(), spor_refuse(text, text, text) TO spor_worker;

-- The super users of an organisation (with e-mails) only for an authenticated actor, who is filing or re-routing a
-- request to them: with nobody acting, nobody learns them.
CREATE OR REPLACE FUNCTION spor_super_user_recipients(organisation text)
    RETURNS TABLE (account_id uuid, email text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.id, a.email FROM role_assignments r JOIN accounts a ON a.id = r.account_id
    WHERE r.organisation_id = organisation AND r.role = 'spor-industry-super-user'
      AND r.revoked_at IS NULL AND a.status = 'active' AND spor_actor() IS NOT NULL
    ORDER BY a.id
$$;

DO $$
BEGIN
    ALTER ROLE spor_worker SET statement_timeout = '60s';
    ALTER ROLE spor_worker SET idle_in_transaction_session_timeout = '60s';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'role settings not changed: set statement_timeout and idle_in_transaction_session_timeout on spor_worker yourself';
END
$$;
