-- Reminders and escalation (issue 12), as a job of the worker role.
--
-- A request or a ticket that nobody acts on used to just wait. Now spor_send_reminders, run by the worker every
-- minute (any number of instances), sends:
--   * `request-reminder` to the organisation's super users, once, for each organisation request pending for longer
--     than settings.pending_reminder_after (7 days by default);
--   * `ticket-overdue` to the EMA service desk, once, for each open ticket past its due time (24 h after opening).
-- "Once" is the primary key of `reminders`, which is also the reminder history analysts read
-- (reporting.reminder_history): two instances racing insert the same key, and the second sends nothing.
--
-- The jobs' clock is spor_job_now(): now() plus settings.job_clock_offset, 0 unless the owner sets it. Tests and
-- rehearsals move it forward to see what the jobs would do days later, without waiting and without back-dating any
-- row (filing times never change: R18). Only the owner writes settings.

ALTER TABLE settings
    ADD COLUMN pending_reminder_after interval NOT NULL DEFAULT interval '7 days'
        CONSTRAINT pending_reminder_after_positive CHECK (pending_reminder_after > interval '0'),
    ADD COLUMN job_clock_offset interval NOT NULL DEFAULT interval '0'
        CONSTRAINT job_clock_offset_not_negative CHECK (job_clock_offset >= interval '0');
COMMENT ON COLUMN settings.pending_reminder_after IS 'How long an organisation request waits before its super users are reminded (once).';
COMMENT ON COLUMN settings.job_clock_offset IS 'Tests and rehearsals only: the background jobs'' clock runs this far ahead of now(). 0 in production.';

CREATE FUNCTION spor_job_now() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT now() + s.job_clock_offset FROM settings s
$$;
REVOKE EXECUTE ON FUNCTION spor_job_now() FROM PUBLIC;
COMMENT ON FUNCTION spor_job_now() IS 'The background jobs'' clock: now() + settings.job_clock_offset. Owner and worker.';

CREATE TABLE reminders (
    kind text NOT NULL CHECK (kind IN ('request-reminder', 'ticket-overdue')),
    subject_type text NOT NULL CHECK (subject_type IN ('access_request', 'service_desk_ticket')),
    subject_id text NOT NULL,
    organisation_id text REFERENCES organisations (id),
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, subject_type, subject_id)
);
REVOKE ALL ON reminders FROM PUBLIC;
COMMENT ON TABLE reminders IS 'Reminders sent by the jobs, one per kind and subject (the key makes them once-only across instances). Owner only; analysts read reporting.reminder_history.';

CREATE FUNCTION spor_send_reminders(batch integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    clock timestamptz := spor_job_now();
    wait interval;
    sent integer := 0;
    r access_requests%ROWTYPE;
    t service_desk_tickets%ROWTYPE;
    fresh boolean;
BEGIN
    SELECT s.pending_reminder_after INTO wait FROM settings s;
    FOR r IN SELECT * FROM access_requests q
             WHERE q.status = 'pending' AND q.approver_kind = 'organisation-super-users' AND q.created_at <= clock - wait
               AND NOT EXISTS (SELECT 1 FROM reminders m WHERE m.kind = 'request-reminder'
                               AND m.subject_type = 'access_request' AND m.subject_id = q.id::text)
             ORDER BY q.id LIMIT batch LOOP
        INSERT INTO reminders (kind, subject_type, subject_id, organisation_id)
        VALUES ('request-reminder', 'access_request', r.id::text, r.organisation_id)
        ON CONFLICT DO NOTHING RETURNING true INTO fresh;
        IF fresh THEN
            PERFORM spor_queue_to_super_users(r.organisation_id, 'request-reminder',
                'Reminder: access request ' || r.id || ' waits for your decision',
                'Access request ' || r.id || ' for the role ' || r.role || ' in ' || r.organisation_id || ' was filed on '
                    || to_char(r.created_at, 'YYYY-MM-DD') || ' and waits for a super user''s decision. It expires on '
                    || to_char(r.expires_at, 'YYYY-MM-DD') || '.',
                'access_request', r.id::text);
            sent := sent + 1;
        END IF;
    END LOOP;
    FOR t IN SELECT * FROM service_desk_tickets k
             WHERE k.status = 'open' AND k.due_at <= clock
               AND NOT EXISTS (SELECT 1 FROM reminders m WHERE m.kind = 'ticket-overdue'
                               AND m.subject_type = 'service_desk_ticket' AND m.subject_id = k.id::text)
             ORDER BY k.id LIMIT batch LOOP
        fresh := NULL;
        INSERT INTO reminders (kind, subject_type, subject_id, organisation_id)
        VALUES ('ticket-overdue', 'service_desk_ticket', t.id::text, t.organisation_id)
        ON CONFLICT DO NOTHING RETURNING true INTO fresh;
        IF fresh THEN
            PERFORM spor_queue_to_service_desk(t.organisation_id, 'ticket-overdue',
                'Service request ' || t.id || ' is overdue',
                'Service request ' || t.id || ' (' || t.subject || ') for ' || t.organisation_id || ' was due on '
                    || to_char(t.due_at, 'YYYY-MM-DD HH24:MI TZ') || ' and is still open.',
                'service_desk_ticket', t.id::text);
            sent := sent + 1;
        END IF;
    END LOOP;
    RETURN sent;
END
$$;
REVOKE EXECUTE ON FUNCTION spor_send_reminders(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_send_reminders(integer), spor_job_now() TO spor_worker;
COMMENT ON FUNCTION spor_send_reminders(integer) IS 'Issue 12: reminds super users of organisation requests pending too long and the service desk of overdue tickets, once each. Worker only.';

CREATE VIEW reporting.reminder_history WITH (security_barrier = true) AS
SELECT m.kind, m.subject_type, m.subject_id, m.organisation_id, m.sent_at
FROM reminders m;
COMMENT ON VIEW reporting.reminder_history IS 'Every reminder the jobs sent: request-reminder (to the super users) and ticket-overdue (to the service desk).';
GRANT SELECT ON reporting.reminder_history TO spor_reporting;
