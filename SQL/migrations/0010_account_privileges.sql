-- 0010 — R2/R3: an account cannot unlock itself.
--
-- The account row gates every request (status active, security questions set or waived by the administrator
-- command). The application role may write only the columns a person owns — e-mail and name at registration,
-- the name later — so status, verification and the R3 waiver change only through the functions below (or the
-- owner's administrator command).
REVOKE INSERT, UPDATE ON accounts FROM spor_app;
GRANT INSERT (id, email, display_name) ON accounts TO spor_app;
GRANT UPDATE (display_name) ON accounts TO spor_app;
REVOKE UPDATE ON verification_tokens FROM spor_app;

-- R2: verification by token. Marks the token used, activates the pending account and audits it (R15), all in
-- the caller's transaction. Returns the account, or NULL for an unknown, used or expired token.
CREATE FUNCTION spor_verify_account(token bytea) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    account uuid;
BEGIN
    UPDATE verification_tokens SET used_at = now()
    WHERE token_hash = token AND used_at IS NULL AND expires_at > now()
    RETURNING account_id INTO account;
    IF account IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.account_id', account::text, true);
    UPDATE accounts SET status = 'active', verified_at = now() WHERE id = account AND status = 'pending';
    INSERT INTO audit_events (actor_id, action, subject_type, subject_id, before, after)
    VALUES (account, 'account.verified', 'account', account::text,
            jsonb_build_object('status', 'pending'), jsonb_build_object('status', 'active'));
    RETURN account;
END
$$;
COMMENT ON FUNCTION spor_verify_account(bytea) IS 'R2: activates the account of an unused, unexpired verification token (SHA-256), with its audit event.';
REVOKE EXECUTE ON FUNCTION spor_verify_account(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_verify_account(bytea) TO spor_app;
