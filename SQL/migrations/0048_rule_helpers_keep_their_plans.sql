-- 0048 — the rule helpers called on every command keep their plans: PL/pgSQL instead of non-inlinable SQL.
--
-- A LANGUAGE sql function that is SECURITY DEFINER or has a SET clause is never inlined, and PostgreSQL plans its
-- query again on every call from PL/pgSQL (0019 found the same for spor_actor()). Profiled with track_functions
-- (Benchmarks/api/load.sh --top-functions, 64 organisations, one client), one request+approve pair spent:
--
--   spor_active_super_user_count  5.9 calls, 325 µs each      spor_request_outcome     2.0 calls, 190 µs each
--   spor_is_active_super_user     3.9 calls, 203 µs each      spor_actor_is_staff      1.9 calls, 159 µs each
--   spor_audit                    2.9 calls, 150 µs each      spor_actor_proof         3.9 calls, 112 µs each
--   spor_queue_to_super_users     1.0 calls, 479 µs           spor_queue_to_account    1.0 calls, 216 µs
--   spor_bind_actor               3.9 calls,  74 µs each      spor_job_now            13.7 calls,  39 µs each
--
-- Each is rewritten here in PL/pgSQL (plans cached for the session) with the same signature, body, volatility,
-- SECURITY DEFINER, pinned search_path, owner and grants (CREATE OR REPLACE keeps the last three). Each body is the
-- latest one (0016, 0021, 0024, 0041, 0042). spor_current_route is IMMUTABLE, reads no table and is not SECURITY
-- DEFINER: it loses its SET clause instead, so the planner inlines it.

CREATE OR REPLACE FUNCTION spor_job_now() RETURNS timestamptz
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN now() + (SELECT s.job_clock_offset FROM settings s);
END
$$;

CREATE OR REPLACE FUNCTION spor_active_super_user_count(organisation text) RETURNS integer
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN (SELECT count(*) FROM role_assignments r JOIN accounts a ON a.id = r.account_id
            WHERE r.organisation_id = spor_active_super_user_count.organisation AND r.role = 'spor-industry-super-user'
              AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active');
END
$$;

CREATE OR REPLACE FUNCTION spor_is_active_super_user(account uuid, organisation text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM role_assignments r JOIN accounts a ON a.id = r.account_id
                   WHERE r.organisation_id = spor_is_active_super_user.organisation
                     AND r.account_id = spor_is_active_super_user.account
                     AND r.role = 'spor-industry-super-user' AND r.revoked_at IS NULL
                     AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active');
END
$$;

CREATE OR REPLACE FUNCTION spor_actor_super_user_organisations() RETURNS SETOF text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT r.organisation_id FROM role_assignments r JOIN accounts a ON a.id = r.account_id
    WHERE r.account_id = spor_actor() AND r.role = 'spor-industry-super-user'
      AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active';
END
$$;

CREATE OR REPLACE FUNCTION spor_actor_is_staff() RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM staff_roles s JOIN accounts a ON a.id = s.account_id
                   WHERE s.account_id = spor_actor() AND a.status = 'active');
END
$$;

CREATE OR REPLACE FUNCTION spor_has_staff_role(account uuid, wanted text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM staff_roles s JOIN accounts a ON a.id = s.account_id
                   WHERE s.account_id = spor_has_staff_role.account AND s.role = spor_has_staff_role.wanted
                     AND a.status = 'active');
END
$$;

CREATE OR REPLACE FUNCTION spor_actor_may_see(actor uuid, organisation text, holder uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN actor IS NOT NULL
       AND (holder = actor OR spor_actor_is_staff()
            OR (organisation IS NOT NULL AND spor_is_active_super_user(actor, organisation)));
END
$$;

CREATE OR REPLACE FUNCTION spor_review_decider(actor uuid, organisation text, holder uuid) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN CASE
        WHEN actor IS NULL THEN 'not-found'
        WHEN actor = holder THEN 'self-approval'
        WHEN spor_is_active_super_user(actor, organisation) THEN NULL
        WHEN spor_has_staff_role(actor, 'ema-service-desk') THEN
            CASE WHEN spor_active_super_user_count(organisation)
                      - CASE WHEN spor_is_active_super_user(holder, organisation) THEN 1 ELSE 0 END > 0
                 THEN 'delegated-to-organisation' ELSE NULL END
        ELSE 'not-found'
    END;
END
$$;

CREATE OR REPLACE FUNCTION spor_actor_proof(account uuid) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN encode(hmac(convert_to(account::text || '/' || pg_backend_pid()::text || '/' || extract(epoch FROM now())::text, 'UTF8'),
                       (SELECT k.key FROM actor_binding_key k), 'sha256'), 'hex');
END
$$;

CREATE OR REPLACE FUNCTION spor_bind_actor(account uuid) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM set_config('app.account_id', account::text, true), set_config('app.actor_proof', spor_actor_proof(account), true);
    RETURN account;
END
$$;

CREATE OR REPLACE FUNCTION spor_session_account(token bytea) RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN (SELECT s.account_id FROM sessions s JOIN accounts a ON a.id = s.account_id
            WHERE s.token_hash = spor_session_account.token AND s.revoked_at IS NULL AND s.expires_at > now()
              AND a.status = 'active');
END
$$;

CREATE OR REPLACE FUNCTION spor_audit(actor uuid, organisation text, action text, subject_type text, subject_id text,
                                      before_state jsonb, after_state jsonb) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
    VALUES (spor_audit.organisation, spor_audit.actor, spor_audit.action, spor_audit.subject_type, spor_audit.subject_id,
            spor_audit.before_state, spor_audit.after_state);
END
$$;

CREATE OR REPLACE FUNCTION spor_queue_to_super_users(organisation text, template text, subject text, body text,
                                                     about_type text, about_id text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                     subject_type, subject_id)
    SELECT r.organisation_id, a.id, a.email, spor_queue_to_super_users.template, spor_queue_to_super_users.subject,
           spor_queue_to_super_users.body, spor_queue_to_super_users.about_type, spor_queue_to_super_users.about_id
    FROM role_assignments r JOIN accounts a ON a.id = r.account_id
    WHERE r.organisation_id = spor_queue_to_super_users.organisation AND r.role = 'spor-industry-super-user'
      AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active'
    ORDER BY a.id;
END
$$;

CREATE OR REPLACE FUNCTION spor_queue_to_account(account uuid, organisation text, template text, subject text, body text,
                                                 about_type text, about_id text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                     subject_type, subject_id)
    SELECT spor_queue_to_account.organisation, a.id, a.email, spor_queue_to_account.template, spor_queue_to_account.subject,
           spor_queue_to_account.body, spor_queue_to_account.about_type, spor_queue_to_account.about_id
    FROM accounts a WHERE a.id = spor_queue_to_account.account;
END
$$;

CREATE OR REPLACE FUNCTION spor_queue_to_service_desk(organisation text, template text, subject text, body text,
                                                      about_type text, about_id text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                     subject_type, subject_id)
    SELECT spor_queue_to_service_desk.organisation, a.id, a.email, spor_queue_to_service_desk.template,
           spor_queue_to_service_desk.subject, spor_queue_to_service_desk.body, spor_queue_to_service_desk.about_type,
           spor_queue_to_service_desk.about_id
    FROM staff_roles s JOIN accounts a ON a.id = s.account_id
    WHERE s.role = 'ema-service-desk' AND a.status = 'active' AND spor_has_staff_role(a.id, 'ema-service-desk')
    ORDER BY a.id;
END
$$;

CREATE OR REPLACE FUNCTION spor_request_outcome(request bigint, assignment bigint) RETURNS spor_request_outcome
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    outcome spor_request_outcome;
BEGIN
    SELECT r.id, r.organisation_id, r.requester_id, r.role, r.justification, r.status, r.approver_kind, r.created_at,
           r.expires_at, r.decided_by, r.decided_at, r.decision_reason,
           g.id, g.organisation_id, g.account_id, g.role, g.access_request_id, g.first_super_user, g.effective_from, g.revoked_at,
           false, r.access_until, g.ends_at
    INTO outcome
    FROM access_requests r LEFT JOIN role_assignments g ON g.id = spor_request_outcome.assignment
    WHERE r.id = spor_request_outcome.request;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN outcome;
END
$$;

ALTER FUNCTION spor_current_route(text, integer) RESET search_path;
