-- 0055 — the role checks the application role may call answer for the signed-in actor only.
--
-- spor_is_active_super_user(account, organisation), spor_has_staff_role(account, role) and
-- spor_active_super_user_count(organisation) are SECURITY DEFINER (they read role_assignments, staff_roles and
-- accounts past row-level security) and were executable by spor_app, because five policies and three checks of the
-- service called them with the signed-in actor. A client holding the spor_app login could call them with any
-- account id and any organisation, signed in or not, and learn who is a super user where, who is staff, and how
-- many super users an organisation has: what R13 shows only to staff and to the organisation's own super users.
--
-- The policies and the service now call actor-bound variants, which take the actor from spor_actor() (the proven
-- session of this transaction) and answer false when nobody is signed in; spor_app loses EXECUTE on the three.
-- The command and read functions, which run as the owner, go on calling the three with the accounts they decide
-- about.

CREATE FUNCTION spor_actor_has_staff_role(role text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN coalesce(spor_has_staff_role(spor_actor(), spor_actor_has_staff_role.role), false);
END
$$;
COMMENT ON FUNCTION spor_actor_has_staff_role(text) IS 'R4/R13: whether the signed-in actor holds this staff role now (false when nobody is signed in).';

CREATE FUNCTION spor_actor_is_super_user_of(organisation text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN coalesce(spor_is_active_super_user(spor_actor(), spor_actor_is_super_user_of.organisation), false);
END
$$;
COMMENT ON FUNCTION spor_actor_is_super_user_of(text) IS 'R13: whether the signed-in actor is an active super user of this organisation now (false when nobody is signed in).';

CREATE FUNCTION spor_actor_staff_roles() RETURNS SETOF text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY SELECT s.role FROM staff_roles s
                 WHERE s.account_id = spor_actor() AND spor_has_staff_role(s.account_id, s.role)
                 ORDER BY s.role;
END
$$;
COMMENT ON FUNCTION spor_actor_staff_roles() IS 'R4: the staff roles the signed-in actor holds now (none when nobody is signed in).';

REVOKE EXECUTE ON FUNCTION spor_actor_has_staff_role(text), spor_actor_is_super_user_of(text), spor_actor_staff_roles()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_actor_has_staff_role(text), spor_actor_is_super_user_of(text), spor_actor_staff_roles()
    TO spor_app;

ALTER POLICY r17_organisations_by_data_steward ON organisations
    WITH CHECK ((SELECT spor_actor_has_staff_role('ema-data-steward')));
ALTER POLICY r17_organisations_update_by_data_steward ON organisations
    USING ((SELECT spor_actor_has_staff_role('ema-data-steward')));
ALTER POLICY r4_staff_roles_by_admin ON staff_roles
    WITH CHECK ((SELECT spor_actor_has_staff_role('ema-admin')));
ALTER POLICY r13_tickets_update ON service_desk_tickets
    USING ((SELECT spor_actor_has_staff_role('ema-service-desk')));
ALTER POLICY r13_oms_change_requests_update ON oms_change_requests
    USING ((SELECT spor_actor_has_staff_role('ema-data-steward')));

REVOKE EXECUTE ON FUNCTION spor_is_active_super_user(uuid, text), spor_has_staff_role(uuid, text),
    spor_active_super_user_count(text) FROM spor_app;
