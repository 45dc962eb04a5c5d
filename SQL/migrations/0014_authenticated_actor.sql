-- 0014 — the database knows who is acting.
--
-- Until now the actor was `app.account_id`, a setting any role can set to anything. From here on the actor is
-- established only by `spor_authenticate(token)` (a live session's bearer token) or by the owner-run (definer)
-- functions that create one (registration, sign-in, verification). They set `app.account_id` together with
-- `app.actor_proof`: an HMAC over the account, the backend's process id and the transaction's start time, under
-- a key only the owner can read. `spor_actor()` returns the account only when the proof matches, so a setting
-- made by hand — or copied from another transaction or another connection — makes nobody the actor.
-- Both settings are transaction-local (SET LOCAL), so nothing leaks through a pooled connection either.
--
-- Sessions, credentials, verification tokens and security answers are written only by these functions: the
-- application role can neither write them nor read a password hash, a token hash or an answer hash.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE actor_binding_key (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key bytea NOT NULL DEFAULT gen_random_bytes(32) CHECK (octet_length(key) = 32)
);
INSERT INTO actor_binding_key DEFAULT VALUES;
REVOKE ALL ON actor_binding_key FROM PUBLIC;
ALTER TABLE actor_binding_key ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE actor_binding_key IS 'The key of app.actor_proof (HMAC-SHA-256). Owner only: no role but the owner reads or writes it.';

-- The proof for `account` in this backend's current transaction. Not granted to anyone: with it, any role
-- could name any actor. (now() is the start of the transaction; its epoch does not depend on DateStyle or
-- TimeZone, which a client may change.)
CREATE FUNCTION spor_actor_proof(account uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN encode(hmac(convert_to(account::text || '/' || pg_backend_pid()::text || '/' || extract(epoch FROM now())::text, 'UTF8'),
                       (SELECT key FROM actor_binding_key), 'sha256'), 'hex');
COMMENT ON FUNCTION spor_actor_proof(uuid) IS 'The proof binding an actor to this transaction of this backend. Owner only.';

-- Makes `account` the actor of the current transaction. Not granted to anyone: only the owner's functions
-- below call it, after they have checked who is there.
CREATE FUNCTION spor_bind_actor(account uuid) RETURNS uuid
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT set_config('app.account_id', account::text, true), set_config('app.actor_proof', spor_actor_proof(account), true);
    SELECT account;
$$;
COMMENT ON FUNCTION spor_bind_actor(uuid) IS 'Makes the account the actor of this transaction (with its proof). Owner only.';

-- The actor: the account of app.account_id when app.actor_proof proves it was set by the functions above in
-- this very transaction; otherwise nobody. Same signature as before, so every policy and trigger now uses it.
CREATE OR REPLACE FUNCTION spor_actor() RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    claimed text := current_setting('app.account_id', true);
BEGIN
    IF claimed IS NULL OR claimed !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN NULL;
    END IF;
    IF current_setting('app.actor_proof', true) IS DISTINCT FROM spor_actor_proof(claimed::uuid) THEN
        RETURN NULL;
    END IF;
    RETURN claimed::uuid;
END
$$;
COMMENT ON FUNCTION spor_actor() IS 'The acting account of this transaction, as established by spor_authenticate (or registration, sign-in, verification); NULL otherwise.';

-- The one way a client acts as an account: a live session's bearer token.
CREATE FUNCTION spor_authenticate(token text) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    account uuid;
BEGIN
    SELECT s.account_id INTO account
    FROM sessions s JOIN accounts a ON a.id = s.account_id
    WHERE s.token_hash = sha256(convert_to(coalesce(token, ''), 'UTF8'))
      AND s.revoked_at IS NULL AND s.expires_at > now() AND a.status = 'active';
    IF account IS NULL THEN
        PERFORM spor_refuse('R13', 'not-authenticated', 'the bearer token is unknown, expired or signed out');
    END IF;
    RETURN spor_bind_actor(account);
END
$$;
COMMENT ON FUNCTION spor_authenticate(text) IS 'Makes the account of a live session (by its bearer token) the actor of this transaction; raises not-authenticated otherwise.';

------------------------------------------------------------------------------------------------------------
-- Accounts and sessions through the database's own checks
------------------------------------------------------------------------------------------------------------

-- A bcrypt hash as pgcrypto's crypt() reads it: it knows the $2a$ prefix only ($2b$ and $2y$ hash the same way).
CREATE FUNCTION spor_bcrypt_matches(secret text, hash text) RETURNS boolean
    LANGUAGE sql IMMUTABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN crypt(secret, '$2a$' || substr(hash, 5)) = '$2a$' || substr(hash, 5);
COMMENT ON FUNCTION spor_bcrypt_matches(text, text) IS 'Whether a secret matches a bcrypt hash ($2a$, $2b$ or $2y$). Owner only.';

-- A bcrypt hash of the same cost as real passwords, checked when the e-mail is unknown so that both failures
-- take as long.
CREATE TABLE sign_in_decoy (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    password_hash text NOT NULL
);
INSERT INTO sign_in_decoy (password_hash) VALUES (crypt(encode(gen_random_bytes(16), 'hex'), gen_salt('bf', 12)));
REVOKE ALL ON sign_in_decoy FROM PUBLIC;
ALTER TABLE sign_in_decoy ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE sign_in_decoy IS 'A bcrypt hash of a random secret, checked for unknown e-mails (equal timing). Owner only.';

-- R2: self-registration. A pending account with its password hash, a verification token made here (so no
-- client chooses it) and sent by e-mail through the outbox (R16), audited (R15); the new account is the actor
-- for the rest of the transaction. An e-mail that has an account already (any letter case) is refused.
CREATE FUNCTION spor_register(email text, display_name text, password_hash text, verification_seconds double precision)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    account uuid := gen_random_uuid();
    token text := encode(gen_random_bytes(32), 'hex');
BEGIN
    IF EXISTS (SELECT 1 FROM accounts a WHERE lower(a.email) = lower(spor_register.email)) THEN
        PERFORM spor_refuse('R2', 'account-exists', 'an account with this e-mail exists already: sign in with your existing EMA account');
    END IF;
    PERFORM spor_bind_actor(account);
    INSERT INTO accounts (id, email, display_name) VALUES (account, spor_register.email, spor_register.display_name);
    INSERT INTO credentials (account_id, password_hash) VALUES (account, spor_register.password_hash);
    INSERT INTO verification_tokens (token_hash, account_id, expires_at)
    VALUES (sha256(convert_to(token, 'UTF8')), account, now() + make_interval(secs => verification_seconds));
    INSERT INTO audit_events (actor_id, action, subject_type, subject_id, after)
    VALUES (account, 'account.registered', 'account', account::text,
            jsonb_build_object('email', spor_register.email, 'status', 'pending'));
    INSERT INTO notification_outbox (recipient_account_id, recipient_email, template, subject, body, subject_type, subject_id)
    VALUES (account, spor_register.email, 'verify-email', 'Confirm your e-mail address for the EMA Account Management portal',
            'Welcome, ' || spor_register.display_name || '. Confirm your e-mail address with this verification token: ' || token,
            'account', account::text);
    RETURN account;
END
$$;
COMMENT ON FUNCTION spor_register(text, text, text, double precision) IS 'R2: self-registration with a verification e-mail; the token is made here and only e-mailed.';

-- R2: verification by token, as before (0010), but the verified account becomes the actor through its proof.
CREATE OR REPLACE FUNCTION spor_verify_account(token bytea) RETURNS uuid
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
    PERFORM spor_bind_actor(account);
    UPDATE accounts SET status = 'active', verified_at = now() WHERE id = account AND status = 'pending';
    INSERT INTO audit_events (actor_id, action, subject_type, subject_id, before, after)
    VALUES (account, 'account.verified', 'account', account::text,
            jsonb_build_object('status', 'pending'), jsonb_build_object('status', 'active'));
    RETURN account;
END
$$;

-- Sign-in: the password is checked here (bcrypt through pgcrypto), the throttle too (5 failures of one
-- account within 15 minutes close it for the rest of the window), serialised per e-mail so that concurrent
-- attempts cannot all slip past the count. A failure is recorded and answered, not raised, so it survives.
-- Outcomes: signed-in (with the token, shown once and stored as SHA-256), invalid-credentials,
-- too-many-attempts (with blocked_until), account-pending, account-disabled.
CREATE FUNCTION spor_sign_in(email text, password text, session_seconds double precision)
    RETURNS TABLE (outcome text, account_id uuid, token text, expires_at timestamptz, blocked_until timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    candidate record;
    until timestamptz;
    new_token text;
    expiry timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('spor_sign_in:' || lower(spor_sign_in.email), 0));
    SELECT a.id, a.status, c.password_hash INTO candidate
    FROM accounts a JOIN credentials c ON c.account_id = a.id
    WHERE lower(a.email) = lower(spor_sign_in.email);
    IF NOT FOUND THEN
        PERFORM spor_bcrypt_matches(password, (SELECT d.password_hash FROM sign_in_decoy d));
        RETURN QUERY SELECT 'invalid-credentials', NULL::uuid, NULL::text, NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    until := spor_login_blocked_until(candidate.id);
    IF until IS NOT NULL THEN
        RETURN QUERY SELECT 'too-many-attempts', candidate.id, NULL::text, NULL::timestamptz, until;
        RETURN;
    END IF;
    IF NOT spor_bcrypt_matches(password, candidate.password_hash) THEN
        PERFORM spor_record_login_failure(candidate.id);
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
COMMENT ON FUNCTION spor_sign_in(text, text, double precision) IS 'Sign-in: checks the password (bcrypt) and the throttle in the database; on success a new session, the account as actor, audited.';

-- Sign-out: ends the session of `token`, which must be the actor's own.
CREATE FUNCTION spor_sign_out(token text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    account uuid := spor_actor();
BEGIN
    IF account IS NULL THEN
        PERFORM spor_refuse('R13', 'not-authenticated', 'sign in first');
    END IF;
    UPDATE sessions SET revoked_at = now()
    WHERE token_hash = sha256(convert_to(token, 'UTF8')) AND sessions.account_id = account AND revoked_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO audit_events (actor_id, action, subject_type, subject_id) VALUES (account, 'session.ended', 'account', account::text);
    RETURN true;
END
$$;
COMMENT ON FUNCTION spor_sign_out(text) IS 'Ends one of the actor''s own sessions, audited.';

-- R3: replaces the actor's answers to security questions with the given bcrypt hashes, audited.
CREATE FUNCTION spor_set_security_answers(questions text[], answer_hashes text[]) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    account uuid := spor_actor();
BEGIN
    IF account IS NULL THEN
        PERFORM spor_refuse('R13', 'not-authenticated', 'sign in first');
    END IF;
    IF cardinality(questions) <> 3 OR cardinality(answer_hashes) <> 3
       OR (SELECT count(DISTINCT lower(btrim(q))) FROM unnest(questions) q) <> 3 THEN
        PERFORM spor_refuse('R3', 'validation-failed', 'answer three different security questions');
    END IF;
    DELETE FROM security_answers WHERE security_answers.account_id = account;
    INSERT INTO security_answers (account_id, question, answer_hash)
    SELECT account, q, h FROM unnest(questions, answer_hashes) AS t (q, h);
    INSERT INTO audit_events (actor_id, action, subject_type, subject_id)
    VALUES (account, 'account.security-questions-set', 'account', account::text);
END
$$;
COMMENT ON FUNCTION spor_set_security_answers(text[], text[]) IS 'R3: sets the actor''s three security answers (bcrypt hashes), audited.';

-- R15: changes of credentials, security answers and sessions carry an audit event about their account.
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON credentials
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('account', 'account_id');
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON security_answers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('account', 'account_id');
CREATE CONSTRAINT TRIGGER r15_audit_required AFTER INSERT OR UPDATE ON sessions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r15_audit_required('account', 'account_id');

------------------------------------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------------------------------------

-- No writes to secrets, and no reading them: the application role sees which account has answers (R3), and
-- nothing of sessions, credentials or verification tokens.
REVOKE ALL ON sessions, credentials, verification_tokens, security_answers FROM spor_app;
GRANT SELECT (account_id, question, set_at) ON security_answers TO spor_app;
REVOKE INSERT (id, email, display_name) ON accounts FROM spor_app;
REVOKE INSERT ON accounts FROM spor_app;

-- 0009's ALTER DEFAULT PRIVILEGES ... IN SCHEMA public REVOKE did nothing (per-schema defaults can only add to
-- the global ones): revoke globally for the owner's future functions, and once more from every function now.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, spor_app, spor_reporting', f);
    END LOOP;
END
$$;

-- What the application role may call: the rules' helpers used in policies and triggers that run with its
-- rights, the entry points above, and the workers' functions (until the worker role has its own login).
-- Not: the proof, the binding, password checks, the login candidate and account-by-e-mail look-ups, the
-- failure recorder and the throttle query (each would hand out hashes, ids or lock-outs).
GRANT EXECUTE ON FUNCTION
    spor_fold(text),
    spor_actor(),
    spor_refuse(text, text, text),
    spor_has_staff_role(uuid, text),
    spor_actor_is_staff(),
    spor_is_active_super_user(uuid, text),
    spor_active_super_user_count(text),
    spor_actor_super_user_organisations(),
    spor_lock_organisation(text),
    spor_authenticate(text),
    spor_register(text, text, text, double precision),
    spor_verify_account(bytea),
    spor_sign_in(text, text, double precision),
    spor_sign_out(text),
    spor_set_security_answers(text[], text[]),
    spor_expire_due_requests(integer),
    spor_claim_notifications(integer),
    spor_mark_notification(bigint, text),
    spor_super_user_recipients(text),
    spor_report(text, text, timestamptz, timestamptz, integer, integer)
TO spor_app;

-- No client holds a lock or a connection for ever (defaults; a deployment may set its own per role).
DO $$
BEGIN
    ALTER ROLE spor_app SET statement_timeout = '30s';
    ALTER ROLE spor_app SET idle_in_transaction_session_timeout = '60s';
    ALTER ROLE spor_reporting SET statement_timeout = '5min';
    ALTER ROLE spor_reporting SET idle_in_transaction_session_timeout = '60s';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'role settings not changed (the migrating role may not alter spor_app/spor_reporting): set statement_timeout and idle_in_transaction_session_timeout on them yourself';
END
$$;
