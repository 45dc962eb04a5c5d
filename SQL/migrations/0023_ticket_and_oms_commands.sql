-- 0023 — the remaining commands of the performance issue in one call each: opening a service desk ticket (R10),
-- filing and deciding an OMS change request (R17). Same shape as 0021: authenticate the token, apply R13's
-- visibility, write (the rule triggers and constraints decide again), audit, queue the messages.

-- Documents (the affiliation letter, OMS evidence): stored with their digest and size computed here; the table's
-- constraints check type against content (R10).
CREATE FUNCTION spor_store_document(owner uuid, organisation text, file_name text, content_type text, content bytea)
    RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    document uuid := gen_random_uuid();
BEGIN
    INSERT INTO documents (id, organisation_id, owner_id, file_name, content_type, bytes, sha256, size)
    VALUES (document, organisation, owner, file_name, content_type, content, sha256(content), octet_length(content));
    RETURN document;
END
$$;
COMMENT ON FUNCTION spor_store_document(uuid, text, text, text, bytea) IS 'Stores an uploaded document with its SHA-256 and size (the constraints check its type). Owner only.';

------------------------------------------------------------------------------------------------------------
-- R10: open a service desk ticket for one's own pending first-super-user request
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_open_ticket(token text, request bigint, ticket_subject text, description text, signatory_name text,
                                 signatory_job_title text, signatory_email text, signatory_organisation text,
                                 signatory_has_managerial_authority boolean, letter_name text, letter_type text,
                                 letter bytea)
    RETURNS TABLE (id bigint, organisation_id text, access_request_id bigint, requester_id uuid, subject text, status text,
                   opened_at timestamptz, due_at timestamptz, resolution text, resolved_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    actor uuid := spor_authenticate(token);
    r access_requests%ROWTYPE;
    document uuid;
    ticket bigint;
BEGIN
    SELECT * INTO r FROM access_requests q WHERE q.id = request;
    IF NOT FOUND OR NOT spor_actor_may_see(actor, r.organisation_id, r.requester_id) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access request ' || request || ' not found.');
    END IF;
    IF r.organisation_id IS NULL THEN
        PERFORM spor_refuse('R10', 'validation-failed', 'only organisation requests have tickets');
    END IF;
    document := spor_store_document(actor, r.organisation_id, letter_name, letter_type, letter);
    -- r10_ticket_requirements and the r10_* constraints decide: own pending first-super-user request, subject,
    -- signatory of the organisation with authority, letter of the requester.
    INSERT INTO service_desk_tickets (organisation_id, access_request_id, requester_id, subject, description, signatory_name,
        signatory_job_title, signatory_email, signatory_organisation_id, signatory_has_managerial_authority,
        letter_document_id, due_at)
    VALUES (r.organisation_id, request, actor, ticket_subject, description, signatory_name, signatory_job_title, signatory_email,
            signatory_organisation, signatory_has_managerial_authority, document, now() + interval '24 hours')
    RETURNING service_desk_tickets.id INTO ticket;
    PERFORM spor_audit(actor, r.organisation_id, 'service-desk-ticket.opened', 'service_desk_ticket', ticket::text, NULL,
        jsonb_build_object('accessRequest', request::text, 'subject', ticket_subject));
    PERFORM spor_queue_to_account(actor, r.organisation_id, 'ticket-opened', 'Service request ' || ticket || ' received',
        'The EMA service desk received your service request ' || ticket || ' for access request ' || request
            || '. It is due within 24 hours.',
        'service_desk_ticket', ticket::text);
    RETURN QUERY
    SELECT t.id, t.organisation_id, t.access_request_id, t.requester_id, t.subject, t.status, t.opened_at, t.due_at,
           t.resolution, t.resolved_at
    FROM service_desk_tickets t WHERE t.id = ticket;
END
$$;
COMMENT ON FUNCTION spor_open_ticket(text, bigint, text, text, text, text, text, text, boolean, text, text, bytea) IS 'R10: opens the service desk ticket of one''s own pending first-super-user request with the affiliation letter, in one call (audit, message).';

------------------------------------------------------------------------------------------------------------
-- R17: OMS change requests
------------------------------------------------------------------------------------------------------------
-- What the Swift policy decides on: whether the actor holds an effective SPOR role (to file), their staff roles and
-- the change request as they may see it (to decide; NULL id when none is asked for).
CREATE FUNCTION spor_oms_facts(token text, change_request bigint)
    RETURNS TABLE (actor uuid, has_effective_role boolean, staff_roles text[], id bigint, requester_id uuid, name text,
                   country text, city text, status text, organisation_id text, decision_reason text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
    c oms_change_requests%ROWTYPE;
BEGIN
    IF change_request IS NOT NULL THEN
        SELECT * INTO c FROM oms_change_requests x WHERE x.id = change_request;
        IF NOT FOUND OR NOT (c.requester_id = account OR spor_actor_is_staff()) THEN
            PERFORM spor_refuse('R13', 'not-found', 'OMS change request ' || change_request || ' not found.');
        END IF;
    END IF;
    RETURN QUERY
    SELECT account,
           EXISTS (SELECT 1 FROM role_assignments g WHERE g.account_id = account AND g.revoked_at IS NULL
                   AND g.effective_from <= now()),
           ARRAY(SELECT s.role FROM staff_roles s WHERE s.account_id = account AND spor_has_staff_role(account, s.role) ORDER BY s.role),
           c.id, c.requester_id, c.name, c.country, c.city, c.status, c.organisation_id, c.decision_reason;
END
$$;
COMMENT ON FUNCTION spor_oms_facts(text, bigint) IS 'R17: what the Swift policy decides on for filing and deciding OMS change requests (no lock).';

CREATE TYPE spor_oms_change_request AS (
    id bigint, requester_id uuid, name text, country text, city text, status text, organisation_id text,
    decision_reason text);

CREATE FUNCTION spor_file_oms_change_request(token text, name text, country text, city text, address text,
                                             justification text, document_names text[], document_types text[],
                                             document_contents bytea[])
    RETURNS spor_oms_change_request
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    actor uuid := spor_authenticate(token);
    change bigint;
    result spor_oms_change_request;
BEGIN
    IF coalesce(cardinality(document_names), 0) <> coalesce(cardinality(document_types), 0)
       OR coalesce(cardinality(document_names), 0) <> coalesce(cardinality(document_contents), 0) THEN
        PERFORM spor_refuse('R17', 'validation-failed', 'every document has a name, a type and content');
    END IF;
    -- r17_oms_change_request decides: an effective SPOR role, pending, no organisation yet.
    INSERT INTO oms_change_requests (requester_id, name, country, city, address, justification)
    VALUES (actor, name, country, city, address, justification)
    RETURNING oms_change_requests.id INTO change;
    FOR i IN 1 .. coalesce(cardinality(document_names), 0) LOOP
        INSERT INTO oms_change_request_documents (change_request_id, document_id)
        VALUES (change, spor_store_document(actor, NULL, document_names[i], document_types[i], document_contents[i]));
    END LOOP;
    PERFORM spor_audit(actor, NULL, 'oms-change-request.filed', 'oms_change_request', change::text, NULL,
        jsonb_build_object('name', name, 'country', country, 'city', city));
    SELECT x.id, x.requester_id, x.name, x.country, x.city, x.status, x.organisation_id, x.decision_reason INTO result
    FROM oms_change_requests x WHERE x.id = change;
    RETURN result;
END
$$;
COMMENT ON FUNCTION spor_file_oms_change_request(text, text, text, text, text, text, text[], text[], bytea[]) IS 'R17: files a request to add an organisation to OMS, with its documents, in one call (audit).';

CREATE FUNCTION spor_decide_oms_change_request(token text, change_request bigint, approve boolean, reason text)
    RETURNS spor_oms_change_request
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
    c oms_change_requests%ROWTYPE;
    created text;
    decided text := CASE WHEN approve THEN 'approved' ELSE 'rejected' END;
    result spor_oms_change_request;
BEGIN
    SELECT * INTO c FROM oms_change_requests x WHERE x.id = change_request FOR UPDATE;
    IF NOT FOUND OR NOT (c.requester_id = actor OR spor_actor_is_staff()) THEN
        PERFORM spor_refuse('R13', 'not-found', 'OMS change request ' || change_request || ' not found.');
    END IF;
    -- Only a data steward decides (r17_oms_change_request says so too, below, and refuses anyone else's decision
    -- before it is written; checked first here so that no organisation is created for nothing).
    IF NOT spor_has_staff_role(actor, 'ema-data-steward') THEN
        PERFORM spor_refuse('R17', 'not-authorised', 'OMS change requests are decided by an EMA data steward');
    END IF;
    IF approve AND c.status = 'pending' THEN
        INSERT INTO organisations (name, country, city) VALUES (c.name, c.country, c.city) RETURNING id INTO created;
        PERFORM spor_audit(actor, created, 'organisation.created', 'organisation', created, NULL,
            jsonb_build_object('name', c.name, 'changeRequest', change_request::text));
    END IF;
    UPDATE oms_change_requests SET status = decided, decided_by = actor, decided_at = now(), decision_reason = reason,
           organisation_id = created
    WHERE id = change_request;
    PERFORM spor_audit(actor, created, 'oms-change-request.' || decided, 'oms_change_request', change_request::text,
        jsonb_build_object('status', 'pending'), jsonb_build_object('status', decided, 'organisation', coalesce(created, '')));
    PERFORM spor_queue_to_account(c.requester_id, created, 'oms-change-request-decided',
        CASE WHEN approve THEN c.name || ' was added to OMS as ' || created
             ELSE 'Your OMS change request ' || change_request || ' was rejected' END,
        CASE WHEN approve THEN 'Your organisation is now in the OMS dictionary with id ' || created
                               || '. You can request the SPOR Industry Super User role for it.'
             ELSE 'Your request to add ' || c.name || ' to OMS was rejected: ' || coalesce(reason, '') END,
        'oms_change_request', change_request::text);
    SELECT x.id, x.requester_id, x.name, x.country, x.city, x.status, x.organisation_id, x.decision_reason INTO result
    FROM oms_change_requests x WHERE x.id = change_request;
    RETURN result;
END
$$;
COMMENT ON FUNCTION spor_decide_oms_change_request(text, bigint, boolean, text) IS 'R17: a data steward approves (creating the organisation with the next ORG id) or rejects an OMS change request, in one call (audit, message).';

REVOKE EXECUTE ON FUNCTION spor_store_document(uuid, text, text, text, bytea),
    spor_open_ticket(text, bigint, text, text, text, text, text, text, boolean, text, text, bytea),
    spor_oms_facts(text, bigint),
    spor_file_oms_change_request(text, text, text, text, text, text, text[], text[], bytea[]),
    spor_decide_oms_change_request(text, bigint, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    spor_open_ticket(text, bigint, text, text, text, text, text, text, boolean, text, text, bytea),
    spor_oms_facts(text, bigint),
    spor_file_oms_change_request(text, text, text, text, text, text, text[], text[], bytea[]),
    spor_decide_oms_change_request(text, bigint, boolean, text)
TO spor_app;
