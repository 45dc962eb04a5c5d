-- 0012 — sign-in throttling: after 5 failed sign-ins of one account within 15 minutes, further attempts are
-- refused (HTTP 429) until the window has passed. Failures are recorded before anyone is acting, so the
-- application role reaches the table only through these two functions.
CREATE TABLE login_failures (
    account_id uuid NOT NULL REFERENCES accounts (id),
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_account ON login_failures (account_id, failed_at);
ALTER TABLE login_failures ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE login_failures IS 'Failed sign-ins (wrong password) per account, for throttling.';

CREATE FUNCTION spor_record_login_failure(account uuid) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO login_failures (account_id) VALUES (account);
    DELETE FROM login_failures WHERE account_id = account AND failed_at < now() - interval '1 day';
$$;
COMMENT ON FUNCTION spor_record_login_failure(uuid) IS 'Records a failed sign-in (and forgets those older than a day).';

CREATE FUNCTION spor_login_blocked_until(account uuid) RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN count(*) >= 5 THEN min(failed_at) + interval '15 minutes' END
    FROM (SELECT failed_at FROM login_failures
          WHERE account_id = account AND failed_at > now() - interval '15 minutes'
          ORDER BY failed_at DESC LIMIT 5) recent
$$;
COMMENT ON FUNCTION spor_login_blocked_until(uuid) IS 'When sign-in opens again after 5 failures within 15 minutes, or NULL when it is open.';

REVOKE EXECUTE ON FUNCTION spor_record_login_failure(uuid), spor_login_blocked_until(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_record_login_failure(uuid), spor_login_blocked_until(uuid) TO spor_app;
