-- 0003 — functions the rules share: who is acting, what they hold, and how a refusal is raised.
--
-- The acting account is a per-transaction setting (set_config('app.account_id', ..., true), i.e. SET LOCAL),
-- so it can never leak through a pooled connection into the next transaction.
-- Lookups of roles are SECURITY DEFINER: they must see every assignment, whatever row-level security
-- shows the caller; they are owned by the owner and pin their search_path.

CREATE FUNCTION spor_actor() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN nullif(current_setting('app.account_id', true), '')::uuid;
COMMENT ON FUNCTION spor_actor() IS 'The acting account of this transaction (app.account_id), or NULL.';

CREATE FUNCTION spor_has_staff_role(account uuid, wanted text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN EXISTS (SELECT 1 FROM staff_roles s JOIN accounts a ON a.id = s.account_id
                   WHERE s.account_id = account AND s.role = wanted AND a.status = 'active');
COMMENT ON FUNCTION spor_has_staff_role(uuid, text) IS 'R4: whether an active account holds a staff role.';

CREATE FUNCTION spor_actor_is_staff() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN EXISTS (SELECT 1 FROM staff_roles s JOIN accounts a ON a.id = s.account_id
                   WHERE s.account_id = spor_actor() AND a.status = 'active');
COMMENT ON FUNCTION spor_actor_is_staff() IS 'R13: staff see everything.';

-- An active super user: an unrevoked super-user assignment of an active account. (Organisation roles are
-- effective at once — r4_assignment_source — so effective_from is not compared with now(): now() is the start
-- of the *checking* transaction, which may predate a grant committed while it waited for the organisation lock.)
CREATE FUNCTION spor_is_active_super_user(account uuid, organisation text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN EXISTS (SELECT 1 FROM role_assignments r JOIN accounts a ON a.id = r.account_id
                   WHERE r.organisation_id = organisation AND r.account_id = account
                     AND r.role = 'spor-industry-super-user' AND r.revoked_at IS NULL AND a.status = 'active');
COMMENT ON FUNCTION spor_is_active_super_user(uuid, text) IS 'R8/R13/R14: whether the account is an active super user of the organisation.';

CREATE FUNCTION spor_active_super_user_count(organisation text) RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN (SELECT count(*) FROM role_assignments r JOIN accounts a ON a.id = r.account_id
            WHERE r.organisation_id = organisation AND r.role = 'spor-industry-super-user'
              AND r.revoked_at IS NULL AND a.status = 'active');
COMMENT ON FUNCTION spor_active_super_user_count(text) IS 'R8/R9/R11/R14: how many active super users the organisation has.';

CREATE FUNCTION spor_actor_super_user_organisations() RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.organisation_id FROM role_assignments r JOIN accounts a ON a.id = r.account_id
    WHERE r.account_id = spor_actor() AND r.role = 'spor-industry-super-user'
      AND r.revoked_at IS NULL AND a.status = 'active'
$$;
COMMENT ON FUNCTION spor_actor_super_user_organisations() IS 'R13: the organisations where the acting account is an active super user.';

-- Raises a refusal: SQLSTATE SPnnn for rule Rnnn, the stable code in DETAIL, the rule id in HINT.
-- The store maps DETAIL to the same typed refusal the Swift policy returns.
CREATE FUNCTION spor_refuse(rule text, code text, message text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'SP' || lpad(substr(rule, 2), 3, '0'),
        MESSAGE = code || ': ' || message,
        DETAIL = code,
        HINT = rule;
END
$$;
COMMENT ON FUNCTION spor_refuse(text, text, text) IS 'Raises a rule refusal: SQLSTATE SPnnn (rule Rnnn), DETAIL = stable code, HINT = rule id.';

-- Serialises decisions about one organisation (R8, R9, R11, R14).
CREATE FUNCTION spor_lock_organisation(organisation text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM 1 FROM organisations WHERE id = organisation FOR UPDATE;
END
$$;
COMMENT ON FUNCTION spor_lock_organisation(text) IS 'Takes the per-organisation row lock under which routing and last-super-user checks run.';
