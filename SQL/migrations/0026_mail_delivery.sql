-- 0026 — R16: e-mail that reaches people. Delivery with leases, retries and dead messages; the outbox out of the
-- application role's sight.
--
-- 0006's worker held its claim (FOR UPDATE) in one transaction across every send, so a slow mail server held the
-- transaction open, and a crash lost nothing only because the whole batch rolled back. Now a claim is a lease: the
-- worker claims due rows and commits at once, sends with no transaction open, then records each outcome. A message
-- whose worker died is claimed again when its lease expires (and sent again with the same Message-ID: delivery is
-- at least once). A transient failure sets the next attempt after a back-off the worker chose; a permanent one (or
-- too many transient ones) ends the message as dead with the server's reply; an EMA administrator can requeue it.
--
-- Who may do what:
--   spor_worker    claims, records outcomes, reads the queue's figures (for /metrics).
--   spor_app       no SELECT any more (message bodies carry verification links): an EMA administrator lists messages
--                  without their bodies and requeues dead ones through spor_admin_notifications and
--                  spor_requeue_notification, which check the token's account. INSERT stays as 0020 left it (to an
--                  account at its own address, for an actor): the service's commands write their messages in their
--                  own functions, but a direct SQL client still writes the message a rule needs itself.
--   spor_reporting unchanged (no access to the outbox).
ALTER TABLE notification_outbox
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN last_attempt_at timestamptz,
    ADD COLUMN dead_at timestamptz;
COMMENT ON COLUMN notification_outbox.next_attempt_at IS 'R16: not claimed before this time (back-off after a transient failure).';
COMMENT ON COLUMN notification_outbox.lease_until IS 'R16: claimed by a worker until then; after it, claimable again (the worker died).';
COMMENT ON COLUMN notification_outbox.dead_at IS 'R16: given up (permanent failure, or too many transient ones); last_error has the reply.';
COMMENT ON COLUMN notification_outbox.last_error IS 'R16: the reply or error of the last failed attempt.';
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;

-- The application role no longer reads the outbox.
DROP POLICY r13_outbox_read ON notification_outbox;
REVOKE SELECT ON notification_outbox FROM spor_app;

DROP FUNCTION spor_claim_notifications(integer);
DROP FUNCTION spor_mark_notification(bigint, text);

-- Claims up to `batch` due messages for `lease_seconds` (SKIP LOCKED and the lease: two workers never hold one
-- message at once). Committed by the caller before sending.
CREATE FUNCTION spor_claim_notifications(batch integer, lease_seconds double precision)
    RETURNS TABLE (id bigint, recipient_email text, template text, subject text, body text, created_at timestamptz,
                   attempts integer)
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE notification_outbox o
    SET attempts = o.attempts + 1, last_attempt_at = now(),
        lease_until = now() + make_interval(secs => greatest(lease_seconds, 1))
    WHERE o.id IN (SELECT n.id FROM notification_outbox n
                   WHERE n.delivered_at IS NULL AND n.dead_at IS NULL AND n.next_attempt_at <= now()
                     AND (n.lease_until IS NULL OR n.lease_until <= now())
                   ORDER BY n.next_attempt_at, n.id LIMIT greatest(batch, 0) FOR UPDATE SKIP LOCKED)
    RETURNING o.id, o.recipient_email, o.template, o.subject, o.body, o.created_at, o.attempts
$$;
COMMENT ON FUNCTION spor_claim_notifications(integer, double precision) IS 'R16: leases due messages to a worker (several workers never hold one message at once; a dead worker''s lease expires).';

-- Records one attempt's outcome: 'sent', 'retry' (after retry_seconds) or 'dead'. Only a message still undelivered
-- and not dead changes (a late outcome of an expired lease cannot undo a delivery); returns whether it changed.
CREATE FUNCTION spor_record_delivery(notification bigint, outcome text, reply text, retry_seconds double precision)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF outcome NOT IN ('sent', 'retry', 'dead') THEN
        PERFORM spor_refuse('R16', 'validation-failed', 'a delivery outcome is sent, retry or dead');
    END IF;
    UPDATE notification_outbox
    SET delivered_at = CASE WHEN outcome = 'sent' THEN now() END,
        dead_at = CASE WHEN outcome = 'dead' THEN now() END,
        last_error = CASE WHEN outcome = 'sent' THEN last_error ELSE left(reply, 2000) END,
        next_attempt_at = CASE WHEN outcome = 'retry'
                               THEN now() + make_interval(secs => least(greatest(coalesce(retry_seconds, 0), 0), 86400))
                               ELSE next_attempt_at END,
        lease_until = NULL
    WHERE id = notification AND delivered_at IS NULL AND dead_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION spor_record_delivery(bigint, text, text, double precision) IS 'R16: records a delivery attempt: sent, retry later, or dead (with the reply).';

-- The queue's figures for /metrics: messages waiting (not dead), dead ones, and the age of the oldest waiting.
CREATE FUNCTION spor_outbox_figures()
    RETURNS TABLE (queued bigint, dead bigint, oldest_queued_seconds double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FILTER (WHERE delivered_at IS NULL AND dead_at IS NULL),
           count(*) FILTER (WHERE dead_at IS NOT NULL),
           coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE delivered_at IS NULL AND dead_at IS NULL)), 0)::double precision
    FROM notification_outbox
    WHERE delivered_at IS NULL
$$;
COMMENT ON FUNCTION spor_outbox_figures() IS 'R16: queue depth, dead messages and the oldest waiting message''s age (for /metrics).';

REVOKE EXECUTE ON FUNCTION spor_claim_notifications(integer, double precision),
    spor_record_delivery(bigint, text, text, double precision), spor_outbox_figures() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_claim_notifications(integer, double precision),
    spor_record_delivery(bigint, text, text, double precision), spor_outbox_figures() TO spor_worker;

-- The outbox for EMA administrators, newest first, without bodies (they carry verification links); anyone else:
-- not-found (R13), so the endpoint is not revealed.
CREATE FUNCTION spor_admin_notifications(token text, recipient text, recipient_account uuid, before bigint,
                                         page_limit integer)
    RETURNS TABLE (id bigint, template text, recipient_email text, subject text, created_at timestamptz,
                   delivered_at timestamptz, dead_at timestamptz, attempts integer, last_error text,
                   next_attempt_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    actor uuid := spor_authenticate(token);
BEGIN
    IF NOT spor_has_staff_role(actor, 'ema-admin') THEN
        PERFORM spor_refuse('R13', 'not-found', 'Not found.');
    END IF;
    RETURN QUERY
    SELECT o.id, o.template, o.recipient_email, o.subject, o.created_at, o.delivered_at, o.dead_at, o.attempts,
           o.last_error, o.next_attempt_at
    FROM notification_outbox o
    WHERE (recipient IS NULL OR lower(o.recipient_email) = lower(recipient))
      AND (recipient_account IS NULL OR o.recipient_account_id = recipient_account)
      AND (before IS NULL OR o.id < before)
    ORDER BY o.id DESC LIMIT greatest(page_limit, 0);
END
$$;
COMMENT ON FUNCTION spor_admin_notifications(text, text, uuid, bigint, integer) IS 'R16/R13: the outbox''s delivery state for EMA administrators (no bodies); not-found for anyone else.';

-- An audit event may be about a notification (its requeue).
CREATE OR REPLACE FUNCTION r15_audit_subject_organisation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.subject_type NOT IN ('account', 'access_request', 'role_assignment', 'service_desk_ticket',
                                'oms_change_request', 'organisation', 'notification') THEN
        PERFORM spor_refuse('R15', 'audit-subject',
            'an audit event is about an account, request, role assignment, ticket, change request, organisation or notification');
    END IF;
    IF NEW.organisation_id IS DISTINCT FROM spor_subject_organisation(NEW.subject_type, NEW.subject_id) THEN
        PERFORM spor_refuse('R15', 'audit-organisation', 'an audit event names the organisation of its subject');
    END IF;
    RETURN NEW;
END
$$;

-- An EMA administrator puts a dead message back in the queue (attempts start again), audited. Returns false when
-- the message is not dead (queued or sent: nothing to do); not-found for an unknown message or anyone else.
CREATE FUNCTION spor_requeue_notification(token text, notification bigint) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
    message notification_outbox;
BEGIN
    IF NOT spor_has_staff_role(actor, 'ema-admin') THEN
        PERFORM spor_refuse('R13', 'not-found', 'Not found.');
    END IF;
    SELECT * INTO message FROM notification_outbox o WHERE o.id = notification FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM spor_refuse('R16', 'not-found', 'Notification ' || notification || ' does not exist.');
    END IF;
    IF message.dead_at IS NULL THEN
        RETURN false;
    END IF;
    UPDATE notification_outbox
    SET dead_at = NULL, attempts = 0, next_attempt_at = now(), lease_until = NULL
    WHERE id = notification;
    PERFORM spor_audit(actor, NULL, 'notification.requeued', 'notification', notification::text,
        jsonb_build_object('deadAt', message.dead_at, 'attempts', message.attempts, 'lastError', message.last_error),
        jsonb_build_object('status', 'queued'));
    RETURN true;
END
$$;
COMMENT ON FUNCTION spor_requeue_notification(text, bigint) IS 'R16: an EMA administrator requeues a dead message (audited, R15); not-found for anyone else.';

REVOKE EXECUTE ON FUNCTION spor_admin_notifications(text, text, uuid, bigint, integer),
    spor_requeue_notification(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_admin_notifications(text, text, uuid, bigint, integer),
    spor_requeue_notification(text, bigint) TO spor_app;

-- R2: the verification e-mail carries a link. The body names the service's public address as {{public-url}}; the
-- worker puts in the configured one when it sends (the database does not know where the service is reachable).
CREATE OR REPLACE FUNCTION spor_register(email text, display_name text, password_hash text, verification_seconds double precision)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    account uuid := gen_random_uuid();
    token text := encode(gen_random_bytes(32), 'hex');
    expires timestamptz := now() + make_interval(secs => verification_seconds);
BEGIN
    IF EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(spor_register.email)) THEN
        PERFORM spor_refuse('R2', 'account-exists', 'an account with this e-mail exists already: sign in with your existing EMA account');
    END IF;
    PERFORM spor_bind_actor(account);
    INSERT INTO accounts (id, email, display_name) VALUES (account, spor_register.email, spor_register.display_name);
    INSERT INTO credentials (account_id, password_hash) VALUES (account, spor_register.password_hash);
    INSERT INTO verification_tokens (token_hash, account_id, expires_at)
    VALUES (sha256(convert_to(token, 'UTF8')), account, expires);
    INSERT INTO audit_events (actor_id, action, subject_type, subject_id, after)
    VALUES (account, 'account.registered', 'account', account::text,
            jsonb_build_object('email', spor_register.email, 'status', 'pending'));
    INSERT INTO notification_outbox (recipient_account_id, recipient_email, template, subject, body, subject_type, subject_id)
    VALUES (account, spor_register.email, 'verify-email', 'Confirm your e-mail address for the EMA Account Management portal',
            'Welcome, ' || spor_register.display_name || E'.\n\n'
            || E'Confirm your e-mail address for the EMA Account Management portal by opening this link:\n\n'
            || '{{public-url}}/v1/accounts/verify?token=' || token || E'\n\n'
            || 'The link works once, until ' || to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || E' UTC. '
            || 'If you did not register, ignore this message: the account stays inactive.' || E'\n\n'
            || 'Verification token: ' || token,
            'account', account::text);
    RETURN account;
END
$$;
