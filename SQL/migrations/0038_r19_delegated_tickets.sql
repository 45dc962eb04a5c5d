-- R19 (issue 12): a service desk ticket whose request was re-routed to the organisation is closed as `delegated`.
--
-- A first-super-user request goes to the EMA service desk with a ticket (R8, R10). When another request of the same
-- organisation is approved first, the organisation has a super user and every other pending super-user request is
-- re-routed to its super users (R11) — but its ticket stayed open, due in 24 hours, and became "overdue" in the
-- service desk's queue although the desk could no longer decide it. Now the re-route closes it: status `resolved`,
-- resolution `delegated`, resolved by whoever's command re-routed it, audited (`service-desk-ticket.resolved`) and
-- its requester told (`ticket-resolved`). In SQL: r10_ticket_requirements resolves a ticket as `delegated` only when
-- its request is routed to the organisation (`routing-mismatch`, R19), naming the acting account; `approved` and
-- `rejected` stay the service desk's; the re-route (spor_reroute_locked) closes the tickets, and granting a super
-- user re-routes the organisation's requests waiting for the desk at once (r19_reroute_on_new_super_user). In Swift:
-- TicketPolicy.decision refuses a service desk decision on a delegated ticket (`ticket-delegated`).

ALTER TABLE service_desk_tickets DROP CONSTRAINT service_desk_tickets_resolution_check;
ALTER TABLE service_desk_tickets ADD CONSTRAINT r19_ticket_resolutions
    CHECK (resolution IN ('approved', 'rejected', 'delegated'));
COMMENT ON COLUMN service_desk_tickets.resolution IS
    'approved or rejected by the EMA service desk; delegated when the request was re-routed to the organisation''s super users (R19).';

CREATE OR REPLACE FUNCTION r10_ticket_requirements() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    request access_requests%ROWTYPE;
    letter documents%ROWTYPE;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.requester_id IS DISTINCT FROM spor_actor() THEN
            PERFORM spor_refuse('R13', 'not-authorised', 'a ticket is opened by its requester');
        END IF;
        SELECT * INTO request FROM access_requests WHERE id = NEW.access_request_id;
        IF request.requester_id IS DISTINCT FROM NEW.requester_id OR request.status <> 'pending'
           OR request.role <> 'spor-industry-super-user' OR request.approver_kind <> 'ema-service-desk' THEN
            PERFORM spor_refuse('R10', 'not-first-super-user-request',
                'the ticket must quote the requester''s own pending first-super-user request');
        END IF;
        IF NEW.organisation_id IS DISTINCT FROM request.organisation_id THEN
            PERFORM spor_refuse('R10', 'validation-failed', 'the ticket belongs to the request''s organisation');
        END IF;
        SELECT * INTO letter FROM documents WHERE id = NEW.letter_document_id;
        IF letter.owner_id IS DISTINCT FROM NEW.requester_id THEN
            PERFORM spor_refuse('R10', 'validation-failed', 'the affiliation letter must be uploaded by the requester');
        END IF;
        NEW.opened_at := now();
        NEW.due_at := NEW.opened_at + interval '24 hours';
        NEW.status := 'open';
        RETURN NEW;
    END IF;
    -- UPDATE: only its resolution.
    IF NEW.id <> OLD.id OR NEW.access_request_id <> OLD.access_request_id OR NEW.subject <> OLD.subject
       OR NEW.letter_document_id <> OLD.letter_document_id OR NEW.opened_at <> OLD.opened_at
       OR NEW.due_at <> OLD.due_at OR NEW.requester_id <> OLD.requester_id
       OR NEW.signatory_organisation_id <> OLD.signatory_organisation_id THEN
        PERFORM spor_refuse('R10', 'immutable', 'a ticket''s request, subject and letter never change');
    END IF;
    IF OLD.status = 'resolved' THEN
        PERFORM spor_refuse('R18', 'not-pending', 'ticket ' || OLD.id || ' is already resolved');
    END IF;
    IF NEW.resolution = 'delegated' THEN
        -- R19: delegated exactly when the request has gone to the organisation's super users.
        SELECT * INTO request FROM access_requests WHERE id = NEW.access_request_id;
        IF request.approver_kind <> 'organisation-super-users' THEN
            PERFORM spor_refuse('R19', 'routing-mismatch',
                'ticket ' || OLD.id || ' is closed as delegated only once its request is decided by the organisation''s super users');
        END IF;
        IF spor_actor() IS NULL OR NEW.resolved_by IS DISTINCT FROM spor_actor() THEN
            PERFORM spor_refuse('R19', 'not-authorised', 'a delegated ticket names the account whose command re-routed its request');
        END IF;
    ELSIF NOT spor_has_staff_role(spor_actor(), 'ema-service-desk') OR NEW.resolved_by IS DISTINCT FROM spor_actor() THEN
        PERFORM spor_refuse('R10', 'not-authorised', 'tickets are resolved by the EMA service desk');
    END IF;
    NEW.resolved_at := now();
    RETURN NEW;
END
$$;

-- The re-route (0021) now closes the request's open tickets when it hands the request to the organisation.
CREATE OR REPLACE FUNCTION spor_reroute_locked(request access_requests, kind text, actor uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ticket record;
BEGIN
    UPDATE access_requests SET approver_kind = kind WHERE id = request.id;
    PERFORM spor_audit(actor, request.organisation_id, 'access-request.rerouted', 'access_request', request.id::text,
                       jsonb_build_object('approverKind', request.approver_kind), jsonb_build_object('approverKind', kind));
    IF kind = 'organisation-super-users' THEN
        PERFORM spor_queue_to_super_users(request.organisation_id, 'request-filed',
            'Access request ' || request.id || ' is now yours to decide',
            request.organisation_id || ' has a super user now, so request ' || request.id || ' for ' || request.role
                || ' is decided by its super users.',
            'access_request', request.id::text);
        FOR ticket IN SELECT t.id FROM service_desk_tickets t
                      WHERE t.access_request_id = request.id AND t.status = 'open' ORDER BY t.id LOOP
            UPDATE service_desk_tickets
               SET status = 'resolved', resolution = 'delegated', resolved_by = actor, resolved_at = now(),
                   resolution_comment = request.organisation_id || ' has a super user now; its super users decide request '
                       || request.id || '.'
             WHERE id = ticket.id;
            PERFORM spor_audit(actor, request.organisation_id, 'service-desk-ticket.resolved', 'service_desk_ticket',
                ticket.id::text, jsonb_build_object('status', 'open'),
                jsonb_build_object('status', 'resolved', 'resolution', 'delegated'));
            PERFORM spor_queue_to_account(request.requester_id, request.organisation_id, 'ticket-resolved',
                'Service request ' || ticket.id || ' is closed: your organisation decides',
                'Your service request ' || ticket.id || ' is closed as delegated: ' || request.organisation_id
                    || ' has a super user now, so your access request ' || request.id
                    || ' is decided by its super users. There is nothing more to do at the EMA service desk.',
                'service_desk_ticket', ticket.id::text);
        END LOOP;
    ELSE
        PERFORM spor_queue_to_account(request.requester_id, request.organisation_id, 'request-filed-first-super-user',
            'Your access request ' || request.id || ': open a service desk ticket',
            request.organisation_id || ' has no super user any more, so your request ' || request.id
                || ' is approved by the EMA service desk. Open a service request with "SPOR super user role access – request ID '
                || request.id || '" in the subject and attach the signed SPOR User Affiliation Template Letter.',
            'access_request', request.id::text);
    END IF;
END
$$;
COMMENT ON FUNCTION spor_reroute_locked(access_requests, text, uuid) IS 'R11, R19: re-routes a pending request (caller holds the lock), with audit and messages; handing it to the organisation closes its open tickets as delegated. Owner only.';

-- The re-route happens when the organisation gets its super user, not when someone next tries to decide the
-- request (0021 re-routed lazily, in spor_lock_and_route): granting a super user role re-routes the organisation's
-- other pending requests that wait for the service desk, in the same statement and under the lock the granting
-- command holds, by the same actor. So their tickets close at once instead of waiting, overdue, for a decision the
-- desk can no longer make. A request another transaction is changing right now (its own decision, a cancellation) is
-- skipped rather than waited for: waiting could deadlock two clients that approve by hand without the organisation
-- lock, and such a request is re-routed when it is next decided (spor_lock_and_route), as before.
CREATE FUNCTION r19_reroute_on_new_super_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r access_requests%ROWTYPE;
BEGIN
    FOR r IN SELECT * FROM access_requests q
             WHERE q.organisation_id = NEW.organisation_id AND q.status = 'pending' AND q.approver_kind = 'ema-service-desk'
               AND q.id IS DISTINCT FROM NEW.access_request_id
             ORDER BY q.id
             FOR UPDATE SKIP LOCKED LOOP
        PERFORM spor_reroute_locked(r, 'organisation-super-users', coalesce(spor_actor(), NEW.granted_by));
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION r19_reroute_on_new_super_user() FROM PUBLIC;
CREATE TRIGGER r19_reroute_on_new_super_user AFTER INSERT ON role_assignments
    FOR EACH ROW WHEN (NEW.role = 'spor-industry-super-user' AND NEW.revoked_at IS NULL)
    EXECUTE FUNCTION r19_reroute_on_new_super_user();
COMMENT ON FUNCTION r19_reroute_on_new_super_user() IS 'R11, R19: a new super user takes over the organisation''s requests waiting for the service desk; their tickets close as delegated.';

COMMENT ON COLUMN reporting.service_desk_sla.resolution IS 'approved or rejected by the service desk, or delegated (R19: the request went to the organisation''s super users), when resolved.';
