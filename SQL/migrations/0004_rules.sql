-- 0004 — the SQL half of the rules R4–R18: triggers that re-check every change, whoever makes it.
-- Each trigger is named after the rule it enforces. Refusals are raised with spor_refuse(rule, code, message).

------------------------------------------------------------------------------------------------------------
-- Access requests: submission (R3, R4, R5, R6, R7, R8, R9, R18)
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r8_route_new_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    requester accounts%ROWTYPE;
    super_users integer;
    expected_kind text;
BEGIN
    IF NEW.requester_id IS DISTINCT FROM spor_actor() THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'a request is filed by its requester (app.account_id)');
    END IF;
    SELECT * INTO requester FROM accounts WHERE id = NEW.requester_id;
    IF requester.status IS DISTINCT FROM 'active' THEN
        PERFORM spor_refuse('R2', 'account-not-active', 'the account must be verified and active to file requests');
    END IF;
    IF NOT requester.security_questions_waived
       AND NOT EXISTS (SELECT 1 FROM security_answers WHERE account_id = NEW.requester_id) THEN
        PERFORM spor_refuse('R3', 'security-questions-required', 'set answers to security questions before filing a request');
    END IF;
    -- R4 before anything that names the organisation (the order of ApprovalPolicy.submit).
    IF NEW.role <> 'spor-unaffiliated-user' AND NEW.organisation_id IS NULL THEN
        PERFORM spor_refuse('R4', 'organisation-required', NEW.role || ' is held in one organisation: name it');
    ELSIF NEW.role = 'spor-unaffiliated-user' AND NEW.organisation_id IS NOT NULL THEN
        PERFORM spor_refuse('R4', 'organisation-not-allowed', 'the unaffiliated role belongs to no organisation');
    END IF;
    IF NEW.organisation_id IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM organisations WHERE id = NEW.organisation_id AND status = 'active') THEN
            PERFORM spor_refuse('R6', 'unknown-organisation', 'organisation ' || NEW.organisation_id || ' is not in OMS');
        END IF;
        PERFORM spor_lock_organisation(NEW.organisation_id);
    END IF;
    IF EXISTS (SELECT 1 FROM role_assignments
               WHERE account_id = NEW.requester_id AND role = NEW.role
                 AND organisation_id IS NOT DISTINCT FROM NEW.organisation_id AND revoked_at IS NULL) THEN
        PERFORM spor_refuse('R7', 'already-held', 'the requester already holds this role');
    END IF;
    IF EXISTS (SELECT 1 FROM access_requests
               WHERE requester_id = NEW.requester_id AND role = NEW.role
                 AND organisation_id IS NOT DISTINCT FROM NEW.organisation_id AND status = 'pending') THEN
        PERFORM spor_refuse('R7', 'duplicate-request', 'a request for this role is already pending');
    END IF;

    NEW.created_at := now();
    IF NEW.role = 'spor-unaffiliated-user' THEN
        -- R5: approved by the system at once.
        IF NEW.status <> 'approved' OR NEW.approver_kind <> 'automatic' OR NEW.decided_by IS NOT NULL THEN
            PERFORM spor_refuse('R5', 'routing-mismatch', 'the unaffiliated role is approved automatically');
        END IF;
        NEW.decided_at := now();
        NEW.expires_at := NULL;
        RETURN NEW;
    END IF;

    IF NEW.status <> 'pending' OR NEW.decided_by IS NOT NULL OR NEW.decided_at IS NOT NULL THEN
        PERFORM spor_refuse('R18', 'not-pending', 'organisation role requests start pending');
    END IF;
    super_users := spor_active_super_user_count(NEW.organisation_id);
    IF NEW.role = 'spor-industry-user' AND super_users = 0 THEN
        PERFORM spor_refuse('R9', 'no-super-user',
            'organisation ' || NEW.organisation_id || ' has no super user yet: request the super user role first');
    END IF;
    expected_kind := CASE WHEN NEW.role = 'spor-industry-super-user' AND super_users = 0
                          THEN 'ema-service-desk' ELSE 'organisation-super-users' END;
    IF NEW.approver_kind IS DISTINCT FROM expected_kind THEN
        PERFORM spor_refuse('R8', 'routing-mismatch', 'this request is approved by ' || expected_kind);
    END IF;
    IF NEW.expires_at IS NULL THEN
        NEW.expires_at := now() + (SELECT request_lifetime FROM settings);
    ELSIF NEW.expires_at <= now() THEN
        PERFORM spor_refuse('R18', 'request-expired', 'a new request cannot expire in the past');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER r8_route_new_request BEFORE INSERT ON access_requests
    FOR EACH ROW EXECUTE FUNCTION r8_route_new_request();
COMMENT ON FUNCTION r8_route_new_request() IS 'R3–R9, R18 at submission: active requester with security answers, organisation in OMS, no duplicate or held role, routing under the organisation lock.';

------------------------------------------------------------------------------------------------------------
-- Access requests: decisions (R8, R10, R11, R12, R18)
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r11_decide_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_actor();
    super_users integer;
    is_first boolean;
BEGIN
    IF NEW.id <> OLD.id OR NEW.requester_id <> OLD.requester_id OR NEW.role <> OLD.role
       OR NEW.organisation_id IS DISTINCT FROM OLD.organisation_id OR NEW.created_at <> OLD.created_at
       OR NEW.justification IS DISTINCT FROM OLD.justification THEN
        PERFORM spor_refuse('R18', 'immutable', 'what was requested never changes');
    END IF;
    IF NEW.status = 'cancelled' AND spor_actor() IS DISTINCT FROM OLD.requester_id THEN
        PERFORM spor_refuse('R13', 'not-found', 'only the requester cancels a request');
    END IF;
    IF OLD.status <> 'pending' THEN
        PERFORM spor_refuse('R18', 'not-pending', 'request ' || OLD.id || ' is ' || OLD.status || ' and never changes again');
    END IF;
    IF NEW.organisation_id IS NOT NULL THEN
        PERFORM spor_lock_organisation(NEW.organisation_id);
        super_users := spor_active_super_user_count(NEW.organisation_id);
    END IF;
    is_first := NEW.role = 'spor-industry-super-user' AND super_users = 0;

    IF NEW.status = 'pending' THEN
        -- Only the routing may change while pending, and only to what it is now (R11).
        IF NEW.approver_kind IS DISTINCT FROM
           (CASE WHEN is_first THEN 'ema-service-desk' ELSE 'organisation-super-users' END)
           OR NEW.expires_at IS DISTINCT FROM OLD.expires_at OR NEW.decided_by IS NOT NULL THEN
            PERFORM spor_refuse('R8', 'routing-mismatch', 'a pending request can only be re-routed to its current approvers');
        END IF;
        RETURN NEW;
    END IF;

    NEW.decided_at := now();
    IF NEW.status = 'expired' THEN
        IF OLD.expires_at > now() OR NEW.decided_by IS NOT NULL THEN
            PERFORM spor_refuse('R18', 'not-pending', 'request ' || OLD.id || ' has not reached its expiry time');
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.decided_by IS DISTINCT FROM actor OR actor IS NULL THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'decided_by must be the acting account');
    END IF;
    IF NEW.status = 'cancelled' THEN
        IF actor <> OLD.requester_id THEN
            PERFORM spor_refuse('R13', 'not-found', 'only the requester cancels a request');
        END IF;
        RETURN NEW;
    END IF;

    -- approved or rejected; the checks run in the order of ApprovalPolicy.decide, so both halves give the same code.
    IF OLD.expires_at <= now() THEN
        PERFORM spor_refuse('R18', 'request-expired', 'request ' || OLD.id || ' expired at ' || OLD.expires_at);
    END IF;
    IF actor = OLD.requester_id THEN
        PERFORM spor_refuse('R12', 'self-approval', 'nobody approves or rejects their own request');
    END IF;
    IF is_first THEN
        IF NOT spor_has_staff_role(actor, 'ema-service-desk') THEN
            PERFORM spor_refuse('R8', 'first-super-user-needs-ema',
                'the first super user of ' || NEW.organisation_id || ' is approved by the EMA service desk');
        END IF;
        IF NEW.approver_kind <> 'ema-service-desk' THEN
            PERFORM spor_refuse('R8', 'routing-mismatch', 'a first super user request is decided by the EMA service desk');
        END IF;
        IF NEW.status = 'approved' AND NOT EXISTS (
            SELECT 1 FROM service_desk_tickets t JOIN documents d ON d.id = t.letter_document_id
            WHERE t.access_request_id = OLD.id AND t.status = 'open' AND t.organisation_id = OLD.organisation_id) THEN
            PERFORM spor_refuse('R10', 'ticket-required',
                'approving a first super user needs an open service desk ticket with the affiliation letter');
        END IF;
    ELSE
        IF NOT spor_is_active_super_user(actor, NEW.organisation_id) THEN
            IF spor_has_staff_role(actor, 'ema-service-desk') THEN
                PERFORM spor_refuse('R11', 'delegated-to-organisation',
                    NEW.organisation_id || ' has a super user: its super users decide this request');
            END IF;
            PERFORM spor_refuse('R13', 'not-found', 'only super users of ' || NEW.organisation_id || ' decide its requests');
        END IF;
        IF NEW.approver_kind <> 'organisation-super-users' THEN
            PERFORM spor_refuse('R11', 'delegated-to-organisation', 're-route the request to the organisation''s super users');
        END IF;
    END IF;
    IF NEW.status = 'rejected' AND coalesce(btrim(NEW.decision_reason), '') = '' THEN
        PERFORM spor_refuse('R18', 'reason-required', 'a rejection needs a reason');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER r11_decide_request BEFORE UPDATE ON access_requests
    FOR EACH ROW EXECUTE FUNCTION r11_decide_request();
COMMENT ON FUNCTION r11_decide_request() IS 'R8, R10–R12, R18 at decision time: routing recomputed under the organisation lock, ticket for first super users, no self-approval, decided requests immutable.';

CREATE FUNCTION r18_no_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM spor_refuse('R18', 'immutable', TG_TABLE_NAME || ' rows are never deleted');
    RETURN NULL;
END
$$;
CREATE TRIGGER r18_no_delete BEFORE DELETE ON access_requests FOR EACH ROW EXECUTE FUNCTION r18_no_delete();
CREATE TRIGGER r18_no_delete BEFORE DELETE ON role_assignments FOR EACH ROW EXECUTE FUNCTION r18_no_delete();
CREATE TRIGGER r18_no_delete BEFORE DELETE ON service_desk_tickets FOR EACH ROW EXECUTE FUNCTION r18_no_delete();

------------------------------------------------------------------------------------------------------------
-- Role assignments: only from an approved request or a staff grant (R4, R5, R11); revocation (R14)
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r4_assignment_source() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    request access_requests%ROWTYPE;
BEGIN
    IF NEW.revoked_at IS NOT NULL THEN
        PERFORM spor_refuse('R14', 'not-authorised', 'an assignment starts unrevoked');
    END IF;
    NEW.granted_at := now();
    IF NEW.source = 'access-request' THEN
        SELECT * INTO request FROM access_requests WHERE id = NEW.access_request_id;
        IF request.status IS DISTINCT FROM 'approved' OR request.requester_id <> NEW.account_id
           OR request.role <> NEW.role OR request.organisation_id IS DISTINCT FROM NEW.organisation_id THEN
            PERFORM spor_refuse('R4', 'not-authorised', 'a role assignment needs an approved request for that role');
        END IF;
        NEW.granted_by := request.decided_by;
        -- R11: the first super user is the one approved by the EMA service desk.
        IF NEW.first_super_user IS DISTINCT FROM (request.approver_kind = 'ema-service-desk') THEN
            PERFORM spor_refuse('R11', 'routing-mismatch', 'first_super_user follows the approval route');
        END IF;
    ELSE
        IF NEW.granted_by IS DISTINCT FROM spor_actor() OR NOT spor_has_staff_role(spor_actor(), 'ema-admin') THEN
            PERFORM spor_refuse('R4', 'not-authorised', 'staff grants are made by an EMA administrator');
        END IF;
        IF NEW.first_super_user THEN
            PERFORM spor_refuse('R11', 'routing-mismatch', 'only the service desk approves a first super user');
        END IF;
    END IF;
    IF NEW.role = 'spor-unaffiliated-user' THEN
        -- R5: effective after the configured delay.
        IF NEW.effective_from < now() + (SELECT unaffiliated_activation_delay FROM settings) THEN
            PERFORM spor_refuse('R5', 'activation-delay', 'the unaffiliated role becomes effective after the activation delay');
        END IF;
    ELSIF NEW.effective_from > now() THEN
        PERFORM spor_refuse('R5', 'activation-delay', 'organisation roles are effective at once');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER r4_assignment_source BEFORE INSERT ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION r4_assignment_source();
COMMENT ON FUNCTION r4_assignment_source() IS 'R4/R5/R11: a role assignment exists only from an approved request (same person, role, organisation) or an EMA admin grant.';

CREATE FUNCTION r14_revoke_assignment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_actor();
    remaining integer;
BEGIN
    IF NEW.id <> OLD.id OR NEW.account_id <> OLD.account_id OR NEW.role <> OLD.role
       OR NEW.organisation_id IS DISTINCT FROM OLD.organisation_id OR NEW.source <> OLD.source
       OR NEW.access_request_id IS DISTINCT FROM OLD.access_request_id OR NEW.granted_at <> OLD.granted_at
       OR NEW.granted_by IS DISTINCT FROM OLD.granted_by OR NEW.effective_from <> OLD.effective_from
       OR NEW.first_super_user <> OLD.first_super_user THEN
        PERFORM spor_refuse('R14', 'immutable', 'only revocation changes a role assignment');
    END IF;
    IF OLD.revoked_at IS NOT NULL THEN
        PERFORM spor_refuse('R14', 'not-found', 'the role was already revoked');
    END IF;
    IF NEW.revoked_at IS NULL THEN
        RETURN NEW;
    END IF;
    IF actor IS NULL OR NEW.revoked_by IS DISTINCT FROM actor THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'revoked_by must be the acting account');
    END IF;
    NEW.revoked_at := now();
    -- Lock first: whether the actor may revoke is decided on the state after concurrent revocations committed.
    IF OLD.organisation_id IS NOT NULL THEN
        PERFORM spor_lock_organisation(OLD.organisation_id);
    END IF;
    IF actor <> OLD.account_id
       AND NOT spor_has_staff_role(actor, 'ema-service-desk')
       AND (OLD.organisation_id IS NULL OR NOT spor_is_active_super_user(actor, OLD.organisation_id)) THEN
        PERFORM spor_refuse('R13', 'not-found', 'only the holder, the organisation''s super users or the service desk revoke a role');
    END IF;
    IF OLD.role = 'spor-industry-super-user' THEN
        SELECT count(*) INTO remaining FROM role_assignments r JOIN accounts a ON a.id = r.account_id
        WHERE r.organisation_id = OLD.organisation_id AND r.role = 'spor-industry-super-user'
          AND r.revoked_at IS NULL AND a.status = 'active' AND r.id <> OLD.id;
        IF remaining = 0 AND NOT spor_has_staff_role(actor, 'ema-service-desk') THEN
            PERFORM spor_refuse('R14', 'last-super-user',
                'the last super user of ' || OLD.organisation_id || ' can only be removed by the EMA service desk');
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER r14_revoke_assignment BEFORE UPDATE ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION r14_revoke_assignment();
COMMENT ON FUNCTION r14_revoke_assignment() IS 'R14: only revocation; by the holder, the organisation''s super users or the service desk; never the last super user except by the service desk.';

-- An approved organisation-role request is granted in the same transaction.
CREATE FUNCTION r4_approved_request_granted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM role_assignments WHERE access_request_id = NEW.id) THEN
        PERFORM spor_refuse('R4', 'grant-missing', 'approved request ' || NEW.id || ' was not granted in its transaction');
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER r4_approved_request_granted AFTER INSERT OR UPDATE OF status ON access_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'approved')
    EXECUTE FUNCTION r4_approved_request_granted();

------------------------------------------------------------------------------------------------------------
-- Service desk tickets (R10)
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r10_ticket_requirements() RETURNS trigger
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
    -- UPDATE: only resolution by the service desk.
    IF NEW.id <> OLD.id OR NEW.access_request_id <> OLD.access_request_id OR NEW.subject <> OLD.subject
       OR NEW.letter_document_id <> OLD.letter_document_id OR NEW.opened_at <> OLD.opened_at
       OR NEW.due_at <> OLD.due_at OR NEW.requester_id <> OLD.requester_id
       OR NEW.signatory_organisation_id <> OLD.signatory_organisation_id THEN
        PERFORM spor_refuse('R10', 'immutable', 'a ticket''s request, subject and letter never change');
    END IF;
    IF OLD.status = 'resolved' THEN
        PERFORM spor_refuse('R18', 'not-pending', 'ticket ' || OLD.id || ' is already resolved');
    END IF;
    IF NOT spor_has_staff_role(spor_actor(), 'ema-service-desk') OR NEW.resolved_by IS DISTINCT FROM spor_actor() THEN
        PERFORM spor_refuse('R10', 'not-authorised', 'tickets are resolved by the EMA service desk');
    END IF;
    NEW.resolved_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER r10_ticket_requirements BEFORE INSERT OR UPDATE ON service_desk_tickets
    FOR EACH ROW EXECUTE FUNCTION r10_ticket_requirements();
COMMENT ON FUNCTION r10_ticket_requirements() IS 'R10: a ticket quotes the requester''s own pending first-super-user request, with their letter; resolved by the service desk only.';

------------------------------------------------------------------------------------------------------------
-- OMS change requests and the dictionary (R17)
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r17_oms_change_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.requester_id IS DISTINCT FROM spor_actor() THEN
            PERFORM spor_refuse('R13', 'not-authorised', 'a change request is filed by its requester');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM role_assignments
                       WHERE account_id = NEW.requester_id AND revoked_at IS NULL AND effective_from <= now()) THEN
            PERFORM spor_refuse('R17', 'no-effective-role', 'OMS change requests need an effective SPOR role');
        END IF;
        IF NEW.status <> 'pending' OR NEW.decided_by IS NOT NULL OR NEW.organisation_id IS NOT NULL THEN
            PERFORM spor_refuse('R18', 'not-pending', 'change requests start pending');
        END IF;
        NEW.created_at := now();
        RETURN NEW;
    END IF;
    IF OLD.status <> 'pending' THEN
        PERFORM spor_refuse('R18', 'not-pending', 'change request ' || OLD.id || ' is already ' || OLD.status);
    END IF;
    IF NEW.requester_id <> OLD.requester_id OR NEW.name <> OLD.name OR NEW.country <> OLD.country OR NEW.city <> OLD.city THEN
        PERFORM spor_refuse('R17', 'immutable', 'what was requested never changes');
    END IF;
    IF NOT spor_has_staff_role(spor_actor(), 'ema-data-steward') OR NEW.decided_by IS DISTINCT FROM spor_actor() THEN
        PERFORM spor_refuse('R17', 'not-authorised', 'OMS change requests are decided by an EMA data steward');
    END IF;
    NEW.decided_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER r17_oms_change_request BEFORE INSERT OR UPDATE ON oms_change_requests
    FOR EACH ROW EXECUTE FUNCTION r17_oms_change_request();
COMMENT ON FUNCTION r17_oms_change_request() IS 'R17: filed by a holder of an effective SPOR role; decided once, by a data steward.';

------------------------------------------------------------------------------------------------------------
-- Audit trail (R15): append-only, and required with every change
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r15_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM spor_refuse('R15', 'audit-immutable', 'audit events are never updated, deleted or truncated');
    RETURN NULL;
END
$$;
CREATE TRIGGER r15_audit_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION r15_audit_append_only();
CREATE TRIGGER r15_audit_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION r15_audit_append_only();

CREATE FUNCTION r15_audit_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.actor_id IS DISTINCT FROM spor_actor() THEN
        PERFORM spor_refuse('R15', 'audit-actor', 'an audit event names the acting account');
    END IF;
    NEW.occurred_at := now();
    NEW.transaction_id := txid_current();
    RETURN NEW;
END
$$;
CREATE TRIGGER r15_audit_insert BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION r15_audit_insert();

-- Deferred to commit: each changed row has an audit event about it from the same transaction.
-- TG_ARGV[0] is the subject type, TG_ARGV[1] the key column.
CREATE FUNCTION r15_audit_required() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    subject_key text := to_jsonb(NEW) ->> TG_ARGV[1];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_events
                   WHERE subject_type = TG_ARGV[0] AND subject_id = subject_key AND transaction_id = txid_current()) THEN
        PERFORM spor_refuse('R15', 'audit-required',
            'change of ' || TG_ARGV[0] || ' ' || subject_key || ' has no audit event in its transaction');
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON access_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('access_request', 'id');
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON role_assignments
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('role_assignment', 'id');
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON service_desk_tickets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('service_desk_ticket', 'id');
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON oms_change_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('oms_change_request', 'id');
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON organisations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('organisation', 'id');
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('account', 'id');
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON staff_roles
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('account', 'account_id');
COMMENT ON FUNCTION r15_audit_required() IS 'R15: at commit, every changed row has an audit event about it written in the same transaction.';

------------------------------------------------------------------------------------------------------------
-- Notification outbox (R16): notified changes carry their notification in the same transaction
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION r16_notification_required() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    subject_key text := to_jsonb(NEW) ->> TG_ARGV[1];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM notification_outbox
                   WHERE subject_type = TG_ARGV[0] AND subject_id = subject_key AND transaction_id = txid_current()) THEN
        PERFORM spor_refuse('R16', 'notification-required',
            'change of ' || TG_ARGV[0] || ' ' || subject_key || ' has no notification in its transaction');
    END IF;
    RETURN NULL;
END
$$;
-- New requests routed to an organisation notify its super users.
CREATE CONSTRAINT TRIGGER r16_request_filed AFTER INSERT ON access_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.approver_kind = 'organisation-super-users')
    EXECUTE FUNCTION r16_notification_required('access_request', 'id');
-- Decisions (approved, rejected, expired) notify the requester.
CREATE CONSTRAINT TRIGGER r16_request_decided AFTER UPDATE OF status ON access_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status IN ('approved', 'rejected', 'expired'))
    EXECUTE FUNCTION r16_notification_required('access_request', 'id');
-- Self-registration sends the verification e-mail.
CREATE CONSTRAINT TRIGGER r16_verification_sent AFTER INSERT ON accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION r16_notification_required('account', 'id');
-- Tickets opened and resolved, OMS change outcomes.
CREATE CONSTRAINT TRIGGER r16_ticket_notified AFTER INSERT OR UPDATE OF status ON service_desk_tickets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r16_notification_required('service_desk_ticket', 'id');
CREATE CONSTRAINT TRIGGER r16_oms_outcome_notified AFTER UPDATE OF status ON oms_change_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status <> 'pending')
    EXECUTE FUNCTION r16_notification_required('oms_change_request', 'id');
COMMENT ON FUNCTION r16_notification_required() IS 'R16: at commit, every notified change has its outbox row from the same transaction.';
