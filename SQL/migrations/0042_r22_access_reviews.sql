-- 0042 — R22 (issue 12): access reviews; and R21's lapsed grants never block a new one.
--
-- Every settings.review_interval_months (12 by default; EMA's advice is at least yearly) after an organisation's last
-- review — or, before its first, after its oldest active role was granted — the reviews job (spor_open_due_reviews,
-- worker only) opens a review of every active organisation role (industry users and super users) of the organisation,
-- due settings.review_period later (30 days). Its super users certify or revoke each item, one at a time or many at
-- once: never their own — another super user decides it, or the EMA service desk when the holder is the
-- organisation's only super user (the desk decides only those items). A revocation takes effect at once (R14 still
-- guards the last super user, who only the desk may remove), audited, the holder told. At the due date the job
-- closes the review: items left undecided are flagged (outcome `undecided`, in reporting.access_review_completion)
-- and, when settings.review_revokes_undecided says so, revoked by the review itself (revoked_by NULL,
-- revoked_by_review set); items whose role ended or was revoked meanwhile close as `ended`.
--
-- Who may do what: spor_app reads reviews and items through row-level security (staff everything, super users their
-- organisations') and may write only an item's decision columns, which trigger r22_review_decision checks whoever
-- writes them (the service's command spor_decide_review_items, or a direct SQL client); reviews are opened and closed
-- by the worker's job functions only; analysts read the reporting views only.

------------------------------------------------------------------------------------------------------------
-- R21: granting ends the lapsed assignments the new one would collide with
------------------------------------------------------------------------------------------------------------
-- Between an assignment's end and the grants job, its row is still unrevoked: a renewal of the same role, or a new
-- first super user of an organisation whose first super user's role has ended, would collide with it in
-- r7_one_active_assignment or r11_one_first_super_user. A grant first ends those, by the clock, whoever grants.
CREATE FUNCTION r21_end_lapsed_before_grant() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE role_assignments g SET revoked_at = g.ends_at, lapsed = true
    WHERE g.revoked_at IS NULL AND g.ends_at <= spor_job_now()
      AND g.organisation_id IS NOT DISTINCT FROM NEW.organisation_id
      AND ((g.account_id = NEW.account_id AND g.role = NEW.role) OR (NEW.first_super_user AND g.first_super_user));
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION r21_end_lapsed_before_grant() FROM PUBLIC;
CREATE TRIGGER r21_end_lapsed_before_grant BEFORE INSERT ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION r21_end_lapsed_before_grant();
COMMENT ON FUNCTION r21_end_lapsed_before_grant() IS 'R21: a new grant first ends (by the clock) the lapsed assignments it would collide with (same holder and role; or the organisation''s first super user).';

------------------------------------------------------------------------------------------------------------
-- Settings and tables
------------------------------------------------------------------------------------------------------------
ALTER TABLE settings
    ADD COLUMN review_interval_months integer NOT NULL DEFAULT 12
        CONSTRAINT review_interval_months_range CHECK (review_interval_months BETWEEN 1 AND 60),
    ADD COLUMN review_period interval NOT NULL DEFAULT interval '30 days'
        CONSTRAINT review_period_positive CHECK (review_period > interval '0'),
    ADD COLUMN review_revokes_undecided boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN settings.review_interval_months IS 'R22: months between an organisation''s access reviews (EMA: at least yearly).';
COMMENT ON COLUMN settings.review_period IS 'R22: how long an access review stays open for decisions.';
COMMENT ON COLUMN settings.review_revokes_undecided IS 'R22: whether items left undecided at the due date are revoked (otherwise only flagged).';

CREATE TABLE access_reviews (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id text NOT NULL REFERENCES organisations (id),
    opened_at timestamptz NOT NULL,
    due_at timestamptz NOT NULL,
    closed_at timestamptz,
    CONSTRAINT r22_due_after_opening CHECK (due_at > opened_at),
    CONSTRAINT r22_closed_after_due CHECK (closed_at IS NULL OR closed_at >= due_at)
);
CREATE UNIQUE INDEX r22_one_open_review ON access_reviews (organisation_id) WHERE closed_at IS NULL;
CREATE INDEX access_reviews_organisation ON access_reviews (organisation_id, opened_at DESC);
COMMENT ON TABLE access_reviews IS 'R22: an organisation''s periodic review of its members'' roles; opened and closed by the reviews job only.';

CREATE TABLE access_review_items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    review_id bigint NOT NULL REFERENCES access_reviews (id),
    organisation_id text NOT NULL REFERENCES organisations (id),
    assignment_id bigint NOT NULL REFERENCES role_assignments (id),
    account_id uuid NOT NULL REFERENCES accounts (id),
    role text NOT NULL CHECK (role IN ('spor-industry-user', 'spor-industry-super-user')),
    decision text CHECK (decision IN ('certified', 'revoked')),
    decided_by uuid REFERENCES accounts (id),
    decided_at timestamptz,
    comment text CHECK (length(comment) <= 2000),
    outcome text CHECK (outcome IN ('undecided', 'revoked-undecided', 'ended')),
    UNIQUE (review_id, assignment_id),
    CONSTRAINT r22_decision_is_complete CHECK ((decision IS NULL) = (decided_by IS NULL) AND (decision IS NULL) = (decided_at IS NULL)),
    CONSTRAINT r22_decided_or_closed CHECK (decision IS NULL OR outcome IS NULL)
);
CREATE INDEX access_review_items_review ON access_review_items (review_id, id);
COMMENT ON TABLE access_review_items IS 'R22: one active organisation role under review: certified or revoked by a super user (not its holder) or the service desk; outcome is what the closing job found undecided.';
COMMENT ON COLUMN access_review_items.outcome IS 'Set when the review closed with the item undecided: undecided (flagged), revoked-undecided (revoked by the review, per settings), ended (the role had ended or been revoked meanwhile).';

ALTER TABLE role_assignments ADD COLUMN revoked_by_review bigint REFERENCES access_reviews (id);
ALTER TABLE role_assignments DROP CONSTRAINT r21_revocation_is_complete;
-- Revoked by someone, ended by the clock at its end (lapsed), revoked by an access review (undecided items, per
-- settings), or none of these yet.
ALTER TABLE role_assignments ADD CONSTRAINT r22_revocation_is_complete CHECK (
    (revoked_at IS NULL AND revoked_by IS NULL AND NOT lapsed AND revoked_by_review IS NULL)
    OR (revoked_at IS NOT NULL AND revoked_by IS NOT NULL AND NOT lapsed AND revoked_by_review IS NULL)
    OR (revoked_at IS NOT NULL AND revoked_by IS NULL AND lapsed AND revoked_at = ends_at AND revoked_by_review IS NULL)
    OR (revoked_at IS NOT NULL AND revoked_by IS NULL AND NOT lapsed AND revoked_by_review IS NOT NULL));
COMMENT ON COLUMN role_assignments.revoked_by_review IS 'R22: the access review that revoked this assignment because nobody certified it by the due date.';

-- The audit trail knows reviews and their items as subjects (R15: an event names the organisation of its subject);
-- 0024's primary-key reads and 0026's notification subjects stay as they were.
CREATE OR REPLACE FUNCTION spor_subject_organisation(subject_type text, subject_id text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    key bigint;
    found text;
BEGIN
    IF subject_type = 'organisation' THEN
        RETURN subject_id;
    END IF;
    IF subject_type NOT IN ('access_request', 'role_assignment', 'service_desk_ticket', 'oms_change_request',
                            'access_review', 'access_review_item')
       OR subject_id !~ '^[0-9]{1,18}$' THEN
        RETURN NULL;
    END IF;
    key := subject_id::bigint;
    CASE subject_type
        WHEN 'access_request' THEN SELECT organisation_id INTO found FROM access_requests WHERE id = key;
        WHEN 'role_assignment' THEN SELECT organisation_id INTO found FROM role_assignments WHERE id = key;
        WHEN 'service_desk_ticket' THEN SELECT organisation_id INTO found FROM service_desk_tickets WHERE id = key;
        WHEN 'access_review' THEN SELECT organisation_id INTO found FROM access_reviews WHERE id = key;
        WHEN 'access_review_item' THEN SELECT organisation_id INTO found FROM access_review_items WHERE id = key;
        ELSE SELECT organisation_id INTO found FROM oms_change_requests WHERE id = key;
    END CASE;
    RETURN found;
END
$$;
CREATE OR REPLACE FUNCTION r15_audit_subject_organisation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.subject_type NOT IN ('account', 'access_request', 'role_assignment', 'service_desk_ticket',
                                'oms_change_request', 'organisation', 'notification', 'access_review', 'access_review_item') THEN
        PERFORM spor_refuse('R15', 'audit-subject',
            'an audit event is about an account, request, role assignment, ticket, change request, organisation, notification or access review');
    END IF;
    IF NEW.organisation_id IS DISTINCT FROM spor_subject_organisation(NEW.subject_type, NEW.subject_id) THEN
        PERFORM spor_refuse('R15', 'audit-organisation', 'an audit event names the organisation of its subject');
    END IF;
    RETURN NEW;
END
$$;

------------------------------------------------------------------------------------------------------------
-- Who reads and writes
------------------------------------------------------------------------------------------------------------
ALTER TABLE access_reviews ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_review_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_access_reviews_read ON access_reviews FOR SELECT TO spor_app USING (
    (SELECT spor_actor_is_staff()) OR organisation_id IN (SELECT spor_actor_super_user_organisations()));
CREATE POLICY r13_access_review_items_read ON access_review_items FOR SELECT TO spor_app USING (
    (SELECT spor_actor_is_staff()) OR organisation_id IN (SELECT spor_actor_super_user_organisations()));
CREATE POLICY r13_access_review_items_update ON access_review_items FOR UPDATE TO spor_app USING (
    (SELECT spor_actor_is_staff()) OR organisation_id IN (SELECT spor_actor_super_user_organisations()));
REVOKE ALL ON access_reviews, access_review_items FROM PUBLIC;
GRANT SELECT ON access_reviews, access_review_items TO spor_app;
GRANT UPDATE (decision, decided_by, decided_at, comment) ON access_review_items TO spor_app;

------------------------------------------------------------------------------------------------------------
-- R22: deciding an item
------------------------------------------------------------------------------------------------------------
-- Whether the actor may decide the item of `holder` in `organisation`: a super user of it, not the holder; or the
-- service desk when the holder is its only super user (or it has none). Nobody else. Owner only.
CREATE FUNCTION spor_review_decider(actor uuid, organisation text, holder uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN CASE
        WHEN actor IS NULL THEN 'not-found'
        WHEN actor = holder THEN 'self-approval'
        WHEN spor_is_active_super_user(actor, organisation) THEN NULL
        WHEN spor_has_staff_role(actor, 'ema-service-desk') THEN
            CASE WHEN spor_active_super_user_count(organisation)
                      - CASE WHEN spor_is_active_super_user(holder, organisation) THEN 1 ELSE 0 END > 0
                 THEN 'delegated-to-organisation' END
        ELSE 'not-found'
    END;
REVOKE EXECUTE ON FUNCTION spor_review_decider(uuid, text, uuid) FROM PUBLIC;
COMMENT ON FUNCTION spor_review_decider(uuid, text, uuid) IS 'R22: NULL when the actor may decide a review item of holder in organisation, else the refusal code. Owner only.';

CREATE FUNCTION r22_review_decision() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_actor();
    rv access_reviews%ROWTYPE;
    g role_assignments%ROWTYPE;
    refusal text;
BEGIN
    IF NEW.id <> OLD.id OR NEW.review_id <> OLD.review_id OR NEW.organisation_id <> OLD.organisation_id
       OR NEW.assignment_id <> OLD.assignment_id OR NEW.account_id <> OLD.account_id OR NEW.role <> OLD.role THEN
        PERFORM spor_refuse('R22', 'immutable', 'what a review item is about never changes');
    END IF;
    IF OLD.decision IS NOT NULL OR OLD.outcome IS NOT NULL THEN
        PERFORM spor_refuse('R22', 'not-pending', 'review item ' || OLD.id || ' is decided and never changes again');
    END IF;
    SELECT * INTO rv FROM access_reviews r WHERE r.id = OLD.review_id;
    SELECT * INTO g FROM role_assignments x WHERE x.id = OLD.assignment_id;
    IF NEW.outcome IS NOT NULL THEN
        -- The closing job (no actor) records what it found; nobody else.
        IF actor IS NOT NULL OR NEW.decision IS NOT NULL OR rv.closed_at IS NOT NULL OR rv.due_at > spor_job_now() THEN
            PERFORM spor_refuse('R22', 'not-authorised', 'only the closing of a due review records an outcome');
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.decision IS NULL THEN
        RETURN NEW;
    END IF;
    IF actor IS NULL OR NEW.decided_by IS DISTINCT FROM actor THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'decided_by must be the acting account');
    END IF;
    IF rv.closed_at IS NOT NULL OR rv.due_at <= spor_job_now() THEN
        PERFORM spor_refuse('R22', 'not-pending', 'access review ' || rv.id || ' closed on ' || to_char(rv.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'));
    END IF;
    IF g.revoked_at IS NOT NULL OR (g.ends_at IS NOT NULL AND g.ends_at <= spor_job_now()) THEN
        PERFORM spor_refuse('R22', 'not-pending', 'the role of review item ' || OLD.id || ' has ended or was revoked already');
    END IF;
    refusal := spor_review_decider(actor, OLD.organisation_id, OLD.account_id);
    IF refusal = 'self-approval' THEN
        PERFORM spor_refuse('R22', 'self-approval', 'nobody reviews their own access: another super user, or the service desk, decides it');
    ELSIF refusal = 'delegated-to-organisation' THEN
        PERFORM spor_refuse('R22', 'delegated-to-organisation',
            OLD.organisation_id || ' has another super user: its super users decide this item');
    ELSIF refusal IS NOT NULL THEN
        PERFORM spor_refuse('R13', 'not-found', 'review item ' || OLD.id || ' not found');
    END IF;
    NEW.decided_at := now();
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION r22_review_decision() FROM PUBLIC;
CREATE TRIGGER r22_review_decision BEFORE UPDATE ON access_review_items
    FOR EACH ROW EXECUTE FUNCTION r22_review_decision();
COMMENT ON FUNCTION r22_review_decision() IS 'R22: an item is decided once, while its review is open and its role active, by a super user of the organisation other than its holder, or by the service desk for an only super user''s item; only the closing job records an outcome.';

-- Whoever decides an item, the decision is audited and a revocation takes effect in the same statement (R14's
-- trigger checks it again: the last super user goes only by the service desk), the holder told.
CREATE FUNCTION r22_review_decided() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM spor_audit(spor_actor(), NEW.organisation_id, 'access-review.' || NEW.decision, 'access_review_item', NEW.id::text,
        jsonb_build_object('assignment', NEW.assignment_id::text, 'role', NEW.role, 'account', NEW.account_id::text),
        jsonb_build_object('decision', NEW.decision, 'comment', coalesce(NEW.comment, '')));
    IF NEW.decision = 'revoked' THEN
        UPDATE role_assignments g SET revoked_at = now(), revoked_by = NEW.decided_by,
               revoke_reason = 'access review ' || NEW.review_id || coalesce(': ' || NEW.comment, '')
        WHERE g.id = NEW.assignment_id;
        PERFORM spor_audit(spor_actor(), NEW.organisation_id, 'role-assignment.revoked', 'role_assignment', NEW.assignment_id::text,
            jsonb_build_object('role', NEW.role, 'account', NEW.account_id::text),
            jsonb_build_object('revoked', 'true', 'accessReview', NEW.review_id::text));
        PERFORM spor_queue_to_account(NEW.account_id, NEW.organisation_id, 'review-revoked',
            'Your role ' || NEW.role || ' in ' || NEW.organisation_id || ' was revoked in an access review',
            'In access review ' || NEW.review_id || ' of ' || NEW.organisation_id || ' your role ' || NEW.role
                || ' was not certified and has been revoked.' || coalesce(' Comment: ' || NEW.comment, '')
                || ' If you still need it, file a new access request.',
            'access_review_item', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION r22_review_decided() FROM PUBLIC;
CREATE TRIGGER r22_review_decided AFTER UPDATE OF decision ON access_review_items
    FOR EACH ROW WHEN (OLD.decision IS NULL AND NEW.decision IS NOT NULL)
    EXECUTE FUNCTION r22_review_decided();
COMMENT ON FUNCTION r22_review_decided() IS 'R22: a decided item is audited; a revocation revokes the role at once and tells its holder.';

-- R14, R21, R22: the changes an assignment may undergo — revoked by a person, ended by the clock, or revoked by a due
-- access review whose item nobody decided (when the settings say so).
CREATE OR REPLACE FUNCTION r14_revoke_assignment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_actor();
    remaining integer;
BEGIN
    IF NEW.id <> OLD.id OR NEW.account_id <> OLD.account_id OR NEW.role <> OLD.role
       OR NEW.organisation_id IS DISTINCT FROM OLD.organisation_id OR NEW.source <> OLD.source
       OR NEW.access_request_id IS DISTINCT FROM OLD.access_request_id OR NEW.granted_at <> OLD.granted_at
       OR NEW.granted_by IS DISTINCT FROM OLD.granted_by OR NEW.effective_from <> OLD.effective_from
       OR NEW.first_super_user <> OLD.first_super_user OR NEW.ends_at IS DISTINCT FROM OLD.ends_at THEN
        PERFORM spor_refuse('R14', 'immutable', 'only revocation changes a role assignment');
    END IF;
    IF OLD.revoked_at IS NOT NULL THEN
        PERFORM spor_refuse('R14', 'not-found', 'the role was already revoked');
    END IF;
    IF NEW.revoked_at IS NULL THEN
        IF NEW.lapsed OR NEW.revoked_by_review IS NOT NULL THEN
            PERFORM spor_refuse('R21', 'not-authorised', 'an assignment ends by its end time or its review');
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.lapsed THEN
        IF OLD.ends_at IS NULL OR OLD.ends_at > spor_job_now() OR NEW.revoked_by IS NOT NULL OR NEW.revoked_by_review IS NOT NULL THEN
            PERFORM spor_refuse('R21', 'not-authorised', 'only the clock ends an assignment, at its end time');
        END IF;
        NEW.revoked_at := OLD.ends_at;
        PERFORM spor_lock_organisation_for(OLD.organisation_id, OLD.role = 'spor-industry-super-user');
        RETURN NEW;
    END IF;
    IF NEW.revoked_by_review IS NOT NULL THEN
        IF actor IS NOT NULL OR NEW.revoked_by IS NOT NULL OR NOT (SELECT s.review_revokes_undecided FROM settings s)
           OR NOT EXISTS (SELECT 1 FROM access_review_items i JOIN access_reviews r ON r.id = i.review_id
                          WHERE i.review_id = NEW.revoked_by_review AND i.assignment_id = OLD.id
                            AND i.decision IS NULL AND i.outcome IS NULL AND r.closed_at IS NULL
                            AND r.due_at <= spor_job_now()) THEN
            PERFORM spor_refuse('R22', 'not-authorised', 'only a due access review revokes its undecided items, when the settings say so');
        END IF;
        NEW.revoked_at := now();
        PERFORM spor_lock_organisation_for(OLD.organisation_id, OLD.role = 'spor-industry-super-user');
        RETURN NEW;
    END IF;
    IF actor IS NULL OR NEW.revoked_by IS DISTINCT FROM actor THEN
        PERFORM spor_refuse('R13', 'not-authorised', 'revoked_by must be the acting account');
    END IF;
    IF OLD.ends_at IS NOT NULL AND OLD.ends_at <= spor_job_now() THEN
        PERFORM spor_refuse('R14', 'not-found', 'the role ended at ' || OLD.ends_at);
    END IF;
    NEW.revoked_at := now();
    PERFORM spor_lock_organisation_for(OLD.organisation_id, OLD.role = 'spor-industry-super-user');
    IF actor <> OLD.account_id
       AND NOT spor_has_staff_role(actor, 'ema-service-desk')
       AND (OLD.organisation_id IS NULL OR NOT spor_is_active_super_user(actor, OLD.organisation_id)) THEN
        PERFORM spor_refuse('R13', 'not-found', 'only the holder, the organisation''s super users or the service desk revoke a role');
    END IF;
    IF OLD.role = 'spor-industry-super-user' THEN
        SELECT count(*) INTO remaining FROM role_assignments r JOIN accounts a ON a.id = r.account_id
        WHERE r.organisation_id = OLD.organisation_id AND r.role = 'spor-industry-super-user'
          AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now()) AND a.status = 'active'
          AND r.id <> OLD.id;
        IF remaining = 0 AND NOT spor_has_staff_role(actor, 'ema-service-desk') THEN
            PERFORM spor_refuse('R14', 'last-super-user',
                'the last super user of ' || OLD.organisation_id || ' can only be removed by the EMA service desk');
        END IF;
    END IF;
    RETURN NEW;
END
$$;

------------------------------------------------------------------------------------------------------------
-- The commands: facts for the Swift policy, then decide one or many items in one call
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_review_item_facts(token text, review bigint, items bigint[])
    RETURNS TABLE (id bigint, organisation_id text, assignment_id bigint, account_id uuid, role text, decision text,
                   outcome text, review_open boolean, assignment_active boolean, actor uuid, staff_roles text[],
                   actor_is_super_user boolean, other_super_users integer)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
    rv access_reviews%ROWTYPE;
    clock timestamptz := spor_job_now();
BEGIN
    SELECT * INTO rv FROM access_reviews r WHERE r.id = review;
    IF NOT FOUND OR NOT (spor_actor_is_staff() OR spor_is_active_super_user(account, rv.organisation_id)) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access review ' || review || ' not found.');
    END IF;
    RETURN QUERY
    SELECT i.id, i.organisation_id, i.assignment_id, i.account_id, i.role, i.decision, i.outcome,
           rv.closed_at IS NULL AND rv.due_at > clock,
           g.revoked_at IS NULL AND (g.ends_at IS NULL OR g.ends_at > clock),
           account,
           ARRAY(SELECT s.role FROM staff_roles s WHERE s.account_id = account AND spor_has_staff_role(account, s.role) ORDER BY s.role),
           spor_is_active_super_user(account, i.organisation_id),
           spor_active_super_user_count(i.organisation_id) - CASE WHEN spor_is_active_super_user(i.account_id, i.organisation_id) THEN 1 ELSE 0 END
    FROM access_review_items i JOIN role_assignments g ON g.id = i.assignment_id
    WHERE i.review_id = review AND i.id = ANY (items)
    ORDER BY i.id;
END
$$;
COMMENT ON FUNCTION spor_review_item_facts(text, bigint, bigint[]) IS 'What ApprovalPolicy.decideReviewItem decides on, for each named item of a review the account of the token may see (R13, R22; no lock).';

CREATE FUNCTION spor_decide_review_items(token text, review bigint, items bigint[], decisions text[], comments text[])
    RETURNS TABLE (id bigint, assignment_id bigint, account_id uuid, email text, role text, decision text, decided_by uuid,
                   decided_at timestamptz, comment text, outcome text, organisation_id text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    actor uuid := spor_authenticate(token);
    rv access_reviews%ROWTYPE;
    item access_review_items%ROWTYPE;
BEGIN
    SELECT * INTO rv FROM access_reviews r WHERE r.id = review;
    IF NOT FOUND OR NOT (spor_actor_is_staff() OR spor_is_active_super_user(actor, rv.organisation_id)) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access review ' || review || ' not found.');
    END IF;
    IF cardinality(items) IS DISTINCT FROM cardinality(decisions) OR cardinality(items) IS DISTINCT FROM cardinality(comments)
       OR cardinality(items) = 0 OR cardinality(items) > 500 THEN
        PERFORM spor_refuse('R22', 'validation-failed', 'decide 1 to 500 items, each with its decision and comment');
    END IF;
    -- The items in id order, so two callers deciding overlapping sets lock them in the same order.
    FOR item IN SELECT i.* FROM access_review_items i
                WHERE i.review_id = review AND i.id = ANY (items) ORDER BY i.id FOR UPDATE LOOP
        -- r22_review_decision decides again under the row lock; r22_review_decided audits and revokes.
        UPDATE access_review_items i
        SET decision = decisions[array_position(items, item.id)], decided_by = actor, decided_at = now(),
            comment = nullif(btrim(comments[array_position(items, item.id)]), '')
        WHERE i.id = item.id;
    END LOOP;
    IF (SELECT count(*) FROM access_review_items i WHERE i.review_id = review AND i.id = ANY (items))
       <> (SELECT count(DISTINCT x) FROM unnest(items) x) THEN
        PERFORM spor_refuse('R13', 'not-found', 'an item named is not part of access review ' || review);
    END IF;
    RETURN QUERY
    SELECT i.id, i.assignment_id, i.account_id, a.email, i.role, i.decision, i.decided_by, i.decided_at, i.comment, i.outcome,
           i.organisation_id
    FROM access_review_items i JOIN accounts a ON a.id = i.account_id
    WHERE i.review_id = review AND i.id = ANY (items) ORDER BY i.id;
END
$$;
COMMENT ON FUNCTION spor_decide_review_items(text, bigint, bigint[], text[], text[]) IS 'R22: decides review items (all or none) for the account of the token, in one call; the triggers decide again, audit and revoke.';

-- Reads, one statement each (R13 as the definer functions apply it).
CREATE FUNCTION spor_access_reviews(token text, organisation text)
    RETURNS TABLE (id bigint, organisation_id text, opened_at timestamptz, due_at timestamptz, closed_at timestamptz,
                   items bigint, certified bigint, revoked bigint, undecided bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
BEGIN
    IF NOT (spor_actor_is_staff() OR spor_is_active_super_user(account, organisation)) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Organisation ' || organisation || ' has nothing for you here.');
    END IF;
    RETURN QUERY
    SELECT r.id, r.organisation_id, r.opened_at, r.due_at, r.closed_at,
           count(i.id), count(i.id) FILTER (WHERE i.decision = 'certified'),
           count(i.id) FILTER (WHERE i.decision = 'revoked' OR i.outcome = 'revoked-undecided'),
           count(i.id) FILTER (WHERE i.decision IS NULL)
    FROM access_reviews r LEFT JOIN access_review_items i ON i.review_id = r.id
    WHERE r.organisation_id = organisation
    GROUP BY r.id ORDER BY r.opened_at DESC, r.id DESC;
END
$$;
COMMENT ON FUNCTION spor_access_reviews(text, text) IS 'R13, R22: an organisation''s access reviews with their counts, newest first, for its super users and staff.';

CREATE FUNCTION spor_access_review_items(token text, review bigint, after bigint, page_limit integer)
    RETURNS TABLE (id bigint, assignment_id bigint, account_id uuid, email text, role text, decision text, decided_by uuid,
                   decided_at timestamptz, comment text, outcome text, organisation_id text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    account uuid := spor_authenticate(token);
    rv access_reviews%ROWTYPE;
BEGIN
    SELECT * INTO rv FROM access_reviews r WHERE r.id = review;
    IF NOT FOUND OR NOT (spor_actor_is_staff() OR spor_is_active_super_user(account, rv.organisation_id)) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Access review ' || review || ' not found.');
    END IF;
    RETURN QUERY
    SELECT i.id, i.assignment_id, i.account_id, a.email, i.role, i.decision, i.decided_by, i.decided_at, i.comment, i.outcome,
           i.organisation_id
    FROM access_review_items i JOIN accounts a ON a.id = i.account_id
    WHERE i.review_id = review AND (after IS NULL OR i.id > after)
    ORDER BY i.id LIMIT page_limit;
END
$$;
COMMENT ON FUNCTION spor_access_review_items(text, bigint, bigint, integer) IS 'R13, R22: the items of an access review (keyset paging by id), for the organisation''s super users and staff.';

------------------------------------------------------------------------------------------------------------
-- The reviews job (worker only): open the due reviews, close the due ones
------------------------------------------------------------------------------------------------------------
CREATE FUNCTION spor_open_due_reviews(batch integer DEFAULT 100) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    clock timestamptz := spor_job_now();
    months integer;
    period interval;
    o record;
    review bigint;
    opened integer := 0;
    members integer;
BEGIN
    SELECT s.review_interval_months, s.review_period INTO months, period FROM settings s;
    FOR o IN SELECT org.id FROM organisations org
             WHERE org.status = 'active'
               AND NOT EXISTS (SELECT 1 FROM access_reviews r WHERE r.organisation_id = org.id AND r.closed_at IS NULL)
               AND EXISTS (SELECT 1 FROM role_assignments g WHERE g.organisation_id = org.id AND g.revoked_at IS NULL
                           AND (g.ends_at IS NULL OR g.ends_at > clock))
               AND coalesce((SELECT max(r.opened_at) FROM access_reviews r WHERE r.organisation_id = org.id),
                            (SELECT min(g.granted_at) FROM role_assignments g
                             WHERE g.organisation_id = org.id AND g.revoked_at IS NULL
                               AND (g.ends_at IS NULL OR g.ends_at > clock)))
                   + make_interval(months => months) <= clock
             ORDER BY org.id LIMIT batch LOOP
        review := NULL;
        INSERT INTO access_reviews (organisation_id, opened_at, due_at) VALUES (o.id, clock, clock + period)
        ON CONFLICT (organisation_id) WHERE closed_at IS NULL DO NOTHING
        RETURNING id INTO review;
        CONTINUE WHEN review IS NULL;
        INSERT INTO access_review_items (review_id, organisation_id, assignment_id, account_id, role)
        SELECT review, g.organisation_id, g.id, g.account_id, g.role FROM role_assignments g
        WHERE g.organisation_id = o.id AND g.revoked_at IS NULL AND (g.ends_at IS NULL OR g.ends_at > clock)
        ORDER BY g.id;
        GET DIAGNOSTICS members = ROW_COUNT;
        PERFORM spor_audit(NULL, o.id, 'access-review.opened', 'access_review', review::text, NULL,
            jsonb_build_object('items', members, 'dueAt', clock + period));
        PERFORM spor_queue_to_super_users(o.id, 'review-opened',
            'Access review ' || review || ' of ' || o.id || ': certify your organisation''s roles',
            'Access review ' || review || ' of ' || o.id || ' lists ' || members || ' active role(s). Certify the ones that are '
                || 'still needed and revoke the others by ' || to_char((clock + period) AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                || '. Your own role is decided by another super user, or by the EMA service desk if you are the only one.',
            'access_review', review::text);
        IF spor_active_super_user_count(o.id) <= 1 THEN
            PERFORM spor_queue_to_service_desk(o.id, 'review-opened',
                'Access review ' || review || ' of ' || o.id || ': the only super user''s role is yours to decide',
                o.id || ' has at most one super user, so the EMA service desk certifies or revokes that super user''s role in access review '
                    || review || ', due ' || to_char((clock + period) AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '.',
                'access_review', review::text);
        END IF;
        opened := opened + 1;
    END LOOP;
    RETURN opened;
END
$$;
REVOKE EXECUTE ON FUNCTION spor_open_due_reviews(integer) FROM PUBLIC;
COMMENT ON FUNCTION spor_open_due_reviews(integer) IS 'R22: opens an access review of every active organisation role for each organisation due one (one open review per organisation, however many instances run it). Worker only.';

CREATE FUNCTION spor_close_due_reviews(batch integer DEFAULT 100) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    clock timestamptz := spor_job_now();
    revoke_undecided boolean;
    rv access_reviews%ROWTYPE;
    item record;
    closed integer := 0;
    flagged integer;
    revoked integer;
BEGIN
    SELECT s.review_revokes_undecided INTO revoke_undecided FROM settings s;
    FOR rv IN SELECT * FROM access_reviews r WHERE r.closed_at IS NULL AND r.due_at <= clock
              ORDER BY r.due_at, r.id LIMIT batch FOR UPDATE SKIP LOCKED LOOP
        flagged := 0;
        revoked := 0;
        FOR item IN SELECT i.id, i.assignment_id, i.account_id, i.role,
                           g.revoked_at IS NULL AND (g.ends_at IS NULL OR g.ends_at > clock) AS active
                    FROM access_review_items i JOIN role_assignments g ON g.id = i.assignment_id
                    WHERE i.review_id = rv.id AND i.decision IS NULL AND i.outcome IS NULL
                    ORDER BY i.id FOR UPDATE OF i LOOP
            IF NOT item.active THEN
                UPDATE access_review_items SET outcome = 'ended' WHERE id = item.id;
            ELSIF revoke_undecided THEN
                UPDATE role_assignments g SET revoked_at = now(), revoked_by_review = rv.id,
                       revoke_reason = 'not certified in access review ' || rv.id
                WHERE g.id = item.assignment_id;
                PERFORM spor_audit(NULL, rv.organisation_id, 'role-assignment.revoked', 'role_assignment', item.assignment_id::text,
                    jsonb_build_object('role', item.role, 'account', item.account_id::text),
                    jsonb_build_object('revoked', 'true', 'accessReview', rv.id::text, 'reason', 'not certified'));
                PERFORM spor_queue_to_account(item.account_id, rv.organisation_id, 'review-revoked',
                    'Your role ' || item.role || ' in ' || rv.organisation_id || ' was revoked in an access review',
                    'Nobody certified your role ' || item.role || ' in ' || rv.organisation_id || ' in access review ' || rv.id
                        || ' by its due date, so it has been revoked. If you still need it, file a new access request.',
                    'access_review_item', item.id::text);
                UPDATE access_review_items SET outcome = 'revoked-undecided' WHERE id = item.id;
                revoked := revoked + 1;
            ELSE
                UPDATE access_review_items SET outcome = 'undecided' WHERE id = item.id;
                flagged := flagged + 1;
            END IF;
        END LOOP;
        UPDATE access_reviews SET closed_at = clock WHERE id = rv.id;
        PERFORM spor_audit(NULL, rv.organisation_id, 'access-review.closed', 'access_review', rv.id::text, NULL,
            jsonb_build_object('undecided', flagged, 'revokedUndecided', revoked));
        IF flagged + revoked > 0 THEN
            PERFORM spor_queue_to_super_users(rv.organisation_id, 'review-closed',
                'Access review ' || rv.id || ' of ' || rv.organisation_id || ' closed with undecided roles',
                'Access review ' || rv.id || ' of ' || rv.organisation_id || ' reached its due date with ' || (flagged + revoked)
                    || ' role(s) undecided: ' || CASE WHEN revoked > 0 THEN revoked || ' revoked as the settings require.'
                                                       ELSE 'they are flagged in the reports.' END,
                'access_review', rv.id::text);
            PERFORM spor_queue_to_service_desk(rv.organisation_id, 'review-closed',
                'Access review ' || rv.id || ' of ' || rv.organisation_id || ' closed with undecided roles',
                'Access review ' || rv.id || ' of ' || rv.organisation_id || ': ' || flagged || ' role(s) flagged undecided, '
                    || revoked || ' revoked undecided.',
                'access_review', rv.id::text);
        END IF;
        closed := closed + 1;
    END LOOP;
    RETURN closed;
END
$$;
REVOKE EXECUTE ON FUNCTION spor_close_due_reviews(integer) FROM PUBLIC;
COMMENT ON FUNCTION spor_close_due_reviews(integer) IS 'R22: closes due access reviews: undecided items flagged, or revoked when settings.review_revokes_undecided (SKIP LOCKED: each once). Worker only.';

REVOKE EXECUTE ON FUNCTION
    spor_review_item_facts(text, bigint, bigint[]), spor_decide_review_items(text, bigint, bigint[], text[], text[]),
    spor_access_reviews(text, text), spor_access_review_items(text, bigint, bigint, integer)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    spor_review_item_facts(text, bigint, bigint[]), spor_decide_review_items(text, bigint, bigint[], text[], text[]),
    spor_access_reviews(text, text), spor_access_review_items(text, bigint, bigint, integer)
TO spor_app;
GRANT EXECUTE ON FUNCTION spor_open_due_reviews(integer), spor_close_due_reviews(integer) TO spor_worker;

------------------------------------------------------------------------------------------------------------
-- Reporting: review completion per organisation, and the items left undecided
------------------------------------------------------------------------------------------------------------
CREATE VIEW reporting.access_review_completion WITH (security_barrier = true) AS
SELECT r.organisation_id,
       o.name AS organisation_name,
       r.id AS review_id,
       r.opened_at,
       r.due_at,
       r.closed_at,
       CASE WHEN r.closed_at IS NOT NULL THEN 'closed'
            WHEN r.due_at <= (SELECT now() + s.job_clock_offset FROM settings s) THEN 'overdue'
            ELSE 'open' END AS status,
       count(i.id) AS items,
       count(i.id) FILTER (WHERE i.decision = 'certified') AS certified,
       count(i.id) FILTER (WHERE i.decision = 'revoked') AS revoked,
       count(i.id) FILTER (WHERE i.decision IS NULL AND i.outcome IS NULL) AS pending,
       count(i.id) FILTER (WHERE i.outcome = 'undecided') AS flagged_undecided,
       count(i.id) FILTER (WHERE i.outcome = 'revoked-undecided') AS revoked_undecided,
       count(i.id) FILTER (WHERE i.outcome = 'ended') AS ended_meanwhile,
       CASE WHEN count(i.id) = 0 THEN 100
            ELSE round(100.0 * count(i.id) FILTER (WHERE i.decision IS NOT NULL OR i.outcome = 'ended') / count(i.id), 1) END
           AS completion_percent
FROM access_reviews r
JOIN organisations o ON o.id = r.organisation_id
LEFT JOIN access_review_items i ON i.review_id = r.id
GROUP BY r.id, r.organisation_id, o.name, r.opened_at, r.due_at, r.closed_at;
COMMENT ON VIEW reporting.access_review_completion IS 'R22: every access review with its completion: items certified, revoked, pending, and left undecided at the due date (flagged, or revoked per settings).';
COMMENT ON COLUMN reporting.access_review_completion.status IS 'open, overdue (past its due date, not closed yet) or closed.';
COMMENT ON COLUMN reporting.access_review_completion.flagged_undecided IS 'Items nobody decided by the due date (kept, flagged).';
COMMENT ON COLUMN reporting.access_review_completion.revoked_undecided IS 'Items nobody decided by the due date, revoked because settings.review_revokes_undecided is on.';
COMMENT ON COLUMN reporting.access_review_completion.completion_percent IS 'Decided (or ended meanwhile) items as a share of all items.';
GRANT SELECT ON reporting.access_review_completion TO spor_reporting;

CREATE VIEW reporting.access_review_items WITH (security_barrier = true) AS
SELECT i.organisation_id, i.review_id, i.id AS item_id, i.assignment_id, i.account_id, i.role,
       coalesce(i.decision, i.outcome, 'pending') AS state, i.decided_by, i.decided_at
FROM access_review_items i;
COMMENT ON VIEW reporting.access_review_items IS 'R22: every review item and its state: certified, revoked, pending, undecided (flagged), revoked-undecided or ended.';
GRANT SELECT ON reporting.access_review_items TO spor_reporting;
