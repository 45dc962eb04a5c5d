-- 0035 — The sign-in throttle counts per e-mail address, known or not.
--
-- 0012/0014 counted failures per *account*: an unknown address was never throttled, so a 429 told an attacker that
-- an account existed. Now failures are counted per address (its SHA-256, lower case: no raw address of a stranger is
-- kept), for known and unknown addresses alike, and the throttle is checked before anything else: five failures
-- within 15 minutes close sign-in for that address until 15 minutes after the first of them, whatever the password,
-- and the answer does not depend on whether the account exists. spor_sign_in takes a transaction-level advisory lock
-- per address first, so concurrent attempts (also through several instances) are checked one after the other: at
-- most five passwords are ever checked per address per window.
--
-- A locked-out person waits for the window to end; an administrator can open it at once:
--     DELETE FROM sign_in_failures WHERE email_key = sha256(convert_to(lower('person@example.com'), 'UTF8'));
CREATE TABLE sign_in_failures (
    email_key bytea NOT NULL CHECK (octet_length(email_key) = 32),
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_key ON sign_in_failures (email_key, failed_at DESC);
COMMENT ON TABLE sign_in_failures IS 'Failed sign-ins per address (SHA-256 of the lower-case e-mail), for the throttle; the owner''s only.';
INSERT INTO sign_in_failures (email_key, failed_at)
SELECT sha256(convert_to(lower(a.email), 'UTF8')), f.failed_at
FROM login_failures f JOIN accounts a ON a.id = f.account_id
WHERE f.failed_at > now() - interval '1 day';

CREATE FUNCTION spor_sign_in_blocked_until(key bytea) RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN count(*) >= 5 THEN min(failed_at) + interval '15 minutes' END
    FROM (SELECT failed_at FROM sign_in_failures
          WHERE email_key = key AND failed_at > now() - interval '15 minutes'
          ORDER BY failed_at DESC LIMIT 5) recent
$$;
CREATE FUNCTION spor_record_sign_in_failure(key bytea) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO sign_in_failures (email_key) VALUES (key);
    DELETE FROM sign_in_failures WHERE email_key = key AND failed_at < now() - interval '1 day';
$$;
REVOKE EXECUTE ON FUNCTION spor_sign_in_blocked_until(bytea), spor_record_sign_in_failure(bytea) FROM PUBLIC;

CREATE OR REPLACE FUNCTION spor_sign_in(email text, password text, session_seconds double precision)
    RETURNS TABLE (outcome text, account_id uuid, token text, expires_at timestamptz, blocked_until timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    key bytea := sha256(convert_to(lower(spor_sign_in.email), 'UTF8'));
    candidate record;
    until timestamptz;
    new_token text;
    expiry timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('spor_sign_in:' || lower(spor_sign_in.email), 0));
    until := spor_sign_in_blocked_until(key);
    IF until IS NOT NULL THEN
        RETURN QUERY SELECT 'too-many-attempts', NULL::uuid, NULL::text, NULL::timestamptz, until;
        RETURN;
    END IF;
    SELECT a.id, a.status, c.password_hash INTO candidate
    FROM accounts a JOIN credentials c ON c.account_id = a.id
    WHERE lower(a.email) = lower(spor_sign_in.email);
    IF NOT FOUND THEN
        PERFORM spor_bcrypt_matches(password, (SELECT d.password_hash FROM sign_in_decoy d));
        PERFORM spor_record_sign_in_failure(key);
        RETURN QUERY SELECT 'invalid-credentials', NULL::uuid, NULL::text, NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    IF NOT spor_bcrypt_matches(password, candidate.password_hash) THEN
        PERFORM spor_record_sign_in_failure(key);
        RETURN QUERY SELECT 'invalid-credentials', NULL::uuid, NULL::text, NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    IF candidate.status <> 'active' THEN
        RETURN QUERY SELECT 'account-' || candidate.status, candidate.id, NULL::text, NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    new_token := encode(gen_random_bytes(32), 'hex');
    expiry := now() + make_interval(secs => session_seconds);
    PERFORM spor_bind_actor(candidate.id);
    INSERT INTO sessions (token_hash, account_id, expires_at) VALUES (sha256(convert_to(new_token, 'UTF8')), candidate.id, expiry);
    INSERT INTO audit_events (actor_id, action, subject_type, subject_id, after)
    VALUES (candidate.id, 'session.started', 'account', candidate.id::text, jsonb_build_object('expiresAt', expiry));
    RETURN QUERY SELECT 'signed-in', candidate.id, new_token, expiry, NULL::timestamptz;
END
$$;
