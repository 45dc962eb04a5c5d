-- 0053 — writes made by the owner's own functions skip the checks that guard against a client writing around them.
--
-- Measured (Benchmarks/api/RESULTS.md, "The bookkeeping checks, for the clients they guard against"): on the pgbench
-- ceiling of the request+approve pair at 32 clients, the commit-time R15/R16/R4 checks, the audit trigger's actor
-- check and the audit trigger's look-up of the subject's organisation were about a fifth of PostgreSQL's time.
--
-- Those checks exist for a client holding the spor_app login that writes the tables directly: it must name itself
-- as the actor, attribute the event to the subject's organisation, and leave an audit event (R15) and the message
-- (R16) of each change, and the grant of each approval (R4), in the same transaction. The command functions
-- (SECURITY DEFINER, owned by the tables' owner) write those rows themselves, with the actor spor_authenticate
-- proved and the organisation of the row they just wrote; inside them current_user is the owner. For the owner the
-- checks were never a security boundary (it owns the tables and their triggers and can switch any of them off);
-- they were a net for the functions' own bookkeeping, and that net is now a test that reads it back afterwards
-- (AccessTestSupport's `BookkeepingAudit`: every row's last write has its audit event, every decision its message,
-- every approval its grant), run after the seed scenarios, the differential test and the concurrency tests.
--
-- So, for writes whose current_user is the owner, and only for them:
--  * the deferred R15 (audit event), R16 (message) and R4 (approved request granted) checks are not queued (a
--    WHEN clause on each constraint trigger; r17_documents_required, a rule of its own, is unchanged);
--  * r15_audit_subject_organisation does not look the subject's organisation up;
--  * r15_audit_insert does not re-check the actor (it still stamps the time and the transaction).
-- Every rule trigger (R2–R14, R17–R22) still fires for every writer, the owner included. A direct write by spor_app
-- (or any other role) is checked exactly as before: SQLRuleTests+Audit/+Outbox and IdentityAttackTests prove it.
--
-- spor_written_by_owner() names the owner of the command functions at migration time (a plain SQL function, inlined
-- into the WHEN clauses). If the schema is later given to another role, the comparison fails for everyone and every
-- check fires again: the fail-safe direction.

DO $migration$
DECLARE
    owner_name name := (SELECT p.proowner::regrole::name FROM pg_proc p WHERE p.oid = 'spor_file_request'::regproc);
    t record;
    def text;
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION spor_written_by_owner() RETURNS boolean
            LANGUAGE sql STABLE PARALLEL SAFE AS $body$ SELECT current_user = %L::name $body$
    $f$, owner_name);

    FOR t IN
        SELECT tg.oid, tg.tgname, tg.tgrelid::regclass AS rel, pg_get_triggerdef(tg.oid) AS def
        FROM pg_trigger tg
        WHERE NOT tg.tgisinternal AND tg.tgconstraint <> 0
          AND (tg.tgname = 'r15_audit_required' OR tg.tgname LIKE 'r16\_%' OR tg.tgname = 'r4_approved_request_granted')
        ORDER BY tg.tgrelid::regclass::text, tg.tgname
    LOOP
        def := t.def;
        IF def LIKE '% FOR EACH ROW WHEN (%' THEN
            def := replace(def, ' FOR EACH ROW WHEN (', ' FOR EACH ROW WHEN ((NOT spor_written_by_owner()) AND (');
            def := replace(def, ' EXECUTE FUNCTION ', ') EXECUTE FUNCTION ');
        ELSE
            def := replace(def, ' FOR EACH ROW EXECUTE FUNCTION ', ' FOR EACH ROW WHEN (NOT spor_written_by_owner()) EXECUTE FUNCTION ');
        END IF;
        IF def = t.def THEN
            RAISE EXCEPTION '0053: trigger % on % has an unexpected definition: %', t.tgname, t.rel, t.def;
        END IF;
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
        EXECUTE def;
    END LOOP;
END
$migration$;

COMMENT ON FUNCTION spor_written_by_owner() IS
    'True inside the owner''s own (SECURITY DEFINER) functions: their writes skip the checks that guard against a client writing around them (0053).';
REVOKE EXECUTE ON FUNCTION spor_written_by_owner() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_written_by_owner() TO spor_app, spor_worker;

DROP TRIGGER r15_audit_subject_organisation ON audit_events;
CREATE TRIGGER r15_audit_subject_organisation BEFORE INSERT ON audit_events
    FOR EACH ROW WHEN (NOT spor_written_by_owner()) EXECUTE FUNCTION r15_audit_subject_organisation();

CREATE OR REPLACE FUNCTION r15_audit_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NOT spor_written_by_owner() AND NEW.actor_id IS DISTINCT FROM spor_actor() THEN
        PERFORM spor_refuse('R15', 'audit-actor', 'an audit event names the acting account');
    END IF;
    NEW.occurred_at := now();
    NEW.transaction_id := txid_current();
    RETURN NEW;
END
$$;
