-- 0028 — R18 and R5: a request's lifetime and a role's start come from the rules, not the caller.
--
-- 0004's routing trigger took a caller's expires_at as long as it lay in the future, so a client holding the spor_app
-- login could file a request with expires_at = 'infinity' (never expiring, against R18's settings); and it refused
-- only a *future* effective_from on an organisation role, so a grant could be back-dated. Both are now refused:
--   * a new pending request expires exactly the configured lifetime after it is filed (settings.request_lifetime);
--     a caller may leave expires_at out, or give that very time, nothing else;
--   * a role assignment is effective from the moment it is made (organisation roles) or after the activation delay
--     (the unaffiliated role, 0004), never from an earlier time.
-- Both triggers only refuse; they change nothing, so their order among 0004's triggers does not matter.

CREATE FUNCTION r18_request_lifetime() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.status = 'pending' AND NEW.expires_at IS NOT NULL
       AND NEW.expires_at IS DISTINCT FROM now() + (SELECT request_lifetime FROM settings) THEN
        PERFORM spor_refuse('R18', 'validation-failed',
            'a request expires ' || (SELECT request_lifetime FROM settings) || ' after it is filed (the settings); leave expires_at out');
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION r18_request_lifetime() IS 'R18: a pending request''s lifetime comes from the settings only.';
REVOKE EXECUTE ON FUNCTION r18_request_lifetime() FROM PUBLIC;
CREATE TRIGGER r18_request_lifetime BEFORE INSERT ON access_requests
    FOR EACH ROW EXECUTE FUNCTION r18_request_lifetime();

CREATE FUNCTION r5_no_back_dating() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.effective_from < now() THEN
        PERFORM spor_refuse('R5', 'activation-delay', 'a role assignment is effective from when it is made, never from an earlier time');
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION r5_no_back_dating() IS 'R5: no role assignment is back-dated.';
REVOKE EXECUTE ON FUNCTION r5_no_back_dating() FROM PUBLIC;
CREATE TRIGGER r5_no_back_dating BEFORE INSERT ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION r5_no_back_dating();
