-- 0043 — R21: "access cannot end before it is granted" is judged on the same clock as "active".
--
-- 0041 refused a requested or granted end not after now(), while an assignment is active until its end on the jobs'
-- clock (spor_job_now() = now() + settings.job_clock_offset). The two agree in production (offset 0), but with the
-- clock moved forward (tests, rehearsals) an approval could grant an end between the two: a grant born ended. The
-- differential property test found it: a first super user granted already past its end made R19's re-route of the
-- organisation's other requests contradict R11's count (routing-mismatch). Both checks now use spor_job_now(), and
-- the facts the Swift half decides on carry that clock (`clock`), so both halves judge an end on it.

CREATE OR REPLACE FUNCTION r21_request_end() RETURNS trigger
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
        IF NEW.access_until <= spor_job_now() THEN
            PERFORM spor_refuse('R21', 'grant-end-in-past', 'access cannot end before it is granted: choose a later date');
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION r21_grant_end() RETURNS trigger
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
    IF NEW.ends_at IS NOT NULL AND NEW.ends_at <= spor_job_now() THEN
        PERFORM spor_refuse('R21', 'grant-end-in-past', 'access cannot end before it is granted: choose a later date');
    END IF;
    RETURN NEW;
END
$$;

-- The facts of a submission and of a decision carry the jobs' clock (the last column, `clock`).
DROP FUNCTION spor_submission_facts(text, text, text);
CREATE FUNCTION spor_submission_facts(token text, wanted_role text, organisation text)
    RETURNS TABLE (actor uuid, account_active boolean, security_questions_set boolean, organisation_exists boolean,
                   active_super_users integer, pending_same_role boolean, holds_role boolean, now timestamptz,
                   activation_delay_seconds double precision, request_lifetime_seconds double precision, clock timestamptz)
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
    clock := spor_job_now();
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION spor_submission_facts(text, text, text) IS 'What ApprovalPolicy.submit decides on, for the account of the token (no lock); clock is the jobs'' clock, on which R21 judges an end.';

DROP FUNCTION spor_decision_facts(text, bigint);
CREATE FUNCTION spor_decision_facts(token text, request bigint)
    RETURNS TABLE (id bigint, organisation_id text, requester_id uuid, role text, justification text, status text,
                   approver_kind text, created_at timestamptz, expires_at timestamptz, decided_by uuid,
                   decided_at timestamptz, decision_reason text,
                   actor uuid, staff_roles text[], active_super_users integer, actor_is_super_user boolean,
                   has_open_ticket boolean, now timestamptz, access_until timestamptz, clock timestamptz)
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
           now(), r.access_until, spor_job_now();
END
$$;
COMMENT ON FUNCTION spor_decision_facts(text, bigint) IS 'What ApprovalPolicy.decide (and cancel) decides on: the request as the account of the token may see it (R13), with the end asked for and the jobs'' clock (R21), its organisation''s super users, the actor''s staff roles, an open ticket (no lock).';

REVOKE EXECUTE ON FUNCTION spor_submission_facts(text, text, text), spor_decision_facts(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_submission_facts(text, text, text), spor_decision_facts(text, bigint) TO spor_app;
