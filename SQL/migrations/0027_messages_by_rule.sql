-- 0027 — R16: the rules write the messages, not the caller; the check verifies template and recipients.
--
-- Until now R16's check (0004) asked only that *some* outbox row about the changed subject exist in the transaction,
-- and the application role could insert rows itself (0020: to an account at its own address), so a decision could
-- satisfy R16 with a message to the wrong person, or of the wrong kind. Now:
--   * the check names the template and the recipients each notified change needs: a request routed to an
--     organisation → `request-filed` to every active super user of it; a decision (approved, rejected, expired) →
--     `request-decided` to the requester; a self-registration → `verify-email` to the new account; a ticket opened →
--     `ticket-opened` to its requester, resolved → `ticket-resolved` to its requester; an OMS change request decided
--     → `oms-change-request-decided` to its requester;
--   * spor_app inserts no outbox rows at all. The service's commands write their messages in their own functions.
--     A direct SQL client asks for the message a change needs with spor_notify(subject type, subject id, template):
--     the function picks the recipients (the ones the rule names) and the text, and only for a subject changed in
--     the calling transaction, so nobody can send anything to anyone about nothing.

CREATE FUNCTION r16_message_required() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    fields jsonb := to_jsonb(NEW);
    subject_key text := fields ->> TG_ARGV[1];
    wanted text := TG_ARGV[2];
    missing uuid;
BEGIN
    IF TG_ARGV[3] = 'super-users' THEN
        SELECT r.account_id INTO missing
        FROM role_assignments r JOIN accounts a ON a.id = r.account_id
        WHERE r.organisation_id = fields ->> 'organisation_id' AND r.role = 'spor-industry-super-user'
          AND r.revoked_at IS NULL AND a.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM notification_outbox o
                          WHERE o.subject_type = TG_ARGV[0] AND o.subject_id = subject_key
                            AND o.transaction_id = txid_current() AND o.template = wanted
                            AND o.recipient_account_id = r.account_id AND o.recipient_email = a.email)
        LIMIT 1;
    ELSE
        missing := (fields ->> TG_ARGV[3])::uuid;
        IF EXISTS (SELECT 1 FROM notification_outbox o JOIN accounts a ON a.id = o.recipient_account_id
                   WHERE o.subject_type = TG_ARGV[0] AND o.subject_id = subject_key
                     AND o.transaction_id = txid_current() AND o.template = wanted
                     AND o.recipient_account_id = missing AND o.recipient_email = a.email) THEN
            missing := NULL;
        END IF;
    END IF;
    IF missing IS NOT NULL OR NOT EXISTS (SELECT 1 FROM notification_outbox o
                                          WHERE o.subject_type = TG_ARGV[0] AND o.subject_id = subject_key
                                            AND o.transaction_id = txid_current() AND o.template = wanted) THEN
        PERFORM spor_refuse('R16', 'notification-required',
            'change of ' || TG_ARGV[0] || ' ' || subject_key || ' needs its ' || wanted || ' message to '
            || CASE WHEN TG_ARGV[3] = 'super-users' THEN 'every active super user of its organisation'
                    ELSE 'account ' || coalesce(missing::text, fields ->> TG_ARGV[3]) END
            || ' in its transaction');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION r16_message_required() IS 'R16: at commit, a notified change has its message — the right template, to the right accounts at their own addresses — from the same transaction.';
REVOKE EXECUTE ON FUNCTION r16_message_required() FROM PUBLIC;

DROP TRIGGER r16_request_filed ON access_requests;
DROP TRIGGER r16_request_decided ON access_requests;
DROP TRIGGER r16_verification_sent ON accounts;
DROP TRIGGER r16_ticket_notified ON service_desk_tickets;
DROP TRIGGER r16_oms_outcome_notified ON oms_change_requests;
CREATE CONSTRAINT TRIGGER r16_request_filed AFTER INSERT ON access_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.approver_kind = 'organisation-super-users')
    EXECUTE FUNCTION r16_message_required('access_request', 'id', 'request-filed', 'super-users');
CREATE CONSTRAINT TRIGGER r16_request_decided AFTER UPDATE OF status ON access_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status IN ('approved', 'rejected', 'expired'))
    EXECUTE FUNCTION r16_message_required('access_request', 'id', 'request-decided', 'requester_id');
CREATE CONSTRAINT TRIGGER r16_verification_sent AFTER INSERT ON accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION r16_message_required('account', 'id', 'verify-email', 'id');
CREATE CONSTRAINT TRIGGER r16_ticket_opened AFTER INSERT ON service_desk_tickets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION r16_message_required('service_desk_ticket', 'id', 'ticket-opened', 'requester_id');
CREATE CONSTRAINT TRIGGER r16_ticket_resolved AFTER UPDATE OF status ON service_desk_tickets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'resolved')
    EXECUTE FUNCTION r16_message_required('service_desk_ticket', 'id', 'ticket-resolved', 'requester_id');
CREATE CONSTRAINT TRIGGER r16_oms_outcome_notified AFTER UPDATE OF status ON oms_change_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status <> 'pending')
    EXECUTE FUNCTION r16_message_required('oms_change_request', 'id', 'oms-change-request-decided', 'requester_id');
DROP FUNCTION r16_notification_required();

-- The application role writes no outbox rows.
DROP POLICY r16_outbox_insert ON notification_outbox;
REVOKE ALL ON notification_outbox FROM spor_app;
DROP FUNCTION spor_is_account_email(uuid, text);

-- The message a change made in the calling transaction needs, for a direct SQL client (the service's commands
-- write theirs in their own functions). The caller names the subject and the template; the rule picks the
-- recipients and the text. Refused: nobody acting; a template that does not fit the subject; a subject that does
-- not exist or was not changed in this transaction. Returns the number of messages queued.
CREATE FUNCTION spor_notify(about_type text, about_id text, template text) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_actor();
    key bigint;
    this_transaction text := (pg_current_xact_id()::text::bigint % 4294967296)::text;
    r access_requests;
    t service_desk_tickets;
    c oms_change_requests;
    queued integer;
BEGIN
    IF actor IS NULL THEN
        PERFORM spor_refuse('R13', 'not-authenticated', 'sign in first: spor_authenticate(token)');
    END IF;
    IF (about_type, template) NOT IN (('access_request', 'request-filed'), ('access_request', 'request-decided'),
                                      ('service_desk_ticket', 'ticket-opened'), ('service_desk_ticket', 'ticket-resolved'),
                                      ('oms_change_request', 'oms-change-request-decided')) THEN
        PERFORM spor_refuse('R16', 'validation-failed', 'no ' || template || ' message is about a ' || about_type);
    END IF;
    IF about_id !~ '^[0-9]{1,18}$' THEN
        PERFORM spor_refuse('R16', 'not-found', about_type || ' ' || about_id || ' was not changed in this transaction');
    END IF;
    key := about_id::bigint;
    IF about_type = 'access_request' AND template IN ('request-filed', 'request-decided') THEN
        SELECT * INTO r FROM access_requests x WHERE x.id = key AND x.xmin::text = this_transaction;
        IF FOUND AND template = 'request-filed' AND r.status = 'pending' AND r.approver_kind = 'organisation-super-users' THEN
            PERFORM spor_queue_to_super_users(r.organisation_id, 'request-filed', 'Access request ' || r.id || ' to decide',
                'A request for the role ' || r.role || ' in ' || r.organisation_id || ' waits for your decision.',
                'access_request', r.id::text);
        ELSIF FOUND AND template = 'request-decided' AND r.status IN ('approved', 'rejected', 'expired') THEN
            PERFORM spor_queue_to_account(r.requester_id, r.organisation_id, 'request-decided',
                'Your access request ' || r.id || ' is ' || r.status,
                'Your request for the role ' || r.role || coalesce(' in ' || r.organisation_id, '') || ' was ' || r.status || '.'
                    || coalesce(' Comment: ' || r.decision_reason, ''),
                'access_request', r.id::text);
        ELSE
            PERFORM spor_refuse('R16', 'not-found', 'access request ' || about_id || ' was not changed in this transaction to what ' || template || ' tells');
        END IF;
    ELSIF about_type = 'service_desk_ticket' AND template IN ('ticket-opened', 'ticket-resolved') THEN
        SELECT * INTO t FROM service_desk_tickets x WHERE x.id = key AND x.xmin::text = this_transaction;
        IF FOUND AND (template = 'ticket-opened') = (t.status = 'open') THEN
            PERFORM spor_queue_to_account(t.requester_id, t.organisation_id, template,
                'Service request ' || t.id || CASE WHEN t.status = 'open' THEN ' received' ELSE ' is resolved' END,
                'Your service request ' || t.id || ' for access request ' || t.access_request_id || ' is ' || t.status || '.',
                'service_desk_ticket', t.id::text);
        ELSE
            PERFORM spor_refuse('R16', 'not-found', 'ticket ' || about_id || ' was not changed in this transaction to what ' || template || ' tells');
        END IF;
    ELSIF about_type = 'oms_change_request' AND template = 'oms-change-request-decided' THEN
        SELECT * INTO c FROM oms_change_requests x WHERE x.id = key AND x.xmin::text = this_transaction;
        IF FOUND AND c.status <> 'pending' THEN
            PERFORM spor_queue_to_account(c.requester_id, NULL, template,
                'Your OMS change request ' || c.id || ' is ' || c.status,
                'Your request to add an organisation to OMS was ' || c.status || '.', 'oms_change_request', c.id::text);
        ELSE
            PERFORM spor_refuse('R16', 'not-found', 'change request ' || about_id || ' was not decided in this transaction');
        END IF;
    ELSE
        PERFORM spor_refuse('R16', 'validation-failed', 'no ' || template || ' message is about a ' || about_type);
    END IF;
    SELECT count(*) INTO queued FROM notification_outbox o
    WHERE o.subject_type = about_type AND o.subject_id = about_id AND o.transaction_id = txid_current()
      AND o.template = spor_notify.template;
    RETURN queued;
END
$$;
COMMENT ON FUNCTION spor_notify(text, text, text) IS 'R16: queues the message a change of this transaction needs, to the recipients the rule names (for direct SQL clients).';
REVOKE EXECUTE ON FUNCTION spor_notify(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_notify(text, text, text) TO spor_app;
