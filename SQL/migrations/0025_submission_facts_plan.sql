-- 0025 — the submission facts in index look-ups.
--
-- Measured (Benchmarks/api/load.sh --top-statements, then EXPLAIN ANALYZE of the statement): 0021's
-- spor_submission_facts cost 4–19 ms a call and grew with the tables. Its one query joined `settings` (no
-- statistics: estimated 1,330 rows) and had its EXISTS tests in the select list (they cannot become joins), so the
-- planner chose hashed subplans that read security_answers, access_requests and role_assignments whole on every
-- call. The facts are now read one by one, each by the key it has.
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
    IF organisation IS NULL THEN
        pending_same_role := EXISTS (SELECT 1 FROM access_requests r WHERE r.requester_id = account AND r.role = wanted_role
                                     AND r.organisation_id IS NULL AND r.status = 'pending');
        holds_role := EXISTS (SELECT 1 FROM role_assignments g WHERE g.account_id = account AND g.role = wanted_role
                              AND g.organisation_id IS NULL AND g.revoked_at IS NULL);
    ELSE
        pending_same_role := EXISTS (SELECT 1 FROM access_requests r WHERE r.requester_id = account AND r.role = wanted_role
                                     AND r.organisation_id = organisation AND r.status = 'pending');
        holds_role := EXISTS (SELECT 1 FROM role_assignments g WHERE g.account_id = account AND g.role = wanted_role
                              AND g.organisation_id = organisation AND g.revoked_at IS NULL);
    END IF;
    now := now();
    activation_delay_seconds := extract(epoch FROM delay)::float8;
    request_lifetime_seconds := extract(epoch FROM lifetime)::float8;
    RETURN NEXT;
END
$$;
-- settings has one row; tell the planner so (its default guess for an unanalysed table is over a thousand).
ANALYZE settings;
