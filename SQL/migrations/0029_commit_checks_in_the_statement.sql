-- 0029 — the deferred rule checks of a one-call command run inside its statement.
--
-- The rule triggers of R4, R15 and R16 are deferred to COMMIT (a change and its audit event or message are written
-- one after the other). A command called as one statement commits implicitly after its result has been sent, and
-- PostgresNIO (like several drivers) does not report an error raised at that commit: the caller would see the
-- result of a command that was rolled back. The service wraps each command as
--     SELECT * FROM (SELECT * FROM spor_command(...)) AS command WHERE spor_check_deferred_rules()
-- and this function runs the deferred checks at once (SET CONSTRAINTS ALL IMMEDIATE), after the command function
-- has finished (a function in FROM runs to completion before its first row is filtered) and before any row is
-- sent. A refusal is then an error of the statement, reported like any other, and the lock the command took is
-- still held for one statement only.
CREATE FUNCTION spor_check_deferred_rules() RETURNS boolean
    LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
BEGIN
    SET CONSTRAINTS ALL IMMEDIATE;
    RETURN true;
END
$$;
COMMENT ON FUNCTION spor_check_deferred_rules() IS 'Runs the pending deferred rule checks of this transaction now (SET CONSTRAINTS ALL IMMEDIATE); true unless one refuses.';
REVOKE EXECUTE ON FUNCTION spor_check_deferred_rules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_check_deferred_rules() TO spor_app, spor_worker;
