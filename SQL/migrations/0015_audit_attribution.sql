-- 0015 — R15: audit events that cannot be forged.
--
-- An event names the authenticated actor (0004's r15_audit_insert checks actor_id = spor_actor(), which since 0014
-- is the account of a token) and the organisation of its subject, whoever writes it. The application role writes
-- events only for an actor: events without one come from the owner's functions (expiry, the administrator
-- commands), never from a client that authenticated nobody.

DROP POLICY r15_audit_insert ON audit_events;
CREATE POLICY r15_audit_insert ON audit_events FOR INSERT TO spor_app
    WITH CHECK (actor_id IS NOT NULL AND actor_id = (SELECT spor_actor()));

-- The organisation an audit event must name: that of the row it is about (NULL for accounts and for change
-- requests not yet approved). Runs as the owner: the subject may be a row row-level security hides from the writer.
CREATE FUNCTION spor_subject_organisation(subject_type text, subject_id text) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN CASE subject_type
        WHEN 'access_request' THEN (SELECT organisation_id FROM access_requests WHERE id::text = subject_id)
        WHEN 'role_assignment' THEN (SELECT organisation_id FROM role_assignments WHERE id::text = subject_id)
        WHEN 'service_desk_ticket' THEN (SELECT organisation_id FROM service_desk_tickets WHERE id::text = subject_id)
        WHEN 'oms_change_request' THEN (SELECT organisation_id FROM oms_change_requests WHERE id::text = subject_id)
        WHEN 'organisation' THEN subject_id
    END;
COMMENT ON FUNCTION spor_subject_organisation(text, text) IS 'R15/R13: the organisation an audit event about this subject belongs to. Owner only.';

CREATE FUNCTION r15_audit_subject_organisation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.subject_type NOT IN ('account', 'access_request', 'role_assignment', 'service_desk_ticket', 'oms_change_request', 'organisation') THEN
        PERFORM spor_refuse('R15', 'audit-subject', 'an audit event is about an account, request, role assignment, ticket, change request or organisation');
    END IF;
    IF NEW.organisation_id IS DISTINCT FROM spor_subject_organisation(NEW.subject_type, NEW.subject_id) THEN
        PERFORM spor_refuse('R15', 'audit-organisation', 'an audit event names the organisation of its subject');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER r15_audit_subject_organisation BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION r15_audit_subject_organisation();
COMMENT ON FUNCTION r15_audit_subject_organisation() IS 'R15: an audit event names the organisation of its subject (so no tenant trail shows another''s events).';
REVOKE EXECUTE ON FUNCTION spor_subject_organisation(text, text), r15_audit_subject_organisation() FROM PUBLIC;
