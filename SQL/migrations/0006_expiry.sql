-- 0006 — R18: pending requests expire after settings.request_lifetime.
-- Expiry has no acting account (it is the system's doing), so it runs as this SECURITY DEFINER function:
-- it expires what is due, writes one audit event per request (R15) and tells each requester (R16).
CREATE FUNCTION spor_expire_due_requests(batch integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    due record;
    expired integer := 0;
BEGIN
    FOR due IN
        SELECT r.id, r.organisation_id, r.role, r.requester_id, a.email
        FROM access_requests r JOIN accounts a ON a.id = r.requester_id
        WHERE r.status = 'pending' AND r.expires_at <= now()
        ORDER BY r.expires_at
        LIMIT batch
        FOR UPDATE OF r SKIP LOCKED
    LOOP
        UPDATE access_requests SET status = 'expired' WHERE id = due.id;
        INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
        VALUES (due.organisation_id, spor_actor(), 'access-request.expired', 'access_request', due.id::text,
                jsonb_build_object('status', 'pending'), jsonb_build_object('status', 'expired'));
        INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                         subject_type, subject_id)
        VALUES (due.organisation_id, due.requester_id, due.email, 'request-decided',
                'Your access request ' || due.id || ' has expired',
                'Your request for the role ' || due.role || coalesce(' in ' || due.organisation_id, '')
                    || ' was not decided in time and has expired. You may file it again.',
                'access_request', due.id::text);
        expired := expired + 1;
    END LOOP;
    RETURN expired;
END
$$;
COMMENT ON FUNCTION spor_expire_due_requests(integer) IS 'R18: expires pending requests past expires_at, with audit (R15) and a notification to the requester (R16).';
GRANT EXECUTE ON FUNCTION spor_expire_due_requests(integer) TO spor_app;

-- R16: the outbox is delivered at least once by a worker that claims undelivered rows and marks them.
CREATE FUNCTION spor_claim_notifications(batch integer)
    RETURNS TABLE (id bigint, recipient_email text, template text, subject text, body text)
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE notification_outbox o SET attempts = o.attempts + 1
    WHERE o.id IN (SELECT n.id FROM notification_outbox n WHERE n.delivered_at IS NULL
                   ORDER BY n.id LIMIT batch FOR UPDATE SKIP LOCKED)
    RETURNING o.id, o.recipient_email, o.template, o.subject, o.body
$$;
CREATE FUNCTION spor_mark_notification(notification bigint, error text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE notification_outbox
    SET delivered_at = CASE WHEN error IS NULL THEN now() END, last_error = error
    WHERE id = notification AND delivered_at IS NULL
$$;
COMMENT ON FUNCTION spor_claim_notifications(integer) IS 'R16: claims undelivered notifications for delivery (SKIP LOCKED: several workers never send one twice at once).';
COMMENT ON FUNCTION spor_mark_notification(bigint, text) IS 'R16: records a delivery (error NULL) or a failed attempt.';
GRANT EXECUTE ON FUNCTION spor_claim_notifications(integer), spor_mark_notification(bigint, text) TO spor_app;

-- R16: whom a request routed to an organisation notifies — its active super users (their accounts are not
-- otherwise visible to the requester).
CREATE FUNCTION spor_super_user_recipients(organisation text)
    RETURNS TABLE (account_id uuid, email text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.id, a.email FROM role_assignments r JOIN accounts a ON a.id = r.account_id
    WHERE r.organisation_id = organisation AND r.role = 'spor-industry-super-user'
      AND r.revoked_at IS NULL AND a.status = 'active'
    ORDER BY a.id
$$;
COMMENT ON FUNCTION spor_super_user_recipients(text) IS 'R16: the active super users of an organisation, to notify of requests routed to them.';
GRANT EXECUTE ON FUNCTION spor_super_user_recipients(text) TO spor_app;
