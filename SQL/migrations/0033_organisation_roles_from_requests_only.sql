-- 0033 — R4: organisation roles come only from approved requests.
--
-- 0004 let an EMA administrator insert a role assignment with source 'staff-grant': any organisation role for
-- anyone, with no request, no ticket and no letter — an organisation's first super user without the service desk's
-- check (only first_super_user = true was refused, so the grant just did not say so). Nothing in the service uses
-- it. Now every role assignment comes from an approved access request (the first super user's through the EMA
-- service desk and its ticket, R10/R11); an administrator who must give someone access files and decides it the
-- same way, audited like any other decision. Staff roles are another table (staff_roles) and unaffected.
CREATE FUNCTION r4_no_staff_grant() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.source <> 'access-request' THEN
        PERFORM spor_refuse('R4', 'not-authorised', 'organisation roles come only from approved access requests');
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION r4_no_staff_grant() IS 'R4: no role assignment without an approved access request (no administrator override).';
REVOKE EXECUTE ON FUNCTION r4_no_staff_grant() FROM PUBLIC;
CREATE TRIGGER r4_no_staff_grant BEFORE INSERT ON role_assignments FOR EACH ROW EXECUTE FUNCTION r4_no_staff_grant();
