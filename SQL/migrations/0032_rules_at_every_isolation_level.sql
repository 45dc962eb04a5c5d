-- 0032 — R8, R11, R14 hold at every isolation level a client may choose.
--
-- The rules that count an organisation's super users (R8 routing, R11 the first super user, R14 never the last one
-- revoked) take the organisation lock and then count. At READ COMMITTED each statement sees what committed before
-- it, so the count after the lock is current. At REPEATABLE READ or SERIALIZABLE the whole transaction reads one
-- snapshot, taken at its first statement: two super users revoking each other both waited for the lock, both
-- counted two from their old snapshots, and both committed, leaving none.
--
-- Now a command that changes the super-user set also *writes* a row of the organisation's own
-- (organisation_super_user_epochs: a counter nothing reads), and a command that needs the set to stay put reads it
-- FOR SHARE when its snapshot outlives the statement. PostgreSQL refuses, at REPEATABLE READ and above, to write
-- or lock a row that a transaction which committed after the snapshot wrote ("could not serialize access due to
-- concurrent update", 40001): the later of the two fails and can be retried (the service retries it; then it sees
-- the current set and gets last-super-user). At READ COMMITTED nothing changes but one row write.
CREATE TABLE organisation_super_user_epochs (
    organisation_id text PRIMARY KEY REFERENCES organisations (id),
    epoch bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE organisation_super_user_epochs IS 'R8/R11/R14: written by every change of an organisation''s super-user set, so that snapshot isolation detects two concurrent ones (the owner''s only).';
INSERT INTO organisation_super_user_epochs (organisation_id) SELECT id FROM organisations;

CREATE FUNCTION spor_organisation_epoch_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO organisation_super_user_epochs (organisation_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION spor_organisation_epoch_row() FROM PUBLIC;
CREATE TRIGGER spor_organisation_epoch_row AFTER INSERT ON organisations
    FOR EACH ROW EXECUTE FUNCTION spor_organisation_epoch_row();

CREATE OR REPLACE FUNCTION spor_lock_organisation_for(organisation text, changes_super_users boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF organisation IS NULL THEN
        RETURN;
    END IF;
    IF changes_super_users THEN
        PERFORM 1 FROM organisations WHERE id = organisation FOR UPDATE;
        UPDATE organisation_super_user_epochs SET epoch = epoch + 1 WHERE organisation_id = organisation;
    ELSE
        PERFORM 1 FROM organisations WHERE id = organisation FOR KEY SHARE;
        IF current_setting('transaction_isolation') <> 'read committed' THEN
            PERFORM 1 FROM organisation_super_user_epochs WHERE organisation_id = organisation FOR SHARE;
        END IF;
    END IF;
END
$$;
