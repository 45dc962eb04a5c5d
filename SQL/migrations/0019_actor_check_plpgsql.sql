-- 0019 — spor_actor() back in PL/pgSQL, with 0018's inline proof.
--
-- Measured (Benchmarks/api/pair.sh, release builds side by side): 0018's SQL-language version made the approval
-- of a request slower (p50 12.4 → 18.2 ms against the baseline): a non-inlined SQL function prepares its query on
-- every call, while PL/pgSQL keeps its plans for the session. This version keeps the plans and makes one call.
CREATE OR REPLACE FUNCTION spor_actor() RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    claimed text := current_setting('app.account_id', true);
BEGIN
    IF claimed IS NULL OR claimed !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN NULL;
    END IF;
    IF current_setting('app.actor_proof', true) IS DISTINCT FROM
       encode(hmac(convert_to(claimed || '/' || pg_backend_pid()::text || '/' || extract(epoch FROM now())::text, 'UTF8'),
                   (SELECT key FROM actor_binding_key), 'sha256'), 'hex') THEN
        RETURN NULL;
    END IF;
    RETURN claimed::uuid;
END
$$;
