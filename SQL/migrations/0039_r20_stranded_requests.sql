-- R20 (issue 12): when an organisation loses its last super user, the requests it leaves behind are not stranded in
-- silence.
--
-- Only the EMA service desk can remove an organisation's last super user (R14). Until now the organisation's pending
-- industry-user requests then waited, undecidable, until they expired, and its pending super-user requests stayed
-- routed to super users who no longer existed. Now the revocation itself, in the same statement and whoever makes
-- it (a command or a direct SQL client):
--   * hands each pending super-user request back to the service desk (R8, R11: spor_reroute_locked, which audits
--     the re-route and tells the requester to open a ticket);
--   * tells each requester of a pending industry-user request that nobody can decide it until the organisation has a
--     super user again (template `request-stranded`, about the request);
--   * tells the service desk, once per revocation, which requests wait (template `request-stranded`, about the
--     organisation), so that an agent can help the organisation to a new first super user.
-- Nothing is decided on the requesters' behalf: the requests stay pending until decided, cancelled or expired (R18).

-- R16: a message to every active EMA service desk agent. Owner only.
CREATE FUNCTION spor_queue_to_service_desk(organisation text, template text, subject text, body text,
                                           about_type text, about_id text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                     subject_type, subject_id)
    SELECT spor_queue_to_service_desk.organisation, a.id, a.email, spor_queue_to_service_desk.template,
           spor_queue_to_service_desk.subject, spor_queue_to_service_desk.body, spor_queue_to_service_desk.about_type,
           spor_queue_to_service_desk.about_id
    FROM staff_roles s JOIN accounts a ON a.id = s.account_id
    WHERE s.role = 'ema-service-desk' AND a.status = 'active' AND spor_has_staff_role(a.id, 'ema-service-desk')
    ORDER BY a.id
$$;
REVOKE EXECUTE ON FUNCTION spor_queue_to_service_desk(text, text, text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION spor_queue_to_service_desk(text, text, text, text, text, text) IS 'R16: queues a message to every active EMA service desk agent. Owner only.';

CREATE FUNCTION r20_stranded_requests_told() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r access_requests%ROWTYPE;
    actor uuid := coalesce(spor_actor(), NEW.revoked_by);
    stranded text[] := ARRAY[]::text[];
BEGIN
    IF spor_active_super_user_count(NEW.organisation_id) > 0 THEN
        RETURN NULL;
    END IF;
    FOR r IN SELECT * FROM access_requests q
             WHERE q.organisation_id = NEW.organisation_id AND q.status = 'pending'
               AND q.approver_kind = 'organisation-super-users'
             ORDER BY q.id
             FOR UPDATE SKIP LOCKED LOOP
        IF r.role = 'spor-industry-super-user' THEN
            PERFORM spor_reroute_locked(r, 'ema-service-desk', actor);
        ELSE
            stranded := stranded || r.id::text;
            PERFORM spor_queue_to_account(r.requester_id, r.organisation_id, 'request-stranded',
                'Your access request ' || r.id || ' cannot be decided for now',
                NEW.organisation_id || ' has no super user any more, so nobody can decide your request ' || r.id
                    || ' for the role ' || r.role || '. It stays pending until ' || to_char(r.expires_at, 'YYYY-MM-DD')
                    || ': once a colleague has become the organisation''s super user through the EMA service desk, they can'
                    || ' decide it. You may also cancel it.',
                'access_request', r.id::text);
        END IF;
    END LOOP;
    IF cardinality(stranded) > 0 THEN
        PERFORM spor_queue_to_service_desk(NEW.organisation_id, 'request-stranded',
            NEW.organisation_id || ' has no super user: ' || cardinality(stranded) || ' pending request(s) wait',
            'The last super user of ' || NEW.organisation_id || ' was removed (role assignment ' || NEW.id || '). '
                || 'These pending industry-user requests cannot be decided until the organisation has a super user again: '
                || array_to_string(stranded, ', ') || '. Their requesters have been told.',
            'organisation', NEW.organisation_id);
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION r20_stranded_requests_told() FROM PUBLIC;
CREATE TRIGGER r20_stranded_requests_told AFTER UPDATE OF revoked_at ON role_assignments
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND NEW.role = 'spor-industry-super-user')
    EXECUTE FUNCTION r20_stranded_requests_told();
COMMENT ON FUNCTION r20_stranded_requests_told() IS 'R20: an organisation losing its last super user hands its super-user requests back to the service desk and tells the requesters of the others, and the desk.';
