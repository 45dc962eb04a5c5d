-- 0018 — spor_actor() in one call.
--
-- 0014's spor_actor() called spor_actor_proof(), a second owner-run function with its own pinned search_path: two
-- function calls and two search_path switches for every check, and policies, triggers and helpers check the actor
-- many times per command. The same proof, computed inline in one SQL function; same signature, same answers.
CREATE OR REPLACE FUNCTION spor_actor() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN (
        SELECT claimed::uuid
        FROM (SELECT current_setting('app.account_id', true) AS claimed, current_setting('app.actor_proof', true) AS proof) s
        WHERE claimed ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
          AND proof = encode(hmac(convert_to(claimed || '/' || pg_backend_pid()::text || '/' || extract(epoch FROM now())::text, 'UTF8'),
                                  (SELECT key FROM actor_binding_key), 'sha256'), 'hex'));
