-- R15: a change of the deployment's settings is an audit event, written with the change.
--
-- The settings row (request lifetime, review interval, whether undecided review items are revoked, the jobs' clock
-- offset, ...) decides what the rules and jobs do to every organisation, and until now a change of it was only a log
-- line of the `spor-access settings` command: the audit trail could not say when the request lifetime became 10 days,
-- or who turned on the revocation of undecided review items. Only the owner role writes the row (spor_app and
-- spor_worker may read it, 0005), so the trigger runs as the owner and needs no SECURITY DEFINER; it writes one event
-- per changed row, naming the changed columns only (before and after as text: '30 days', 'false', '[14, 3]'), and none when an
-- UPDATE sets every column to the value it had. The event's actor is spor_actor() (NULL for the owner's command-line
-- session: no account is acting), its organisation NULL (a deployment-wide event: staff see it, no tenant's trail
-- does; spor_subject_organisation answers NULL for the subject type 'settings'). A client holding spor_app can
-- neither change the row (no UPDATE privilege) nor write such an event: the RLS policy on its audit_events inserts
-- (0015: the actor is the authenticated account) now also refuses the subject type 'settings', so an account cannot
-- put a settings change of its own making into the trail either. The singleton row cannot be deleted or added to
-- by anyone but the owner, as before.

-- The subject types an event may be about (0042) gain 'settings', whose one subject is 'deployment' (its organisation
-- is NULL: spor_subject_organisation knows no organisation of it).
CREATE OR REPLACE FUNCTION r15_audit_subject_organisation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.subject_type NOT IN ('account', 'access_request', 'role_assignment', 'service_desk_ticket',
                                'oms_change_request', 'organisation', 'notification', 'access_review', 'access_review_item',
                                'settings')
       OR (NEW.subject_type = 'settings' AND NEW.subject_id <> 'deployment') THEN
        PERFORM spor_refuse('R15', 'audit-subject',
            'an audit event is about an account, request, role assignment, ticket, change request, organisation, notification, access review or the settings');
    END IF;
    IF NEW.organisation_id IS DISTINCT FROM spor_subject_organisation(NEW.subject_type, NEW.subject_id) THEN
        PERFORM spor_refuse('R15', 'audit-organisation', 'an audit event names the organisation of its subject');
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION r15_settings_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    before_row jsonb := to_jsonb(OLD) - 'singleton';
    after_row jsonb := to_jsonb(NEW) - 'singleton';
    changed text[];
BEGIN
    SELECT coalesce(array_agg(k ORDER BY k), '{}') INTO changed
    FROM jsonb_object_keys(after_row) k
    WHERE after_row -> k IS DISTINCT FROM before_row -> k;
    IF cardinality(changed) = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
    SELECT NULL, spor_actor(), 'settings.changed', 'settings', 'deployment',
           jsonb_object_agg(k, before_row ->> k), jsonb_object_agg(k, after_row ->> k)
    FROM unnest(changed) k;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION r15_settings_changed() IS 'R15: a change of the settings row writes a settings.changed audit event naming the changed columns, before and after.';
REVOKE EXECUTE ON FUNCTION r15_settings_changed() FROM PUBLIC;

CREATE TRIGGER r15_settings_changed AFTER UPDATE ON settings
    FOR EACH ROW EXECUTE FUNCTION r15_settings_changed();

DROP POLICY r15_audit_insert ON audit_events;
CREATE POLICY r15_audit_insert ON audit_events FOR INSERT TO spor_app
    WITH CHECK (actor_id IS NOT NULL AND actor_id = (SELECT spor_actor()) AND subject_type <> 'settings');
