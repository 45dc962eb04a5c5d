-- Faults (issue 13): no call waits on a lock without bound. With the organisation lock held elsewhere (an
-- administrator's open transaction, a stuck client), every command for that organisation used to wait until it
-- was released, holding a pooled connection all the while, so the pool ran dry and every other call queued behind
-- it. A lock wait past lock_timeout fails with 55P03 (lock_not_available), which the service answers 503 `busy`
-- with Retry-After; nothing was changed. Commands take their locks within one statement (0029), so 5 s is long
-- compared with any lock a command itself holds.
--
-- Role defaults apply at login, so to the application's and the worker's own logins (the embedded cluster's, and a
-- deployment's); a login that acts as spor_app through SET ROLE keeps its own settings.
DO $$
BEGIN
    ALTER ROLE spor_app SET lock_timeout = '5s';
    ALTER ROLE spor_worker SET lock_timeout = '10s';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'role settings not changed (the migrating role may not alter spor_app/spor_worker): set lock_timeout on them yourself';
END
$$;

-- The one wait that is meant to be long: concurrent sign-ins for one address queue on its advisory lock (0035), so
-- that at most five passwords are checked in 15 minutes whatever the concurrency. Each waits its turn, up to the
-- statement timeout, rather than being cut off at 5 s on a busy server; the queue is as long as the attacker's
-- concurrency and each turn after the fifth failure is short (no password check).
ALTER FUNCTION spor_sign_in(text, text, double precision) SET lock_timeout = '30s';
