-- 0041 — R21 (issue 12): time-bound grants.
--
-- A request may ask for access until a date (access_requests.access_until); the approver may shorten it, never
-- lengthen it (role_assignments.ends_at, at most the requested end; an approver may also end an open-ended request's
-- grant). An assignment past its end is no longer active for every rule that counts active roles — R8 routing, R9,
-- R13 visibility, R14 the last super user — from the moment of its end, before any job has run: "active" is now
--     revoked_at IS NULL AND (ends_at IS NULL OR ends_at > spor_job_now())
-- (spor_job_now() is now() in production; tests move it forward with settings.job_clock_offset).
-- The grants job (spor_end_lapsed_grants, worker only) then ends each lapsed assignment for good: revoked_at = its
-- end, revoked_by NULL, lapsed = true (the clock ended it, nobody revoked it), audited (role-assignment.ended), its
-- holder told (grant-ended); a super user's lapse that leaves the organisation without a super user tells the
-- service desk (grant-ended, about the organisation), and R20 hands the organisation's waiting requests on.
-- Before the end, spor_send_grant_notices (worker only) tells the holder and the organisation's super users
-- settings.grant_notice_days before (14 and 3 days by default), once per threshold (grant_notices' key), and the
-- service desk too when the grant is a super user's and no other super user's grant outlasts it.
-- Renewal is a new request: a role held until a date may be requested again (R7 refuses only roles held without an
-- end), and approving the renewal ends the old assignment as it grants the new one.

------------------------------------------------------------------------------------------------------------
-- Settings, columns, constraints
------------------------------------------------------------------------------------------------------------
ALTER TABLE settings
    ADD COLUMN grant_notice_days integer[] NOT NULL DEFAULT '{14,3}'
        CONSTRAINT grant_notice_days_positive CHECK (0 < ALL (grant_notice_days) AND cardinality(grant_notice_days) <= 10);
COMMENT ON COLUMN settings.grant_notice_days IS 'R21: how many days before a time-bound grant ends its holder and the organisation''s super users are told (once per value).';

ALTER TABLE access_requests ADD COLUMN access_until timestamptz;
ALTER TABLE access_requests ADD CONSTRAINT r21_access_until_after_filing
    CHECK (access_until IS NULL OR access_until > created_at);
ALTER TABLE access_requests ADD CONSTRAINT r21_organisation_roles_only
    CHECK (access_until IS NULL OR role <> 'spor-unaffiliated-user');
COMMENT ON COLUMN access_requests.access_until IS 'R21: the end of access the requester asked for (NULL: no end).';

ALTER TABLE role_assignments
    ADD COLUMN ends_at timestamptz,
    ADD COLUMN lapsed boolean NOT NULL DEFAULT false;
ALTER TABLE role_assignments ADD CONSTRAINT r21_ends_after_start CHECK (ends_at IS NULL OR ends_at > effective_from);
ALTER TABLE role_assignments ADD CONSTRAINT r21_organisation_roles_only
    CHECK (ends_at IS NULL OR role <> 'spor-unaffiliated-user');
ALTER TABLE role_assignments DROP CONSTRAINT revocation_is_complete;
-- Revoked by someone, or ended by the clock at its end (lapsed), or neither yet.
ALTER TABLE role_assignments ADD CONSTRAINT r21_revocation_is_complete CHECK (
    (revoked_at IS NULL AND revoked_by IS NULL AND NOT lapsed)
    OR (revoked_at IS NOT NULL AND revoked_by IS NOT NULL AND NOT lapsed)
    OR (revoked_at IS NOT NULL AND revoked_by IS NULL AND lapsed AND revoked_at = ends_at));
COMMENT ON COLUMN role_assignments.ends_at IS 'R21: when the assignment stops being active (NULL: no end). Never changes.';
COMMENT ON COLUMN role_assignments.lapsed IS 'R21: the assignment ended at ends_at (revoked_at = ends_at, revoked_by NULL), not by a revocation.';
CREATE INDEX r21_grants_ending ON role_assignments (ends_at) WHERE revoked_at IS NULL AND ends_at IS NOT NULL;

-- The clock of grant ends is called by the service's own reads (members, my roles); it tells nothing but the clock.
-- (The reporting views read settings themselves: analysts execute no definer function.)
GRANT EXECUTE ON FUNCTION spor_job_now() TO spor_app;

------------------------------------------------------------------------------------------------------------
-- "Active" excludes assignments past their end (R8, R9, R13, R14, R16's recipients)
------------------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION spor_is_active_super_user(account uuid, organisation text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN EXISTS (SELECT 1 FROM role_assignments r JOIN accounts a ON a.id = r.account_id
                   WHERE r.organisation_id = organisation AND r.account_id = account
                     AND r.role = 'spor-industry-super-user' AND r.revoked_at IS NULL
                     AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active');

CREATE OR REPLACE FUNCTION spor_active_super_user_count(organisation text) RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN (SELECT count(*) FROM role_assignments r JOIN accounts a ON a.id = r.account_id
            WHERE r.organisation_id = organisation AND r.role = 'spor-industry-super-user'
              AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active');

CREATE OR REPLACE FUNCTION spor_actor_super_user_organisations() RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.organisation_id FROM role_assignments r JOIN accounts a ON a.id = r.account_id
    WHERE r.account_id = spor_actor() AND r.role = 'spor-industry-super-user'
      AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active'
$$;

CREATE OR REPLACE FUNCTION spor_queue_to_super_users(organisation text, template text, subject text, body text,
                                                     about_type text, about_id text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                     subject_type, subject_id)
    SELECT r.organisation_id, a.id, a.email, spor_queue_to_super_users.template, spor_queue_to_super_users.subject,
           spor_queue_to_super_users.body, spor_queue_to_super_users.about_type, spor_queue_to_super_users.about_id
    FROM role_assignments r JOIN accounts a ON a.id = r.account_id
    WHERE r.organisation_id = spor_queue_to_super_users.organisation AND r.role = 'spor-industry-super-user'
      AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active'
    ORDER BY a.id
$$;

-- R16's check names the same recipients: the active super users.
CREATE OR REPLACE FUNCTION r16_message_required() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    fields jsonb := to_jsonb(NEW);
    subject_key text := fields ->> TG_ARGV[1];
    wanted text := TG_ARGV[2];
    missing uuid;
BEGIN
    IF TG_ARGV[3] = 'super-users' THEN
        SELECT r.account_id INTO missing
        FROM role_assignments r JOIN accounts a ON a.id = r.account_id
        WHERE r.organisation_id = fields ->> 'organisation_id' AND r.role = 'spor-industry-super-user'
          AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM notification_outbox o
                          WHERE o.subject_type = TG_ARGV[0] AND o.subject_id = subject_key
                            AND o.transaction_id = txid_current() AND o.template = wanted
                            AND o.recipient_account_id = r.account_id AND o.recipient_email = a.email)
        LIMIT 1;
    ELSE
        missing := (fields ->> TG_ARGV[3])::uuid;
        IF EXISTS (SELECT 1 FROM notification_outbox o JOIN accounts a ON a.id = o.recipient_account_id
                   WHERE o.subject_type = TG_ARGV[0] AND o.subject_id = subject_key
                     AND o.transaction_id = txid_current() AND o.template = wanted
                     AND o.recipient_account_id = missing AND o.recipient_email = a.email) THEN
            missing := NULL;
        END IF;
    END IF;
    IF missing IS NOT NULL OR NOT EXISTS (SELECT 1 FROM notification_outbox o
                                          WHERE o.subject_type = TG_ARGV[0] AND o.subject_id = subject_key
                                            AND o.transaction_id = txid_current() AND o.template = wanted) THEN
        PERFORM spor_refuse('R16', 'notification-required',
            'change of ' || TG_ARGV[0] || ' ' || subject_key || ' needs its ' || wanted || ' message to '
            || CASE WHEN TG_ARGV[3] = 'super-users' THEN 'every active super user of its organisation'
                    ELSE 'account ' || coalesce(missing::text, fields ->> TG_ARGV[3]) END
            || ' in its transaction');
    END IF;
    RETURN NULL;
END
$$;

------------------------------------------------------------------------------------------------------------
-- R21 on requests: the end asked for is in the future and never changes
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r21_request_end() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.access_until IS DISTINCT FROM OLD.access_until THEN
            PERFORM spor_refuse('R18', 'immutable', 'what was requested never changes');
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.access_until IS NOT NULL THEN
        IF NEW.role = 'spor-unaffiliated-user' THEN
            PERFORM spor_refuse('R21', 'validation-failed', 'the unaffiliated role has no end date');
        END IF;
        IF NEW.access_until <= now() THEN
            PERFORM spor_refuse('R21', 'grant-end-in-past', 'access cannot end before it is granted: choose a later date');
        END IF;
    END IF;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION r21_request_end() FROM PUBLIC;
CREATE TRIGGER r21_request_end BEFORE INSERT OR UPDATE ON access_requests
    FOR EACH ROW EXECUTE FUNCTION r21_request_end();
COMMENT ON FUNCTION r21_request_end() IS 'R21: a requested end of access is a future date, for an organisation role, and never changes.';

------------------------------------------------------------------------------------------------------------
-- R21 on grants: at most the requested end, in the future, never changed
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r21_grant_end() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    asked timestamptz;
BEGIN
    IF NEW.lapsed THEN
        PERFORM spor_refuse('R21', 'not-authorised', 'an assignment starts active');
    END IF;
    IF NEW.source = 'access-request' THEN
        SELECT r.access_until INTO asked FROM access_requests r WHERE r.id = NEW.access_request_id;
        IF asked IS NOT NULL AND NEW.ends_at IS NULL THEN
            NEW.ends_at := asked;
        END IF;
        IF NEW.ends_at > asked THEN
            PERFORM spor_refuse('R21', 'grant-lengthened',
                'access may end earlier than requested (' || to_char(asked AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '), never later');
        END IF;
    END IF;
    IF NEW.ends_at IS NOT NULL AND NEW.ends_at <= now() THEN
        PERFORM spor_refuse('R21', 'grant-end-in-past', 'access cannot end before it is granted: choose a later date');
    END IF;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION r21_grant_end() FROM PUBLIC;
CREATE TRIGGER r21_grant_end BEFORE INSERT ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION r21_grant_end();
COMMENT ON FUNCTION r21_grant_end() IS 'R21: a grant ends at most when its request asked (by default then), and in the future.';

-- R14 and R21: revocation or the end by the clock are the only changes to an assignment. A revocation is made by
-- the holder, a super user of the organisation or the service desk, never of the last active super user except by
-- the service desk, and never of an assignment already past its end; the end by the clock (lapsed) needs nobody,
-- only the clock: it is refused before ends_at.
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
       OR NEW.first_super_user <> OLD.first_super_user OR NEW.ends_at IS DISTINCT FROM OLD.ends_at THEN
        PERFORM spor_refuse('R14', 'immutable', 'only revocation changes a role assignment');
    END IF;
    IF OLD.revoked_at IS NOT NULL THEN
        PERFORM spor_refuse('R14', 'not-found', 'the role was already revoked');
    END IF;
    IF NEW.revoked_at IS NULL THEN
        IF NEW.lapsed THEN
            PERFORM spor_refuse('R21', 'not-authorised', 'an assignment ends by its end time');
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.lapsed THEN
        IF OLD.ends_at IS NULL OR OLD.ends_at > spor_job_now() OR NEW.revoked_by IS NOT NULL THEN
            PERFORM spor_refuse('R21', 'not-authorised', 'only the clock ends an assignment, at its end time');
        END IF;
        NEW.revoked_at := OLD.ends_at;
        PERFORM spor_lock_organisation_for(OLD.organisation_id, OLD.role = 'spor-industry-super-user');
        RETURN NEW;
    END IF;
    IF actor IS NULL OR NEW.revoked_by IS DISTINCT FROM actor THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'revoked_by must be the acting account');
    END IF;
    IF OLD.ends_at IS NOT NULL AND OLD.ends_at <= spor_job_now() THEN
        PERFORM spor_refuse('R14', 'not-found', 'the role ended at ' || OLD.ends_at);
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
          AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active'
          AND r.id <> OLD.id;
        IF remaining = 0 AND NOT spor_has_staff_role(actor, 'ema-service-desk') THEN
            PERFORM spor_refuse('R14', 'last-super-user',
                'the last super user of ' || OLD.organisation_id || ' can only be removed by the EMA service desk');
        END IF;
    END IF;
    RETURN NEW;
END
$$;

------------------------------------------------------------------------------------------------------------
-- R7 with renewal: a role held until a date may be requested again
------------------------------------------------------------------------------------------------------------
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
        PERFORM spor_lock_organisation_for(NEW.organisation_id, false);
    END IF;
    -- R7, R21: a role held without an end is held; one held until a date may be renewed by a new request.
    IF EXISTS (SELECT 1 FROM role_assignments
               WHERE account_id = NEW.requester_id AND role = NEW.role
                 AND organisation_id IS NOT DISTINCT FROM NEW.organisation_id AND revoked_at IS NULL AND ends_at IS NULL) THEN
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

-- The Swift half reads the same fact: holds_role is a role held without an end.
CREATE OR REPLACE FUNCTION spor_submission_facts(token text, wanted_role text, organisation text)
    RETURNS TABLE (actor uuid, account_active boolean, security_questions_set boolean, organisation_exists boolean,
                   active_super_users integer, pending_same_role boolean, holds_role boolean, now timestamptz,
                   activation_delay_seconds double precision, request_lifetime_seconds double precision)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    account uuid := spor_authenticate(token);
    a accounts%ROWTYPE;
    exists_active boolean := organisation IS NOT NULL
        AND EXISTS (SELECT 1 FROM organisations o WHERE o.id = organisation AND o.status = 'active');
    delay interval;
    lifetime interval;
BEGIN
    SELECT * INTO a FROM accounts x WHERE x.id = account;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT s.unaffiliated_activation_delay, s.request_lifetime INTO delay, lifetime FROM settings s;
    actor := account;
    account_active := a.status = 'active';
    security_questions_set := a.security_questions_waived
        OR EXISTS (SELECT 1 FROM security_answers q WHERE q.account_id = account);
    organisation_exists := exists_active;
    active_super_users := CASE WHEN exists_active THEN spor_active_super_user_count(organisation) ELSE 0 END;
    pending_same_role := EXISTS (SELECT 1 FROM access_requests r WHERE r.requester_id = account AND r.role = wanted_role
                                 AND r.organisation_id IS NOT DISTINCT FROM organisation AND r.status = 'pending');
    holds_role := EXISTS (SELECT 1 FROM role_assignments g WHERE g.account_id = account AND g.role = wanted_role
                          AND g.organisation_id IS NOT DISTINCT FROM organisation AND g.revoked_at IS NULL
                          AND g.ends_at IS NULL);
    now := now();
    activation_delay_seconds := extract(epoch FROM delay)::float8;
    request_lifetime_seconds := extract(epoch FROM lifetime)::float8;
    RETURN NEXT;
END
$$;

------------------------------------------------------------------------------------------------------------
-- The commands carry the end: file (asked for), decide (granted), and return both
------------------------------------------------------------------------------------------------------------
ALTER TYPE spor_request_outcome ADD ATTRIBUTE access_until timestamptz, ADD ATTRIBUTE grant_ends_at timestamptz;

CREATE OR REPLACE FUNCTION spor_request_outcome(request bigint, assignment bigint) RETURNS spor_request_outcome
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id, r.organisation_id, r.requester_id, r.role, r.justification, r.status, r.approver_kind, r.created_at,
           r.expires_at, r.decided_by, r.decided_at, r.decision_reason,
           g.id, g.organisation_id, g.account_id, g.role, g.access_request_id, g.first_super_user, g.effective_from, g.revoked_at,
           false, r.access_until, g.ends_at
    FROM access_requests r LEFT JOIN role_assignments g ON g.id = spor_request_outcome.assignment
    WHERE r.id = spor_request_outcome.request
$$;

DROP FUNCTION spor_file_request(text, text, text, text);
CREATE FUNCTION spor_file_request(token text, wanted_role text, organisation text, justification text,
                                  access_until timestamptz DEFAULT NULL)
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
    -- r8_route_new_request and r21_request_end check everything again (account, answers, organisation, R7, R9,
    -- routing, the end asked for).
    INSERT INTO access_requests (organisation_id, requester_id, role, justification, status, approver_kind, expires_at,
                                 decided_at, access_until)
    VALUES (organisation, actor, wanted_role, justification,
            CASE WHEN kind = 'automatic' THEN 'approved' ELSE 'pending' END, kind,
            CASE WHEN kind = 'automatic' THEN NULL ELSE now() + lifetime END,
            CASE WHEN kind = 'automatic' THEN now() END, spor_file_request.access_until)
    RETURNING id INTO request_id;
    PERFORM spor_audit(actor, organisation, 'access-request.submitted', 'access_request', request_id::text, NULL,
        jsonb_build_object('role', wanted_role, 'status', CASE WHEN kind = 'automatic' THEN 'approved' ELSE 'pending' END,
                           'approverKind', kind)
        || CASE WHEN spor_file_request.access_until IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('accessUntil', spor_file_request.access_until) END);

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
                || coalesce(' until ' || to_char(spor_file_request.access_until AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '')
                || '. Approve or reject it in the Account Management portal.',
            'access_request', request_id::text);
    END IF;
    RETURN spor_request_outcome(request_id, assignment);
END
$$;
COMMENT ON FUNCTION spor_file_request(text, text, text, text, timestamptz) IS 'Files a request for the account of the token, in one call: routing under the shared organisation lock, audit, messages; the unaffiliated role is granted at once (R5); access_until asks for access until a date (R21).';

DROP FUNCTION spor_decide_request(text, bigint, boolean, text, boolean);
CREATE FUNCTION spor_decide_request(token text, request bigint, approve boolean, reason text,
                                    stop_after_reroute boolean DEFAULT true, grant_until timestamptz DEFAULT NULL)
    RETURNS spor_request_outcome
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
    r access_requests%ROWTYPE;
    decided text := CASE WHEN approve THEN 'approved' ELSE 'rejected' END;
    assignment bigint;
    previous role_assignments%ROWTYPE;
    ticket record;
    outcome spor_request_outcome;
BEGIN
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
        -- R21 renewal: the role held until a date ends as the renewal grants it again (by the clock if its end has
        -- passed, else revoked by the approver).
        SELECT * INTO previous FROM role_assignments g
        WHERE g.account_id = r.requester_id AND g.role = r.role AND g.organisation_id IS NOT DISTINCT FROM r.organisation_id
          AND g.revoked_at IS NULL;
        IF FOUND THEN
            IF previous.ends_at <= spor_job_now() THEN
                PERFORM spor_end_assignment_locked(previous);
            ELSE
                UPDATE role_assignments g SET revoked_at = now(), revoked_by = actor,
                       revoke_reason = 'renewed by access request ' || request
                WHERE g.id = previous.id;
                PERFORM spor_audit(actor, r.organisation_id, 'role-assignment.revoked', 'role_assignment', previous.id::text,
                    jsonb_build_object('role', previous.role, 'account', previous.account_id::text),
                    jsonb_build_object('revoked', 'true', 'renewedBy', request::text));
            END IF;
        END IF;
        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user, ends_at)
        VALUES (r.organisation_id, r.requester_id, r.role, 'access-request', request, r.approver_kind = 'ema-service-desk',
                coalesce(grant_until, r.access_until))
        RETURNING id INTO assignment;
        PERFORM spor_audit(actor, r.organisation_id, 'role-assignment.granted', 'role_assignment', assignment::text, NULL,
            jsonb_build_object('role', r.role, 'account', r.requester_id::text, 'accessRequest', request::text)
            || coalesce(jsonb_build_object('endsAt', (SELECT g.ends_at FROM role_assignments g WHERE g.id = assignment)), '{}'::jsonb));
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
    PERFORM spor_queue_to_account(r.requester_id, r.organisation_id, 'request-decided',
        'Your access request ' || request || ' is ' || decided,
        'Your request for the role ' || r.role || coalesce(' in ' || r.organisation_id, '') || ' was ' || decided
            || coalesce(', until ' || to_char((SELECT g.ends_at FROM role_assignments g WHERE g.id = assignment) AT TIME ZONE 'UTC',
                                              'YYYY-MM-DD HH24:MI "UTC"'), '')
            || '.' || coalesce(' Comment: ' || reason, ''),
        'access_request', request::text);
    RETURN spor_request_outcome(request, assignment);
END
$$;
COMMENT ON FUNCTION spor_decide_request(text, bigint, boolean, text, boolean, timestamptz) IS 'Approves (granting the role, until grant_until or the end asked for: R21) or rejects a request for the account of the token, in one call: lock in the mode the decision needs, re-route if due (R11), decision checked by r11_decide_request, renewal ends the previous assignment, ticket resolved (R10), audit, messages.';

-- The decision facts carry the end asked for, so the Swift half checks the approver's end against it.
DROP FUNCTION spor_decision_facts(text, bigint);
CREATE FUNCTION spor_decision_facts(token text, request bigint)
    RETURNS TABLE (id bigint, organisation_id text, requester_id uuid, role text, justification text, status text,
                   approver_kind text, created_at timestamptz, expires_at timestamptz, decided_by uuid,
                   decided_at timestamptz, decision_reason text,
                   actor uuid, staff_roles text[], active_super_users integer, actor_is_super_user boolean,
                   has_open_ticket boolean, now timestamptz, access_until timestamptz)
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
           now(), r.access_until;
END
$$;
COMMENT ON FUNCTION spor_decision_facts(text, bigint) IS 'What ApprovalPolicy.decide (and cancel) decides on: the request as the account of the token may see it (R13), with the end asked for (R21), its organisation''s super users, the actor''s staff roles, an open ticket (no lock).';

------------------------------------------------------------------------------------------------------------
-- Revocation facts carry the end, so the Swift half sees an assignment past its end as ended
------------------------------------------------------------------------------------------------------------
DROP FUNCTION spor_revocation_facts(text, bigint);
CREATE FUNCTION spor_revocation_facts(token text, assignment bigint)
    RETURNS TABLE (id bigint, organisation_id text, account_id uuid, role text, access_request_id bigint,
                   first_super_user boolean, effective_from timestamptz, revoked_at timestamptz,
                   actor uuid, staff_roles text[], active_super_users integer, actor_is_super_user boolean,
                   ends_at timestamptz, clock timestamptz)
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
           g.organisation_id IS NOT NULL AND spor_is_active_super_user(account, g.organisation_id),
           g.ends_at, spor_job_now();
END
$$;
COMMENT ON FUNCTION spor_revocation_facts(text, bigint) IS 'What ApprovalPolicy.revoke decides on: the assignment as the account of the token may see it (R13), its end and the clock (R21), its organisation''s super users, the actor''s staff roles (no lock).';

------------------------------------------------------------------------------------------------------------
-- The grants job: notices before the end, and the end itself (worker only)
------------------------------------------------------------------------------------------------------------
-- Ends one lapsed assignment (the caller found it past its end) by the clock. Owner only.
CREATE FUNCTION spor_end_assignment_locked(g role_assignments) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE role_assignments x SET revoked_at = g.ends_at, lapsed = true WHERE x.id = g.id
$$;
REVOKE EXECUTE ON FUNCTION spor_end_assignment_locked(role_assignments) FROM PUBLIC;
COMMENT ON FUNCTION spor_end_assignment_locked(role_assignments) IS 'R21: ends a lapsed assignment by the clock (r21_grant_ended_told audits and tells). Owner only.';

-- Whoever ends an assignment by the clock (the job, a renewal, a direct SQL client), the end is audited, its holder
-- told, and the service desk told when it was the organisation's last super user.
CREATE FUNCTION r21_grant_ended_told() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM spor_audit(spor_actor(), NEW.organisation_id, 'role-assignment.ended', 'role_assignment', NEW.id::text,
        jsonb_build_object('role', NEW.role, 'account', NEW.account_id::text),
        jsonb_build_object('endedAt', NEW.ends_at));
    PERFORM spor_queue_to_account(NEW.account_id, NEW.organisation_id, 'grant-ended',
        'Your role ' || NEW.role || coalesce(' in ' || NEW.organisation_id, '') || ' has ended',
        'Your role ' || NEW.role || coalesce(' in ' || NEW.organisation_id, '') || ' ended on '
            || to_char(NEW.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
            || ', as granted. To keep working with it, file a new access request.',
        'role_assignment', NEW.id::text);
    IF NEW.role = 'spor-industry-super-user' AND spor_active_super_user_count(NEW.organisation_id) = 0 THEN
        PERFORM spor_queue_to_service_desk(NEW.organisation_id, 'grant-ended',
            NEW.organisation_id || ' has no super user: the last super user''s role has ended',
            'The super user role of ' || NEW.organisation_id || ' granted until '
                || to_char(NEW.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
                || ' (role assignment ' || NEW.id || ') has ended, and the organisation has no other super user. '
                || 'Its next super user request is a first one, decided by the EMA service desk.',
            'organisation', NEW.organisation_id);
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION r21_grant_ended_told() FROM PUBLIC;
CREATE TRIGGER r21_grant_ended_told AFTER UPDATE OF lapsed ON role_assignments
    FOR EACH ROW WHEN (NEW.lapsed AND NOT OLD.lapsed)
    EXECUTE FUNCTION r21_grant_ended_told();
COMMENT ON FUNCTION r21_grant_ended_told() IS 'R21: an assignment ended by the clock is audited and told to its holder, and to the service desk when the organisation has no super user left.';

CREATE FUNCTION spor_end_lapsed_grants(batch integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    g role_assignments%ROWTYPE;
    ended integer := 0;
BEGIN
    FOR g IN SELECT * FROM role_assignments x
             WHERE x.revoked_at IS NULL AND x.ends_at <= spor_job_now()
             ORDER BY x.ends_at, x.id LIMIT batch
             FOR UPDATE SKIP LOCKED LOOP
        PERFORM spor_end_assignment_locked(g);
        ended := ended + 1;
    END LOOP;
    RETURN ended;
END
$$;
REVOKE EXECUTE ON FUNCTION spor_end_lapsed_grants(integer) FROM PUBLIC;
COMMENT ON FUNCTION spor_end_lapsed_grants(integer) IS 'R21: ends every assignment past its end (SKIP LOCKED: several instances end each once). Worker only.';

CREATE TABLE grant_notices (
    assignment_id bigint NOT NULL REFERENCES role_assignments (id),
    days_before integer NOT NULL CHECK (days_before > 0),
    organisation_id text REFERENCES organisations (id),
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (assignment_id, days_before)
);
REVOKE ALL ON grant_notices FROM PUBLIC;
COMMENT ON TABLE grant_notices IS 'R21: the notices sent before a time-bound grant ends, one per assignment and threshold (the key makes them once-only across instances). Owner only; analysts read reporting.reminder_history.';

CREATE FUNCTION spor_send_grant_notices(batch integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    clock timestamptz := spor_job_now();
    thresholds integer[];
    sent integer := 0;
    g record;
    fresh boolean;
    outlasting integer;
    ending text;
BEGIN
    SELECT s.grant_notice_days INTO thresholds FROM settings s;
    -- For each active grant, the smallest threshold whose window has begun; sent unless a notice at that threshold or
    -- a smaller one was (a grant made 5 days before its end gets the 14-day notice at once, then the 3-day one).
    FOR g IN SELECT x.*, d.days
             FROM role_assignments x
             CROSS JOIN LATERAL (SELECT min(t) AS days FROM unnest(thresholds) t
                                 WHERE x.ends_at - make_interval(days => t) <= clock) d
             JOIN accounts a ON a.id = x.account_id AND a.status = 'active'
             WHERE x.revoked_at IS NULL AND x.ends_at > clock AND d.days IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM grant_notices n WHERE n.assignment_id = x.id AND n.days_before <= d.days)
             ORDER BY x.ends_at, x.id LIMIT batch LOOP
        fresh := NULL;
        INSERT INTO grant_notices (assignment_id, days_before, organisation_id) VALUES (g.id, g.days, g.organisation_id)
        ON CONFLICT DO NOTHING RETURNING true INTO fresh;
        IF NOT coalesce(fresh, false) THEN
            CONTINUE;
        END IF;
        ending := to_char(g.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
        PERFORM spor_queue_to_account(g.account_id, g.organisation_id, 'grant-ending',
            'Your role ' || g.role || ' in ' || g.organisation_id || ' ends on ' || to_char(g.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
            'Your role ' || g.role || ' in ' || g.organisation_id || ' was granted until ' || ending
                || '. To keep it, file a new access request for it before then; your super users decide it.',
            'role_assignment', g.id::text);
        PERFORM spor_queue_to_super_users(g.organisation_id, 'grant-ending',
            'A role in ' || g.organisation_id || ' ends on ' || to_char(g.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
            'The role ' || g.role || ' of role assignment ' || g.id || ' in ' || g.organisation_id || ' ends on ' || ending
                || '. Its holder has been told; a renewal comes to you as a new access request.',
            'role_assignment', g.id::text);
        IF g.role = 'spor-industry-super-user' THEN
            SELECT count(*) INTO outlasting FROM role_assignments o JOIN accounts a ON a.id = o.account_id
            WHERE o.organisation_id = g.organisation_id AND o.role = 'spor-industry-super-user' AND o.id <> g.id
              AND o.revoked_at IS NULL AND (o.ends_at IS NULL OR o.ends_at > g.ends_at) AND a.status = 'active';
            IF outlasting = 0 THEN
                PERFORM spor_queue_to_service_desk(g.organisation_id, 'grant-ending',
                    g.organisation_id || ' will have no super user from ' || to_char(g.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                    'The super user role of ' || g.organisation_id || ' (role assignment ' || g.id || ') ends on ' || ending
                        || ', and no other super user''s role outlasts it. Unless it is renewed, the organisation''s next'
                        || ' super user request is a first one, decided by the EMA service desk.',
                    'role_assignment', g.id::text);
            END IF;
        END IF;
        sent := sent + 1;
    END LOOP;
    RETURN sent;
END
$$;
REVOKE EXECUTE ON FUNCTION spor_send_grant_notices(integer) FROM PUBLIC;
COMMENT ON FUNCTION spor_send_grant_notices(integer) IS 'R21: tells holders, their super users (and the service desk for a last super user) that a grant ends soon, once per threshold of settings.grant_notice_days. Worker only.';
GRANT EXECUTE ON FUNCTION spor_end_lapsed_grants(integer), spor_send_grant_notices(integer) TO spor_worker;

------------------------------------------------------------------------------------------------------------
-- Reporting: grant ends, and the notices in the reminder history
------------------------------------------------------------------------------------------------------------
CREATE VIEW reporting.role_grants WITH (security_barrier = true) AS
SELECT g.id AS assignment_id,
       g.organisation_id,
       g.role,
       g.account_id,
       g.granted_at,
       g.ends_at,
       CASE WHEN g.lapsed THEN 'ended'
            WHEN g.revoked_at IS NOT NULL THEN 'revoked'
            WHEN g.ends_at IS NOT NULL AND g.ends_at <= c.clock THEN 'ended'
            ELSE 'active' END AS status,
       coalesce(g.revoked_at, CASE WHEN g.ends_at <= c.clock THEN g.ends_at END) AS ended_at,
       CASE WHEN g.revoked_at IS NULL AND g.ends_at > c.clock
            THEN ceil(extract(epoch FROM g.ends_at - c.clock) / 86400)::integer END AS days_left
FROM role_assignments g
CROSS JOIN (SELECT now() + s.job_clock_offset AS clock FROM settings s) c;
COMMENT ON VIEW reporting.role_grants IS 'Every role assignment with its end (R21): active, revoked or ended (by its end date), and the days left of a time-bound one.';
COMMENT ON COLUMN reporting.role_grants.ends_at IS 'When the grant ends (NULL: no end).';
COMMENT ON COLUMN reporting.role_grants.status IS 'active, revoked (by a person) or ended (reached ends_at).';
COMMENT ON COLUMN reporting.role_grants.ended_at IS 'When it stopped being active (NULL while active).';
COMMENT ON COLUMN reporting.role_grants.days_left IS 'Whole days until the end of an active time-bound grant (rounded up).';
GRANT SELECT ON reporting.role_grants TO spor_reporting;

CREATE OR REPLACE VIEW reporting.reminder_history WITH (security_barrier = true) AS
SELECT m.kind, m.subject_type, m.subject_id, m.organisation_id, m.sent_at, NULL::integer AS days_before
FROM reminders m
UNION ALL
SELECT 'grant-ending', 'role_assignment', n.assignment_id::text, n.organisation_id, n.sent_at, n.days_before
FROM grant_notices n;
COMMENT ON COLUMN reporting.reminder_history.days_before IS 'grant-ending notices (R21): how many days before the end this notice was due.';

-- The reporting views that count active holders agree with the rules.
CREATE OR REPLACE VIEW reporting.role_holders WITH (security_barrier = true) AS
SELECT g.organisation_id,
       g.role,
       count(*) AS holders,
       array_agg(a.email ORDER BY a.email) AS holder_emails
FROM role_assignments g
JOIN accounts a ON a.id = g.account_id AND a.status = 'active'
WHERE g.revoked_at IS NULL AND g.effective_from <= now() AND (g.ends_at IS NULL OR g.ends_at > (SELECT now() + s.job_clock_offset FROM settings s))
GROUP BY g.organisation_id, g.role;

CREATE OR REPLACE VIEW reporting.organisations_with_single_super_user WITH (security_barrier = true) AS
SELECT o.id AS organisation_id,
       o.name AS organisation_name,
       o.country,
       min(a.id::text)::uuid AS super_user_account_id,
       min(a.email) AS super_user_email,
       min(g.granted_at) AS super_user_since
FROM organisations o
JOIN role_assignments g ON g.organisation_id = o.id AND g.role = 'spor-industry-super-user'
                       AND g.revoked_at IS NULL AND g.effective_from <= now()
                       AND (g.ends_at IS NULL OR g.ends_at > (SELECT now() + s.job_clock_offset FROM settings s))
JOIN accounts a ON a.id = g.account_id AND a.status = 'active'
GROUP BY o.id, o.name, o.country
HAVING count(*) = 1;

CREATE OR REPLACE VIEW reporting.organisations_without_super_user WITH (security_barrier = true) AS
SELECT o.id AS organisation_id,
       o.name AS organisation_name,
       o.country,
       r.id AS access_request_id,
       r.created_at AS requested_at,
       now() - r.created_at AS waiting,
       round(extract(epoch FROM now() - r.created_at)::numeric / 3600, 1) AS waiting_hours
FROM organisations o
LEFT JOIN access_requests r
       ON r.organisation_id = o.id AND r.status = 'pending' AND r.role = 'spor-industry-super-user'
WHERE o.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM role_assignments g JOIN accounts a ON a.id = g.account_id
                  WHERE g.organisation_id = o.id AND g.role = 'spor-industry-super-user'
                    AND g.revoked_at IS NULL AND g.effective_from <= now()
                    AND (g.ends_at IS NULL OR g.ends_at > (SELECT now() + s.job_clock_offset FROM settings s)) AND a.status = 'active');

------------------------------------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION
    spor_file_request(text, text, text, text, timestamptz),
    spor_decide_request(text, bigint, boolean, text, boolean, timestamptz),
    spor_revocation_facts(text, bigint),
    spor_decision_facts(text, bigint)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    spor_file_request(text, text, text, text, timestamptz),
    spor_decide_request(text, bigint, boolean, text, boolean, timestamptz),
    spor_revocation_facts(text, bigint),
    spor_decision_facts(text, bigint)
TO spor_app;
