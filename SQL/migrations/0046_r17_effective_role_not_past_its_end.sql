-- 0046 — R17 and R21: an OMS change request needs an effective SPOR role, and a role past its end is not one.
--
-- R21 made an assignment past its end inactive for the rules that count active roles; R17's "effective SPOR role"
-- (0004's trigger, 0023's facts for the Swift half) still counted an unrevoked role past its end until the grants job
-- recorded the end. Both now read the same condition as the rest.
CREATE OR REPLACE FUNCTION r17_oms_change_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.requester_id IS DISTINCT FROM spor_actor() THEN
            PERFORM spor_refuse('R13', 'not-authorised', 'a change request is filed by its requester');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM role_assignments
                       WHERE account_id = NEW.requester_id AND revoked_at IS NULL AND effective_from <= now()
                         AND (ends_at IS NULL OR ends_at > spor_job_now())) THEN
            PERFORM spor_refuse('R17', 'no-effective-role', 'OMS change requests need an effective SPOR role');
        END IF;
        IF NEW.status <> 'pending' OR NEW.decided_by IS NOT NULL OR NEW.organisation_id IS NOT NULL THEN
            PERFORM spor_refuse('R18', 'not-pending', 'change requests start pending');
        END IF;
        NEW.created_at := now();
        RETURN NEW;
    END IF;
    IF OLD.status <> 'pending' THEN
        PERFORM spor_refuse('R18', 'not-pending', 'change request ' || OLD.id || ' is already ' || OLD.status);
    END IF;
    IF NEW.requester_id <> OLD.requester_id OR NEW.name <> OLD.name OR NEW.country <> OLD.country OR NEW.city <> OLD.city THEN
        PERFORM spor_refuse('R17', 'immutable', 'what was requested never changes');
    END IF;
    IF NOT spor_has_staff_role(spor_actor(), 'ema-data-steward') OR NEW.decided_by IS DISTINCT FROM spor_actor() THEN
        PERFORM spor_refuse('R17', 'not-authorised', 'OMS change requests are decided by an EMA data steward');
    END IF;
    NEW.decided_at := now();
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION spor_oms_facts(token text, change_request bigint)
    RETURNS TABLE (actor uuid, has_effective_role boolean, staff_roles text[], id bigint, requester_id uuid, name text,
                   country text, city text, status text, organisation_id text, decision_reason text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
    c oms_change_requests%ROWTYPE;
BEGIN
    IF change_request IS NOT NULL THEN
        SELECT * INTO c FROM oms_change_requests x WHERE x.id = change_request;
        IF NOT FOUND OR NOT (c.requester_id = account OR spor_actor_is_staff()) THEN
            PERFORM spor_refuse('R13', 'not-found', 'OMS change request ' || change_request || ' not found.');
        END IF;
    END IF;
    RETURN QUERY
    SELECT account,
           EXISTS (SELECT 1 FROM role_assignments g WHERE g.account_id = account AND g.revoked_at IS NULL
                   AND g.effective_from <= now() AND (g.ends_at IS NULL OR g.ends_at > spor_job_now())),
           ARRAY(SELECT s.role FROM staff_roles s WHERE s.account_id = account AND spor_has_staff_role(account, s.role) ORDER BY s.role),
           c.id, c.requester_id, c.name, c.country, c.city, c.status, c.organisation_id, c.decision_reason;
END
$$;
