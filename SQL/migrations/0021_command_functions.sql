-- 0021 — one call per command, and locks that fit the command.
--
-- Each command of the access-request life cycle is one SECURITY DEFINER function that authenticates the bearer
-- token (spor_authenticate), takes the organisation lock in the mode the command needs, writes, audits (R15) and
-- queues its messages (R16) — one statement, one implicit transaction, one round trip. The rule triggers of 0004
-- still fire on every write the functions make (and on any direct write by spor_app), so the SQL half of every
-- rule is decided again under the lock, with the same codes; the functions add no rule of their own, only the
-- visibility check R13's row-level security makes for direct reads (a definer function bypasses it).
--
-- The facts functions (spor_submission_facts, spor_decision_facts, spor_revocation_facts) are the one read of the
-- facts the Swift policy decides on before the command: also authenticated, without any lock.
--
-- Locks: the organisation row, FOR SHARE by commands that need the super-user set to stay as it is (filing any
-- request; deciding, cancelling or revoking an industry-user role), FOR UPDATE by commands that may change it
-- (deciding a super-user request — the first super user, or one more — and revoking a super-user role). Shared
-- holders do not wait for each other; a change of the set waits for them and they for it. The lock is held only
-- inside the one statement of the command (and until its COMMIT, which is the end of that statement).

------------------------------------------------------------------------------------------------------------
-- The lock, in two modes
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_lock_organisation_for(organisation text, changes_super_users boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF organisation IS NULL THEN
        RETURN;
    END IF;
    IF changes_super_users THEN
        PERFORM 1 FROM organisations WHERE id = organisation FOR UPDATE;
    ELSE
        PERFORM 1 FROM organisations WHERE id = organisation FOR SHARE;
    END IF;
END
$$;
COMMENT ON FUNCTION spor_lock_organisation_for(text, boolean) IS 'The organisation lock: FOR UPDATE when the command may change the super-user set, FOR SHARE when it only needs it to stay put. Owner only.';

-- The rule triggers take the lock in the command's mode (their checks are unchanged from 0004).
CREATE OR REPLACE FUNCTION r8_route_new_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    requester accounts%ROWTYPE;
    super_users integer;
    expected_kind text;
BEGIN
    IF NEW.requester_id IS DISTINCT FROM spor_actor() THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'a request is filed by its requester (app.account_id)');
    END IF;
    SELECT * INTO requester FROM accounts WHERE id = NEW.requester_id;
    IF requester.status IS DISTINCT FROM 'active' THEN
        PERFORM spor_refuse('R2', 'account-not-active', 'the account must be verified and active to file requests');
    END IF;
    IF NOT requester.security_questions_waived
       AND NOT EXISTS (SELECT 1 FROM security_answers WHERE account_id = NEW.requester_id) THEN
        PERFORM spor_refuse('R3', 'security-questions-required', 'set answers to security questions before filing a request');
    END IF;
    IF NEW.role <> 'spor-unaffiliated-user' AND NEW.organisation_id IS NULL THEN
        PERFORM spor_refuse('R4', 'organisation-required', NEW.role || ' is held in one organisation: name it');
    ELSIF NEW.role = 'spor-unaffiliated-user' AND NEW.organisation_id IS NOT NULL THEN
        PERFORM spor_refuse('R4', 'organisation-not-allowed', 'the unaffiliated role belongs to no organisation');
    END IF;
    IF NEW.organisation_id IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM organisations WHERE id = NEW.organisation_id AND status = 'active') THEN
            PERFORM spor_refuse('R6', 'unknown-organisation', 'organisation ' || NEW.organisation_id || ' is not in OMS');
        END IF;
        -- Filing changes no super user: the shared lock keeps the set as it is while routing reads it.
        PERFORM spor_lock_organisation_for(NEW.organisation_id, false);
    END IF;
    IF EXISTS (SELECT 1 FROM role_assignments
               WHERE account_id = NEW.requester_id AND role = NEW.role
                 AND organisation_id IS NOT DISTINCT FROM NEW.organisation_id AND revoked_at IS NULL) THEN
        PERFORM spor_refuse('R7', 'already-held', 'the requester already holds this role');
    END IF;
    IF EXISTS (SELECT 1 FROM access_requests
               WHERE requester_id = NEW.requester_id AND role = NEW.role
                 AND organisation_id IS NOT DISTINCT FROM NEW.organisation_id AND status = 'pending') THEN
        PERFORM spor_refuse('R7', 'duplicate-request', 'a request for this role is already pending');
    END IF;

    NEW.created_at := now();
    IF NEW.role = 'spor-unaffiliated-user' THEN
        IF NEW.status <> 'approved' OR NEW.approver_kind <> 'automatic' OR NEW.decided_by IS NOT NULL THEN
            PERFORM spor_refuse('R5', 'routing-mismatch', 'the unaffiliated role is approved automatically');
        END IF;
        NEW.decided_at := now();
        NEW.expires_at := NULL;
        RETURN NEW;
    END IF;

    IF NEW.status <> 'pending' OR NEW.decided_by IS NOT NULL OR NEW.decided_at IS NOT NULL THEN
        PERFORM spor_refuse('R18', 'not-pending', 'organisation role requests start pending');
    END IF;
    super_users := spor_active_super_user_count(NEW.organisation_id);
    IF NEW.role = 'spor-industry-user' AND super_users = 0 THEN
        PERFORM spor_refuse('R9', 'no-super-user',
            'organisation ' || NEW.organisation_id || ' has no super user yet: request the super user role first');
    END IF;
    expected_kind := CASE WHEN NEW.role = 'spor-industry-super-user' AND super_users = 0
                          THEN 'ema-service-desk' ELSE 'organisation-super-users' END;
    IF NEW.approver_kind IS DISTINCT FROM expected_kind THEN
        PERFORM spor_refuse('R8', 'routing-mismatch', 'this request is approved by ' || expected_kind);
    END IF;
    IF NEW.expires_at IS NULL THEN
        NEW.expires_at := now() + (SELECT request_lifetime FROM settings);
    ELSIF NEW.expires_at <= now() THEN
        PERFORM spor_refuse('R18', 'request-expired', 'a new request cannot expire in the past');
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION r11_decide_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_actor();
    super_users integer;
    is_first boolean;
BEGIN
    IF NEW.id <> OLD.id OR NEW.requester_id <> OLD.requester_id OR NEW.role <> OLD.role
       OR NEW.organisation_id IS DISTINCT FROM OLD.organisation_id OR NEW.created_at <> OLD.created_at
       OR NEW.justification IS DISTINCT FROM OLD.justification THEN
        PERFORM spor_refuse('R18', 'immutable', 'what was requested never changes');
    END IF;
    IF NEW.status = 'cancelled' AND spor_actor() IS DISTINCT FROM OLD.requester_id THEN
        PERFORM spor_refuse('R13', 'not-found', 'only the requester cancels a request');
    END IF;
    IF OLD.status <> 'pending' THEN
        PERFORM spor_refuse('R18', 'not-pending', 'request ' || OLD.id || ' is ' || OLD.status || ' and never changes again');
    END IF;
    IF NEW.organisation_id IS NOT NULL THEN
        -- A super-user request's decision may add a super user (the first one included): exclusive. Industry-user
        -- requests only need the deciding super user to stay one: shared.
        PERFORM spor_lock_organisation_for(NEW.organisation_id, NEW.role = 'spor-industry-super-user');
        super_users := spor_active_super_user_count(NEW.organisation_id);
    END IF;
    is_first := NEW.role = 'spor-industry-super-user' AND super_users = 0;

    IF NEW.status = 'pending' THEN
        IF NEW.approver_kind IS DISTINCT FROM
           (CASE WHEN is_first THEN 'ema-service-desk' ELSE 'organisation-super-users' END)
           OR NEW.expires_at IS DISTINCT FROM OLD.expires_at OR NEW.decided_by IS NOT NULL THEN
            PERFORM spor_refuse('R8', 'routing-mismatch', 'a pending request can only be re-routed to its current approvers');
        END IF;
        RETURN NEW;
    END IF;

    NEW.decided_at := now();
    IF NEW.status = 'expired' THEN
        IF OLD.expires_at > now() OR NEW.decided_by IS NOT NULL THEN
            PERFORM spor_refuse('R18', 'not-pending', 'request ' || OLD.id || ' has not reached its expiry time');
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.decided_by IS DISTINCT FROM actor OR actor IS NULL THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'decided_by must be the acting account');
    END IF;
    IF NEW.status = 'cancelled' THEN
        IF actor <> OLD.requester_id THEN
            PERFORM spor_refuse('R13', 'not-found', 'only the requester cancels a request');
        END IF;
        RETURN NEW;
    END IF;

    IF OLD.expires_at <= now() THEN
        PERFORM spor_refuse('R18', 'request-expired', 'request ' || OLD.id || ' expired at ' || OLD.expires_at);
    END IF;
    IF actor = OLD.requester_id THEN
        PERFORM spor_refuse('R12', 'self-approval', 'nobody approves or rejects their own request');
    END IF;
    IF is_first THEN
        IF NOT spor_has_staff_role(actor, 'ema-service-desk') THEN
            PERFORM spor_refuse('R8', 'first-super-user-needs-ema',
                'the first super user of ' || NEW.organisation_id || ' is approved by the EMA service desk');
        END IF;
        IF NEW.approver_kind <> 'ema-service-desk' THEN
            PERFORM spor_refuse('R8', 'routing-mismatch', 'a first super user request is decided by the EMA service desk');
        END IF;
        IF NEW.status = 'approved' AND NOT EXISTS (
            SELECT 1 FROM service_desk_tickets t JOIN documents d ON d.id = t.letter_document_id
            WHERE t.access_request_id = OLD.id AND t.status = 'open' AND t.organisation_id = OLD.organisation_id) THEN
            PERFORM spor_refuse('R10', 'ticket-required',
                'approving a first super user needs an open service desk ticket with the affiliation letter');
        END IF;
    ELSE
        IF NOT spor_is_active_super_user(actor, NEW.organisation_id) THEN
            IF spor_has_staff_role(actor, 'ema-service-desk') THEN
                PERFORM spor_refuse('R11', 'delegated-to-organisation',
                    NEW.organisation_id || ' has a super user: its super users decide this request');
            END IF;
            PERFORM spor_refuse('R13', 'not-found', 'only super users of ' || NEW.organisation_id || ' decide its requests');
        END IF;
        IF NEW.approver_kind <> 'organisation-super-users' THEN
            PERFORM spor_refuse('R11', 'delegated-to-organisation', 're-route the request to the organisation''s super users');
        END IF;
    END IF;
    IF NEW.status = 'rejected' AND coalesce(btrim(NEW.decision_reason), '') = '' THEN
        PERFORM spor_refuse('R18', 'reason-required', 'a rejection needs a reason');
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION r14_revoke_assignment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_actor();
    remaining integer;
BEGIN
    IF NEW.id <> OLD.id OR NEW.account_id <> OLD.account_id OR NEW.role <> OLD.role
       OR NEW.organisation_id IS DISTINCT FROM OLD.organisation_id OR NEW.source <> OLD.source
       OR NEW.access_request_id IS DISTINCT FROM OLD.access_request_id OR NEW.granted_at <> OLD.granted_at
       OR NEW.granted_by IS DISTINCT FROM OLD.granted_by OR NEW.effective_from <> OLD.effective_from
       OR NEW.first_super_user <> OLD.first_super_user THEN
        PERFORM spor_refuse('R14', 'immutable', 'only revocation changes a role assignment');
    END IF;
    IF OLD.revoked_at IS NOT NULL THEN
        PERFORM spor_refuse('R14', 'not-found', 'the role was already revoked');
    END IF;
    IF NEW.revoked_at IS NULL THEN
        RETURN NEW;
    END IF;
    IF actor IS NULL OR NEW.revoked_by IS DISTINCT FROM actor THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'revoked_by must be the acting account');
    END IF;
    NEW.revoked_at := now();
    -- Removing a super user changes the set: exclusive. Other roles need the revoking super user to stay one: shared.
    PERFORM spor_lock_organisation_for(OLD.organisation_id, OLD.role = 'spor-industry-super-user');
    IF actor <> OLD.account_id
       AND NOT spor_has_staff_role(actor, 'ema-service-desk')
       AND (OLD.organisation_id IS NULL OR NOT spor_is_active_super_user(actor, OLD.organisation_id)) THEN
        PERFORM spor_refuse('R13', 'not-found', 'only the holder, the organisation''s super users or the service desk revoke a role');
    END IF;
    IF OLD.role = 'spor-industry-super-user' THEN
        SELECT count(*) INTO remaining FROM role_assignments r JOIN accounts a ON a.id = r.account_id
        WHERE r.organisation_id = OLD.organisation_id AND r.role = 'spor-industry-super-user'
          AND r.revoked_at IS NULL AND a.status = 'active' AND r.id <> OLD.id;
        IF remaining = 0 AND NOT spor_has_staff_role(actor, 'ema-service-desk') THEN
            PERFORM spor_refuse('R14', 'last-super-user',
                'the last super user of ' || OLD.organisation_id || ' can only be removed by the EMA service desk');
        END IF;
    END IF;
    RETURN NEW;
END
$$;

-- 0014 left the single-mode lock callable by spor_app on its own: a client could hold an organisation's lock for
-- as long as its transaction lasted. Now only the owner's functions take locks.
REVOKE EXECUTE ON FUNCTION spor_lock_organisation(text) FROM PUBLIC, spor_app;

------------------------------------------------------------------------------------------------------------
-- What the commands return
------------------------------------------------------------------------------------------------------------
-- A request (the columns of AccessRequest.columns) and, when the command granted a role, the assignment.
CREATE TYPE spor_request_outcome AS (
    id bigint, organisation_id text, requester_id uuid, role text, justification text, status text, approver_kind text,
    created_at timestamptz, expires_at timestamptz, decided_by uuid, decided_at timestamptz, decision_reason text,
    grant_id bigint, grant_organisation_id text, grant_account_id uuid, grant_role text, grant_access_request_id bigint,
    grant_first_super_user boolean, grant_effective_from timestamptz, grant_revoked_at timestamptz,
    -- True when the command found the routing out of date (R11), re-routed the request and stopped there: the caller
    -- decides again on the new routing.
    rerouted boolean);

CREATE FUNCTION spor_request_outcome(request bigint, assignment bigint) RETURNS spor_request_outcome
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id, r.organisation_id, r.requester_id, r.role, r.justification, r.status, r.approver_kind, r.created_at,
           r.expires_at, r.decided_by, r.decided_at, r.decision_reason,
           g.id, g.organisation_id, g.account_id, g.role, g.access_request_id, g.first_super_user, g.effective_from, g.revoked_at,
           false
    FROM access_requests r LEFT JOIN role_assignments g ON g.id = spor_request_outcome.assignment
    WHERE r.id = spor_request_outcome.request
$$;
COMMENT ON FUNCTION spor_request_outcome(bigint, bigint) IS 'A request and an assignment as the commands return them. Owner only.';

-- R13 for the definer functions: what row-level security lets the actor see of a request or an assignment.
CREATE FUNCTION spor_actor_may_see(actor uuid, organisation text, holder uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN actor IS NOT NULL
        AND (holder = actor OR spor_actor_is_staff()
             OR (organisation IS NOT NULL AND spor_is_active_super_user(actor, organisation)));
COMMENT ON FUNCTION spor_actor_may_see(uuid, text, uuid) IS 'R13: whether the actor may see a row of the organisation owned by holder (its requester or holder, staff, or a super user of the organisation). Owner only.';

------------------------------------------------------------------------------------------------------------
-- Messages (R16), written by the commands' SQL from the change itself
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_queue_to_account(account uuid, organisation text, template text, subject text, body text,
                                      about_type text, about_id text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                     subject_type, subject_id)
    SELECT spor_queue_to_account.organisation, a.id, a.email, spor_queue_to_account.template, spor_queue_to_account.subject,
           spor_queue_to_account.body, spor_queue_to_account.about_type, spor_queue_to_account.about_id
    FROM accounts a WHERE a.id = spor_queue_to_account.account
$$;
COMMENT ON FUNCTION spor_queue_to_account(uuid, text, text, text, text, text, text) IS 'R16: queues a message to an account at its own address. Owner only.';

CREATE FUNCTION spor_queue_to_super_users(organisation text, template text, subject text, body text,
                                          about_type text, about_id text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                     subject_type, subject_id)
    SELECT r.organisation_id, a.id, a.email, spor_queue_to_super_users.template, spor_queue_to_super_users.subject,
           spor_queue_to_super_users.body, spor_queue_to_super_users.about_type, spor_queue_to_super_users.about_id
    FROM role_assignments r JOIN accounts a ON a.id = r.account_id
    WHERE r.organisation_id = spor_queue_to_super_users.organisation AND r.role = 'spor-industry-super-user' AND r.revoked_at IS NULL
      AND a.status = 'active'
    ORDER BY a.id
$$;
COMMENT ON FUNCTION spor_queue_to_super_users(text, text, text, text, text, text) IS 'R16: queues a message to every active super user of the organisation. Owner only.';

CREATE FUNCTION spor_audit(actor uuid, organisation text, action text, subject_type text, subject_id text,
                           before_state jsonb, after_state jsonb) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
    VALUES (spor_audit.organisation, spor_audit.actor, spor_audit.action, spor_audit.subject_type, spor_audit.subject_id,
            spor_audit.before_state, spor_audit.after_state)
$$;
COMMENT ON FUNCTION spor_audit(uuid, text, text, text, text, jsonb, jsonb) IS 'R15: appends an audit event (the triggers check actor and organisation). Owner only.';

-- R11: records the routing decided now for a pending request, audits it, tells the new approvers.
CREATE FUNCTION spor_reroute_locked(request access_requests, kind text, actor uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE access_requests SET approver_kind = kind WHERE id = request.id;
    PERFORM spor_audit(actor, request.organisation_id, 'access-request.rerouted', 'access_request', request.id::text,
                       jsonb_build_object('approverKind', request.approver_kind), jsonb_build_object('approverKind', kind));
    IF kind = 'organisation-super-users' THEN
        PERFORM spor_queue_to_super_users(request.organisation_id, 'request-filed',
            'Access request ' || request.id || ' is now yours to decide',
            request.organisation_id || ' has a super user now, so request ' || request.id || ' for ' || request.role
                || ' is decided by its super users.',
            'access_request', request.id::text);
    ELSE
        PERFORM spor_queue_to_account(request.requester_id, request.organisation_id, 'request-filed-first-super-user',
            'Your access request ' || request.id || ': open a service desk ticket',
            request.organisation_id || ' has no super user any more, so your request ' || request.id
                || ' is approved by the EMA service desk. Open a service request with "SPOR super user role access – request ID '
                || request.id || '" in the subject and attach the signed SPOR User Affiliation Template Letter.',
            'access_request', request.id::text);
    END IF;
END
$$;
COMMENT ON FUNCTION spor_reroute_locked(access_requests, text, uuid) IS 'R11: re-routes a pending request (caller holds the lock), with audit and messages. Owner only.';

-- The routing a pending organisation request has now (R8, R11).
CREATE FUNCTION spor_current_route(wanted_role text, super_users integer) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp
    RETURN CASE WHEN wanted_role = 'spor-unaffiliated-user' THEN 'automatic'
                WHEN wanted_role = 'spor-industry-super-user' AND super_users = 0 THEN 'ema-service-desk'
                ELSE 'organisation-super-users' END;

------------------------------------------------------------------------------------------------------------
-- File a request (R3–R9, R18; R5 grants the unaffiliated role at once)
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_submission_facts(token text, wanted_role text, organisation text)
    RETURNS TABLE (actor uuid, account_active boolean, security_questions_set boolean, organisation_exists boolean,
                   active_super_users integer, pending_same_role boolean, holds_role boolean, now timestamptz,
                   activation_delay_seconds double precision, request_lifetime_seconds double precision)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
    exists_active boolean := organisation IS NOT NULL
        AND EXISTS (SELECT 1 FROM organisations o WHERE o.id = organisation AND o.status = 'active');
BEGIN
    RETURN QUERY
    SELECT a.id, a.status = 'active',
           a.security_questions_waived OR EXISTS (SELECT 1 FROM security_answers q WHERE q.account_id = a.id),
           exists_active,
           CASE WHEN exists_active THEN spor_active_super_user_count(organisation) ELSE 0 END,
           EXISTS (SELECT 1 FROM access_requests r WHERE r.requester_id = a.id AND r.role = wanted_role
                   AND r.organisation_id IS NOT DISTINCT FROM organisation AND r.status = 'pending'),
           EXISTS (SELECT 1 FROM role_assignments g WHERE g.account_id = a.id AND g.role = wanted_role
                   AND g.organisation_id IS NOT DISTINCT FROM organisation AND g.revoked_at IS NULL),
           now(),
           extract(epoch FROM s.unaffiliated_activation_delay)::float8,
           extract(epoch FROM s.request_lifetime)::float8
    FROM accounts a, settings s WHERE a.id = account;
END
$$;
COMMENT ON FUNCTION spor_submission_facts(text, text, text) IS 'What ApprovalPolicy.submit decides on, for the account of the token (no lock).';

CREATE FUNCTION spor_file_request(token text, wanted_role text, organisation text, justification text)
    RETURNS spor_request_outcome
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
    super_users integer := 0;
    kind text;
    request_id bigint;
    assignment bigint;
    effective timestamptz;
    requester_email text;
    lifetime interval;
    delay interval;
BEGIN
    SELECT s.request_lifetime, s.unaffiliated_activation_delay INTO lifetime, delay FROM settings s;
    IF organisation IS NOT NULL AND EXISTS (SELECT 1 FROM organisations o WHERE o.id = organisation AND o.status = 'active') THEN
        PERFORM spor_lock_organisation_for(organisation, false);
        super_users := spor_active_super_user_count(organisation);
    END IF;
    kind := spor_current_route(wanted_role, super_users);
    -- r8_route_new_request checks everything again (account, answers, organisation, R7, R9, routing).
    INSERT INTO access_requests (organisation_id, requester_id, role, justification, status, approver_kind, expires_at, decided_at)
    VALUES (organisation, actor, wanted_role, justification,
            CASE WHEN kind = 'automatic' THEN 'approved' ELSE 'pending' END, kind,
            CASE WHEN kind = 'automatic' THEN NULL ELSE now() + lifetime END,
            CASE WHEN kind = 'automatic' THEN now() END)
    RETURNING id INTO request_id;
    PERFORM spor_audit(actor, organisation, 'access-request.submitted', 'access_request', request_id::text, NULL,
        jsonb_build_object('role', wanted_role, 'status', CASE WHEN kind = 'automatic' THEN 'approved' ELSE 'pending' END,
                           'approverKind', kind));

    IF kind = 'automatic' THEN
        effective := now() + delay;
        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user, effective_from)
        VALUES (NULL, actor, wanted_role, 'access-request', request_id, false, effective)
        RETURNING id INTO assignment;
        PERFORM spor_audit(actor, NULL, 'role-assignment.granted', 'role_assignment', assignment::text, NULL,
            jsonb_build_object('role', wanted_role, 'account', actor::text, 'accessRequest', request_id::text));
        PERFORM spor_queue_to_account(actor, NULL, 'request-decided', 'Your access request ' || request_id || ' is approved',
            'The system approved your request for the SPOR Unaffiliated User role. It is effective from '
                || to_char(effective AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '.',
            'access_request', request_id::text);
    ELSIF kind = 'ema-service-desk' THEN
        PERFORM spor_queue_to_account(actor, organisation, 'request-filed-first-super-user',
            'Your access request ' || request_id || ': open a service desk ticket',
            'Your request ' || request_id || ' for the SPOR Industry Super User role of ' || organisation
                || ' is approved by the EMA service desk. Open a service request with "SPOR super user role access – request ID '
                || request_id || '" in the subject and attach the signed SPOR User Affiliation Template Letter.',
            'access_request', request_id::text);
    ELSE
        SELECT a.email INTO requester_email FROM accounts a WHERE a.id = actor;
        PERFORM spor_queue_to_super_users(organisation, 'request-filed',
            'New access request ' || request_id || ' for ' || organisation,
            requester_email || ' asks for the role ' || wanted_role || ' in ' || organisation
                || '. Approve or reject it in the Account Management portal.',
            'access_request', request_id::text);
    END IF;
    RETURN spor_request_outcome(request_id, assignment);
END
$$;
COMMENT ON FUNCTION spor_file_request(text, text, text, text) IS 'Files a request for the account of the token, in one call: routing under the shared organisation lock, audit, messages; the unaffiliated role is granted at once (R5).';

------------------------------------------------------------------------------------------------------------
-- Decide, re-route, cancel a request (R8, R10–R13, R18)
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_decision_facts(token text, request bigint)
    RETURNS TABLE (id bigint, organisation_id text, requester_id uuid, role text, justification text, status text,
                   approver_kind text, created_at timestamptz, expires_at timestamptz, decided_by uuid,
                   decided_at timestamptz, decision_reason text,
                   actor uuid, staff_roles text[], active_super_users integer, actor_is_super_user boolean,
                   has_open_ticket boolean, now timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
    r access_requests%ROWTYPE;
BEGIN
    SELECT * INTO r FROM access_requests q WHERE q.id = request;
    IF NOT FOUND OR NOT spor_actor_may_see(account, r.organisation_id, r.requester_id) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access request ' || request || ' not found.');
    END IF;
    RETURN QUERY
    SELECT r.id, r.organisation_id, r.requester_id, r.role, r.justification, r.status, r.approver_kind, r.created_at,
           r.expires_at, r.decided_by, r.decided_at, r.decision_reason,
           account,
           ARRAY(SELECT s.role FROM staff_roles s WHERE s.account_id = account AND spor_has_staff_role(account, s.role) ORDER BY s.role),
           CASE WHEN r.organisation_id IS NULL THEN 0 ELSE spor_active_super_user_count(r.organisation_id) END,
           r.organisation_id IS NOT NULL AND spor_is_active_super_user(account, r.organisation_id),
           EXISTS (SELECT 1 FROM service_desk_tickets t WHERE t.access_request_id = r.id AND t.status = 'open'),
           now();
END
$$;
COMMENT ON FUNCTION spor_decision_facts(text, bigint) IS 'What ApprovalPolicy.decide (and cancel) decides on: the request as the account of the token may see it (R13), its organisation''s super users, the actor''s staff roles, an open ticket (no lock).';

-- Locks the request's organisation in the mode its decision needs and re-routes a pending request whose routing no
-- longer holds (R11); whether it did.
CREATE FUNCTION spor_lock_and_route(request bigint, actor uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r access_requests%ROWTYPE;
    kind text;
BEGIN
    SELECT * INTO r FROM access_requests q WHERE q.id = request;
    IF NOT FOUND OR NOT spor_actor_may_see(actor, r.organisation_id, r.requester_id) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access request ' || request || ' not found.');
    END IF;
    IF r.organisation_id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM spor_lock_organisation_for(r.organisation_id, r.role = 'spor-industry-super-user');
    SELECT * INTO r FROM access_requests q WHERE q.id = request;
    IF r.status = 'pending' THEN
        kind := spor_current_route(r.role, spor_active_super_user_count(r.organisation_id));
        IF kind <> r.approver_kind THEN
            PERFORM spor_reroute_locked(r, kind, actor);
            RETURN true;
        END IF;
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION spor_lock_and_route(bigint, uuid) IS 'R11: takes the request''s organisation lock and re-routes the request when its routing no longer holds (true if it did). Owner only.';

CREATE FUNCTION spor_reroute_request(token text, request bigint) RETURNS spor_request_outcome
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM spor_lock_and_route(request, spor_authenticate(token));
    RETURN spor_request_outcome(request, NULL);
END
$$;
COMMENT ON FUNCTION spor_reroute_request(text, bigint) IS 'R11: re-routes a pending request to its current approvers (when the Swift policy refuses the decision after a re-route, the re-route still stands).';

CREATE FUNCTION spor_decide_request(token text, request bigint, approve boolean, reason text,
                                    stop_after_reroute boolean DEFAULT true) RETURNS spor_request_outcome
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
    r access_requests%ROWTYPE;
    decided text := CASE WHEN approve THEN 'approved' ELSE 'rejected' END;
    assignment bigint;
    ticket record;
    outcome spor_request_outcome;
BEGIN
    -- The routing changed since the caller read the facts (a first super user was granted, or the last one left):
    -- by default the re-route is committed and the caller decides again on it (R11), rather than the decision being
    -- refused and the re-route rolled back with it. With stop_after_reroute false the decision is made on the new
    -- routing in the same call (a refusal then undoes the re-route too).
    IF spor_lock_and_route(request, actor) AND stop_after_reroute THEN
        outcome := spor_request_outcome(request, NULL);
        outcome.rerouted := true;
        RETURN outcome;
    END IF;
    SELECT * INTO r FROM access_requests q WHERE q.id = request;
    -- r11_decide_request decides again under the lock: self-approval, routing, ticket, super user, reason, expiry.
    UPDATE access_requests SET status = decided, decided_by = actor, decided_at = now(), decision_reason = reason
    WHERE id = request;
    PERFORM spor_audit(actor, r.organisation_id, 'access-request.' || decided, 'access_request', request::text,
        jsonb_build_object('status', 'pending'), jsonb_build_object('status', decided, 'reason', coalesce(reason, '')));
    IF approve THEN
        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user)
        VALUES (r.organisation_id, r.requester_id, r.role, 'access-request', request, r.approver_kind = 'ema-service-desk')
        RETURNING id INTO assignment;
        PERFORM spor_audit(actor, r.organisation_id, 'role-assignment.granted', 'role_assignment', assignment::text, NULL,
            jsonb_build_object('role', r.role, 'account', r.requester_id::text, 'accessRequest', request::text));
    END IF;
    -- A first-super-user decision resolves its open service desk ticket (R10).
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
    PERFORM spor_queue_to_account(r.requester_id, r.organisation_id, 'request-decided',
        'Your access request ' || request || ' is ' || decided,
        'Your request for the role ' || r.role || coalesce(' in ' || r.organisation_id, '') || ' was ' || decided || '.'
            || coalesce(' Comment: ' || reason, ''),
        'access_request', request::text);
    RETURN spor_request_outcome(request, assignment);
END
$$;
COMMENT ON FUNCTION spor_decide_request(text, bigint, boolean, text, boolean) IS 'Approves (granting the role) or rejects a request for the account of the token, in one call: lock in the mode the decision needs, re-route if due (R11), decision checked by r11_decide_request, ticket resolved (R10), audit, messages.';

CREATE FUNCTION spor_cancel_request(token text, request bigint) RETURNS spor_request_outcome
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
    r access_requests%ROWTYPE;
BEGIN
    SELECT * INTO r FROM access_requests q WHERE q.id = request;
    IF NOT FOUND OR NOT spor_actor_may_see(actor, r.organisation_id, r.requester_id) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access request ' || request || ' not found.');
    END IF;
    UPDATE access_requests SET status = 'cancelled', decided_by = actor, decided_at = now() WHERE id = request;
    PERFORM spor_audit(actor, r.organisation_id, 'access-request.cancelled', 'access_request', request::text,
        jsonb_build_object('status', r.status), jsonb_build_object('status', 'cancelled'));
    RETURN spor_request_outcome(request, NULL);
END
$$;
COMMENT ON FUNCTION spor_cancel_request(text, bigint) IS 'Cancels one''s own pending request (R18), in one call, with audit.';

------------------------------------------------------------------------------------------------------------
-- Revoke a role (R14)
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_revocation_facts(token text, assignment bigint)
    RETURNS TABLE (id bigint, organisation_id text, account_id uuid, role text, access_request_id bigint,
                   first_super_user boolean, effective_from timestamptz, revoked_at timestamptz,
                   actor uuid, staff_roles text[], active_super_users integer, actor_is_super_user boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
    g role_assignments%ROWTYPE;
BEGIN
    SELECT * INTO g FROM role_assignments x WHERE x.id = assignment;
    IF NOT FOUND OR NOT spor_actor_may_see(account, g.organisation_id, g.account_id) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Role assignment not found.');
    END IF;
    RETURN QUERY
    SELECT g.id, g.organisation_id, g.account_id, g.role, g.access_request_id, g.first_super_user, g.effective_from, g.revoked_at,
           account,
           ARRAY(SELECT s.role FROM staff_roles s WHERE s.account_id = account AND spor_has_staff_role(account, s.role) ORDER BY s.role),
           CASE WHEN g.organisation_id IS NULL THEN 0 ELSE spor_active_super_user_count(g.organisation_id) END,
           g.organisation_id IS NOT NULL AND spor_is_active_super_user(account, g.organisation_id);
END
$$;
COMMENT ON FUNCTION spor_revocation_facts(text, bigint) IS 'What ApprovalPolicy.revoke decides on: the assignment as the account of the token may see it (R13), its organisation''s super users, the actor''s staff roles (no lock).';

CREATE FUNCTION spor_revoke_assignment(token text, assignment bigint, reason text, dropped boolean)
    RETURNS TABLE (id bigint, organisation_id text, account_id uuid, role text, access_request_id bigint,
                   first_super_user boolean, effective_from timestamptz, revoked_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    actor uuid := spor_authenticate(token);
    g role_assignments%ROWTYPE;
BEGIN
    SELECT * INTO g FROM role_assignments x WHERE x.id = assignment;
    IF NOT FOUND OR NOT spor_actor_may_see(actor, g.organisation_id, g.account_id) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Role assignment not found.');
    END IF;
    -- r14_revoke_assignment takes the lock in the right mode and decides again under it.
    UPDATE role_assignments x SET revoked_at = now(), revoked_by = actor, revoke_reason = reason WHERE x.id = assignment;
    PERFORM spor_audit(actor, g.organisation_id, CASE WHEN dropped THEN 'role-assignment.dropped' ELSE 'role-assignment.revoked' END,
        'role_assignment', assignment::text, jsonb_build_object('role', g.role, 'account', g.account_id::text),
        jsonb_build_object('revoked', 'true'));
    RETURN QUERY
    SELECT x.id, x.organisation_id, x.account_id, x.role, x.access_request_id, x.first_super_user, x.effective_from, x.revoked_at
    FROM role_assignments x WHERE x.id = assignment;
END
$$;
COMMENT ON FUNCTION spor_revoke_assignment(text, bigint, text, boolean) IS 'Revokes (or, by its holder, drops) a role assignment in one call; r14_revoke_assignment decides under the lock (R14).';

------------------------------------------------------------------------------------------------------------
-- Privileges: the entry points for spor_app; the helpers stay the owner's.
------------------------------------------------------------------------------------------------------------
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'spor_lock_organisation_for(text, boolean)', 'spor_request_outcome(bigint, bigint)',
        'spor_actor_may_see(uuid, text, uuid)', 'spor_queue_to_account(uuid, text, text, text, text, text, text)',
        'spor_queue_to_super_users(text, text, text, text, text, text)', 'spor_audit(uuid, text, text, text, text, jsonb, jsonb)',
        'spor_reroute_locked(access_requests, text, uuid)', 'spor_current_route(text, integer)',
        'spor_lock_and_route(bigint, uuid)',
        'spor_submission_facts(text, text, text)', 'spor_file_request(text, text, text, text)',
        'spor_decision_facts(text, bigint)', 'spor_reroute_request(text, bigint)',
        'spor_decide_request(text, bigint, boolean, text, boolean)', 'spor_cancel_request(text, bigint)',
        'spor_revocation_facts(text, bigint)', 'spor_revoke_assignment(text, bigint, text, boolean)']::regprocedure[]
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION
    spor_submission_facts(text, text, text),
    spor_file_request(text, text, text, text),
    spor_decision_facts(text, bigint),
    spor_reroute_request(text, bigint),
    spor_decide_request(text, bigint, boolean, text, boolean),
    spor_cancel_request(text, bigint),
    spor_revocation_facts(text, bigint),
    spor_revoke_assignment(text, bigint, text, boolean)
TO spor_app;
