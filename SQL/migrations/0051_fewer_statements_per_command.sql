-- 0051 — the same commands in fewer statements.
--
-- Measured (Benchmarks/api/RESULTS.md, "What the pair's database time is made of"): a request+approve pair ran 115
-- statements, and what a statement costs is mostly its first use in a transaction (relation locks taken again,
-- expressions prepared again, plans checked again: 20–60 µs each inside the pair, 5–20 µs when repeated). The lever
-- is fewer statements, not faster ones. This migration rewrites the pair's four calls with the same signatures,
-- answers, refusals, owner, grants and pinned search_path (CREATE OR REPLACE keeps the last three):
--
-- * spor_authenticate: the token look-up, the binding key and both settings in one statement (it was the look-up,
--   then spor_bind_actor, then spor_actor_proof: four statements for each of the pair's four calls). The proof is
--   the same text spor_actor() checks (0019): HMAC-SHA-256 over account, backend pid and transaction start.
-- * spor_submission_facts and spor_decision_facts: one query each (they were ten and eight statements, with a helper
--   call for each fact). The helpers' conditions are written out: an active super user is an unrevoked
--   'spor-industry-super-user' assignment of an active account whose end, if any, is after the jobs' clock
--   (now() + settings.job_clock_offset); staff is a staff role of an active account.
-- * spor_file_request and spor_decide_request: the audit events and messages are written by the command itself
--   (no spor_audit/spor_queue_* call for each), the answer is built from the rows the writes returned (no
--   spor_request_outcome re-read), and spor_decide_request reads the request with its visibility check in one statement
--   (spor_lock_and_route, with its helper calls, stays for spor_reroute_request). The triggers are untouched: they decide every rule again, under the lock, as before.

CREATE OR REPLACE FUNCTION spor_authenticate(token text) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    account uuid;
    claimed text;
    proof text;
BEGIN
    -- The settings are made in the target list, so only for the one live session the token names (token_hash is
    -- unique); the quals are applied first.
    SELECT s.account_id,
           set_config('app.account_id', s.account_id::text, true),
           set_config('app.actor_proof',
                      encode(hmac(convert_to(s.account_id::text || '/' || pg_backend_pid()::text || '/'
                                             || extract(epoch FROM now())::text, 'UTF8'), k.key, 'sha256'), 'hex'), true)
    INTO account, claimed, proof
    FROM sessions s JOIN accounts a ON a.id = s.account_id CROSS JOIN actor_binding_key k
    WHERE s.token_hash = sha256(convert_to(coalesce(token, ''), 'UTF8'))
      AND s.revoked_at IS NULL AND s.expires_at > now() AND a.status = 'active';
    IF account IS NULL THEN
        PERFORM spor_refuse('R13', 'not-authenticated', 'the bearer token is unknown, expired or signed out');
    END IF;
    RETURN account;
END
$$;

CREATE OR REPLACE FUNCTION spor_submission_facts(token text, wanted_role text, organisation text)
    RETURNS TABLE (actor uuid, account_active boolean, security_questions_set boolean, organisation_exists boolean,
                   active_super_users integer, pending_same_role boolean, holds_role boolean, now timestamptz,
                   activation_delay_seconds double precision, request_lifetime_seconds double precision, clock timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    account uuid := spor_authenticate(token);
BEGIN
    RETURN QUERY
    SELECT x.id, x.status = 'active',
           x.security_questions_waived OR EXISTS (SELECT 1 FROM security_answers q WHERE q.account_id = x.id),
           o.id IS NOT NULL,
           CASE WHEN o.id IS NULL THEN 0 ELSE
               (SELECT count(*)::integer FROM role_assignments g JOIN accounts a ON a.id = g.account_id
                WHERE g.organisation_id = o.id AND g.role = 'spor-industry-super-user' AND g.revoked_at IS NULL
                  AND (g.ends_at IS NULL OR g.ends_at > now() + st.job_clock_offset) AND a.status = 'active') END,
           EXISTS (SELECT 1 FROM access_requests r WHERE r.requester_id = x.id AND r.role = wanted_role
                   AND r.organisation_id IS NOT DISTINCT FROM organisation AND r.status = 'pending'),
           EXISTS (SELECT 1 FROM role_assignments g WHERE g.account_id = x.id AND g.role = wanted_role
                   AND g.organisation_id IS NOT DISTINCT FROM organisation AND g.revoked_at IS NULL AND g.ends_at IS NULL),
           now(),
           extract(epoch FROM st.unaffiliated_activation_delay)::float8,
           extract(epoch FROM st.request_lifetime)::float8,
           now() + st.job_clock_offset
    FROM accounts x CROSS JOIN settings st
    LEFT JOIN organisations o ON o.id = organisation AND o.status = 'active'
    WHERE x.id = account;
END
$$;

CREATE OR REPLACE FUNCTION spor_decision_facts(token text, request bigint)
    RETURNS TABLE (id bigint, organisation_id text, requester_id uuid, role text, justification text, status text,
                   approver_kind text, created_at timestamptz, expires_at timestamptz, decided_by uuid,
                   decided_at timestamptz, decision_reason text,
                   actor uuid, staff_roles text[], active_super_users integer, actor_is_super_user boolean,
                   has_open_ticket boolean, now timestamptz, access_until timestamptz, clock timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
BEGIN
    -- R13: the requester, staff, or an active super user of the request's organisation sees it; anyone else is told
    -- it does not exist.
    RETURN QUERY
    SELECT r.id, r.organisation_id, r.requester_id, r.role, r.justification, r.status, r.approver_kind, r.created_at,
           r.expires_at, r.decided_by, r.decided_at, r.decision_reason,
           account, f.staff,
           CASE WHEN r.organisation_id IS NULL THEN 0 ELSE
               (SELECT count(*)::integer FROM role_assignments g JOIN accounts a ON a.id = g.account_id
                WHERE g.organisation_id = r.organisation_id AND g.role = 'spor-industry-super-user' AND g.revoked_at IS NULL
                  AND (g.ends_at IS NULL OR g.ends_at > now() + st.job_clock_offset) AND a.status = 'active') END,
           f.super_user,
           EXISTS (SELECT 1 FROM service_desk_tickets t WHERE t.access_request_id = r.id AND t.status = 'open'),
           now(), r.access_until, now() + st.job_clock_offset
    FROM access_requests r CROSS JOIN settings st
    CROSS JOIN LATERAL (
        SELECT ARRAY(SELECT s.role FROM staff_roles s JOIN accounts a ON a.id = s.account_id
                     WHERE s.account_id = account AND a.status = 'active' ORDER BY s.role) AS staff,
               r.organisation_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM role_assignments g JOIN accounts a ON a.id = g.account_id
                           WHERE g.organisation_id = r.organisation_id AND g.account_id = account
                             AND g.role = 'spor-industry-super-user' AND g.revoked_at IS NULL
                             AND (g.ends_at IS NULL OR g.ends_at > now() + st.job_clock_offset) AND a.status = 'active')
                   AS super_user) f
    WHERE r.id = request AND (r.requester_id = account OR cardinality(f.staff) > 0 OR f.super_user);
    IF NOT FOUND THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access request ' || request || ' not found.');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION spor_file_request(token text, wanted_role text, organisation text, justification text,
                                             access_until timestamptz DEFAULT NULL)
    RETURNS spor_request_outcome
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
    st settings%ROWTYPE;
    super_users integer := 0;
    kind text;
    r access_requests%ROWTYPE;
    g role_assignments%ROWTYPE;
    effective timestamptz;
BEGIN
    SELECT * INTO st FROM settings;
    IF organisation IS NOT NULL AND EXISTS (SELECT 1 FROM organisations o WHERE o.id = organisation AND o.status = 'active') THEN
        PERFORM spor_lock_organisation_for(organisation, false);
        super_users := spor_active_super_user_count(organisation);
    END IF;
    kind := spor_current_route(wanted_role, super_users);
    -- r8_route_new_request and r21_request_end check everything again (account, answers, organisation, R7, R9,
    -- routing, the end asked for).
    INSERT INTO access_requests (organisation_id, requester_id, role, justification, status, approver_kind, expires_at,
                                 decided_at, access_until)
    VALUES (organisation, actor, wanted_role, justification,
            CASE WHEN kind = 'automatic' THEN 'approved' ELSE 'pending' END, kind,
            CASE WHEN kind = 'automatic' THEN NULL ELSE now() + st.request_lifetime END,
            CASE WHEN kind = 'automatic' THEN now() END, spor_file_request.access_until)
    RETURNING * INTO r;
    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
    VALUES (organisation, actor, 'access-request.submitted', 'access_request', r.id::text, NULL,
            jsonb_build_object('role', wanted_role, 'status', r.status, 'approverKind', kind)
            || CASE WHEN spor_file_request.access_until IS NULL THEN '{}'::jsonb
                    ELSE jsonb_build_object('accessUntil', spor_file_request.access_until) END);

    IF kind = 'automatic' THEN
        effective := now() + st.unaffiliated_activation_delay;
        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user, effective_from)
        VALUES (NULL, actor, wanted_role, 'access-request', r.id, false, effective)
        RETURNING * INTO g;
        INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
        VALUES (NULL, actor, 'role-assignment.granted', 'role_assignment', g.id::text, NULL,
                jsonb_build_object('role', wanted_role, 'account', actor::text, 'accessRequest', r.id::text));
        INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                         subject_type, subject_id)
        SELECT NULL, a.id, a.email, 'request-decided', 'Your access request ' || r.id || ' is approved',
               'The system approved your request for the SPOR Unaffiliated User role. It is effective from '
                   || to_char(effective AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '.',
               'access_request', r.id::text
        FROM accounts a WHERE a.id = actor;
    ELSIF kind = 'ema-service-desk' THEN
        INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                         subject_type, subject_id)
        SELECT organisation, a.id, a.email, 'request-filed-first-super-user',
               'Your access request ' || r.id || ': open a service desk ticket',
               'Your request ' || r.id || ' for the SPOR Industry Super User role of ' || organisation
                   || ' is approved by the EMA service desk. Open a service request with "SPOR super user role access – request ID '
                   || r.id || '" in the subject and attach the signed SPOR User Affiliation Template Letter.',
               'access_request', r.id::text
        FROM accounts a WHERE a.id = actor;
    ELSE
        -- To every active super user of the organisation (the lock keeps the set as counted), in account order.
        INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                         subject_type, subject_id)
        SELECT g2.organisation_id, a.id, a.email, 'request-filed', 'New access request ' || r.id || ' for ' || organisation,
               requester.email || ' asks for the role ' || wanted_role || ' in ' || organisation
                   || coalesce(' until ' || to_char(spor_file_request.access_until AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '')
                   || '. Approve or reject it in the Account Management portal.',
               'access_request', r.id::text
        FROM role_assignments g2 JOIN accounts a ON a.id = g2.account_id
        CROSS JOIN (SELECT q.email FROM accounts q WHERE q.id = actor) requester
        WHERE g2.organisation_id = organisation AND g2.role = 'spor-industry-super-user' AND g2.revoked_at IS NULL
          AND (g2.ends_at IS NULL OR g2.ends_at > now() + st.job_clock_offset) AND a.status = 'active'
        ORDER BY a.id;
    END IF;
    RETURN ROW(r.id, r.organisation_id, r.requester_id, r.role, r.justification, r.status, r.approver_kind, r.created_at,
               r.expires_at, r.decided_by, r.decided_at, r.decision_reason,
               g.id, g.organisation_id, g.account_id, g.role, g.access_request_id, g.first_super_user, g.effective_from,
               g.revoked_at, false, r.access_until, g.ends_at)::spor_request_outcome;
END
$$;

CREATE OR REPLACE FUNCTION spor_decide_request(token text, request bigint, approve boolean, reason text,
                                               stop_after_reroute boolean DEFAULT true, grant_until timestamptz DEFAULT NULL)
    RETURNS spor_request_outcome
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
    r access_requests%ROWTYPE;
    decided text := CASE WHEN approve THEN 'approved' ELSE 'rejected' END;
    g role_assignments%ROWTYPE;
    previous role_assignments%ROWTYPE;
    ticket record;
    kind text;
    outcome spor_request_outcome;
BEGIN
    -- R13: the requester, staff, or an active super user of its organisation may see the request.
    SELECT q.* INTO r FROM access_requests q
    WHERE q.id = request
      AND (q.requester_id = actor
           OR EXISTS (SELECT 1 FROM staff_roles s JOIN accounts a ON a.id = s.account_id
                      WHERE s.account_id = actor AND a.status = 'active')
           OR (q.organisation_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM role_assignments x JOIN accounts a ON a.id = x.account_id
                           WHERE x.organisation_id = q.organisation_id AND x.account_id = actor
                             AND x.role = 'spor-industry-super-user' AND x.revoked_at IS NULL
                             AND (x.ends_at IS NULL OR x.ends_at > spor_job_now()) AND a.status = 'active')));
    IF NOT FOUND THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access request ' || request || ' not found.');
    END IF;
    IF r.organisation_id IS NOT NULL THEN
        -- R11: the lock in the mode the decision needs, then the request and its routing as they are under it.
        PERFORM spor_lock_organisation_for(r.organisation_id, r.role = 'spor-industry-super-user');
        SELECT * INTO r FROM access_requests q WHERE q.id = request;
        IF r.status = 'pending' THEN
            kind := spor_current_route(r.role, spor_active_super_user_count(r.organisation_id));
            IF kind <> r.approver_kind THEN
                PERFORM spor_reroute_locked(r, kind, actor);
                IF stop_after_reroute THEN
                    outcome := spor_request_outcome(request, NULL);
                    outcome.rerouted := true;
                    RETURN outcome;
                END IF;
                SELECT * INTO r FROM access_requests q WHERE q.id = request;
            END IF;
        END IF;
    END IF;
    -- r11_decide_request decides again under the lock: self-approval, routing, ticket, super user, reason, expiry.
    UPDATE access_requests SET status = decided, decided_by = actor, decided_at = now(), decision_reason = reason
    WHERE id = request
    RETURNING * INTO r;
    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
    VALUES (r.organisation_id, actor, 'access-request.' || decided, 'access_request', request::text,
            jsonb_build_object('status', 'pending'), jsonb_build_object('status', decided, 'reason', coalesce(reason, '')));
    IF approve THEN
        -- R21 renewal: the role held until a date ends as the renewal grants it again (by the clock if its end has
        -- passed, else revoked by the approver).
        SELECT * INTO previous FROM role_assignments p
        WHERE p.account_id = r.requester_id AND p.role = r.role AND p.organisation_id IS NOT DISTINCT FROM r.organisation_id
          AND p.revoked_at IS NULL;
        IF FOUND THEN
            IF previous.ends_at <= spor_job_now() THEN
                PERFORM spor_end_assignment_locked(previous);
            ELSE
                UPDATE role_assignments p SET revoked_at = now(), revoked_by = actor,
                       revoke_reason = 'renewed by access request ' || request
                WHERE p.id = previous.id;
                INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
                VALUES (r.organisation_id, actor, 'role-assignment.revoked', 'role_assignment', previous.id::text,
                        jsonb_build_object('role', previous.role, 'account', previous.account_id::text),
                        jsonb_build_object('revoked', 'true', 'renewedBy', request::text));
            END IF;
        END IF;
        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user, ends_at)
        VALUES (r.organisation_id, r.requester_id, r.role, 'access-request', request, r.approver_kind = 'ema-service-desk',
                coalesce(grant_until, r.access_until))
        RETURNING * INTO g;
        INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
        VALUES (r.organisation_id, actor, 'role-assignment.granted', 'role_assignment', g.id::text, NULL,
                jsonb_build_object('role', r.role, 'account', r.requester_id::text, 'accessRequest', request::text)
                || coalesce(jsonb_build_object('endsAt', g.ends_at), '{}'::jsonb));
    END IF;
    IF r.approver_kind = 'ema-service-desk' THEN
        FOR ticket IN SELECT t.id FROM service_desk_tickets t WHERE t.access_request_id = request AND t.status = 'open' ORDER BY t.id LOOP
            UPDATE service_desk_tickets SET status = 'resolved', resolution = decided, resolution_comment = reason,
                   resolved_by = actor, resolved_at = now()
            WHERE id = ticket.id;
            PERFORM spor_audit(actor, r.organisation_id, 'service-desk-ticket.resolved', 'service_desk_ticket', ticket.id::text,
                jsonb_build_object('status', 'open'), jsonb_build_object('status', 'resolved', 'resolution', decided));
            PERFORM spor_queue_to_account(r.requester_id, r.organisation_id, 'ticket-resolved',
                'Service request ' || ticket.id || ' is resolved',
                'The EMA service desk resolved your service request ' || ticket.id || ' for access request ' || request
                    || ': ' || decided || '.',
                'service_desk_ticket', ticket.id::text);
        END LOOP;
    END IF;
    INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                     subject_type, subject_id)
    SELECT r.organisation_id, a.id, a.email, 'request-decided', 'Your access request ' || request || ' is ' || decided,
           'Your request for the role ' || r.role || coalesce(' in ' || r.organisation_id, '') || ' was ' || decided
               || coalesce(', until ' || to_char(g.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), '')
               || '.' || coalesce(' Comment: ' || reason, ''),
           'access_request', request::text
    FROM accounts a WHERE a.id = r.requester_id;
    RETURN ROW(r.id, r.organisation_id, r.requester_id, r.role, r.justification, r.status, r.approver_kind, r.created_at,
               r.expires_at, r.decided_by, r.decided_at, r.decision_reason,
               g.id, g.organisation_id, g.account_id, g.role, g.access_request_id, g.first_super_user, g.effective_from,
               g.revoked_at, false, r.access_until, g.ends_at)::spor_request_outcome;
END
$$;
