-- 0017 — Idempotency-Keys through the database's own functions.
--
-- The application role no longer reads or writes idempotency_keys itself: before, an actor-less session saw every
-- anonymous caller's stored answers (registrations: ids, e-mails, names) and could block their keys. Keys belong to
-- the authenticated actor; an anonymous key is scoped to the request it came with (key and request fingerprint), so
-- one anonymous caller can neither read nor block another's: the same key with another body is another request.
REVOKE ALL ON idempotency_keys FROM spor_app;

-- The stored form of a key: the key itself for an actor, key and fingerprint for nobody. Owner only.
CREATE FUNCTION spor_idempotency_scope(idem_key text, idem_hash bytea) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN CASE WHEN spor_actor() IS NULL THEN idem_key || '#' || encode(idem_hash, 'hex') ELSE idem_key END;

-- Claims a key for this request. Outcomes: claimed (go ahead, then store or release), in-progress, mismatch (the
-- actor used the key for another request), replay (with the stored answer). Keys older than 24 hours are forgotten.
CREATE FUNCTION spor_idempotency_claim(idem_key text, idem_hash bytea)
    RETURNS TABLE (outcome text, status_code integer, response_body bytea, response_content_type text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    who uuid := spor_actor();
    scoped text := spor_idempotency_scope(idem_key, idem_hash);
    existing idempotency_keys;
BEGIN
    DELETE FROM idempotency_keys k
    WHERE coalesce(k.account_id::text, '') = coalesce(who::text, '') AND k.key = scoped AND k.created_at < now() - interval '24 hours';
    INSERT INTO idempotency_keys (account_id, key, request_hash) VALUES (who, scoped, idem_hash)
    ON CONFLICT (coalesce(account_id::text, ''), key) DO NOTHING;
    IF FOUND THEN
        RETURN QUERY SELECT 'claimed', NULL::integer, NULL::bytea, NULL::text;
        RETURN;
    END IF;
    SELECT * INTO existing FROM idempotency_keys k WHERE coalesce(k.account_id::text, '') = coalesce(who::text, '') AND k.key = scoped;
    IF NOT FOUND OR existing.status_code IS NULL THEN
        IF FOUND AND existing.request_hash <> idem_hash THEN
            RETURN QUERY SELECT 'mismatch', NULL::integer, NULL::bytea, NULL::text;
        ELSE
            RETURN QUERY SELECT 'in-progress', NULL::integer, NULL::bytea, NULL::text;
        END IF;
        RETURN;
    END IF;
    IF existing.request_hash <> idem_hash THEN
        RETURN QUERY SELECT 'mismatch', NULL::integer, NULL::bytea, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'replay', existing.status_code, existing.response_body, existing.response_content_type;
END
$$;

CREATE FUNCTION spor_idempotency_store(idem_key text, idem_hash bytea, status integer, body bytea, content_type text) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE idempotency_keys SET status_code = status, response_body = body, response_content_type = content_type
    WHERE coalesce(account_id::text, '') = coalesce(spor_actor()::text, '') AND key = spor_idempotency_scope(idem_key, idem_hash)
      AND request_hash = idem_hash AND status_code IS NULL
$$;

CREATE FUNCTION spor_idempotency_release(idem_key text, idem_hash bytea) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DELETE FROM idempotency_keys
    WHERE coalesce(account_id::text, '') = coalesce(spor_actor()::text, '') AND key = spor_idempotency_scope(idem_key, idem_hash)
      AND request_hash = idem_hash AND status_code IS NULL
$$;

COMMENT ON FUNCTION spor_idempotency_claim(text, bytea) IS 'Claims an Idempotency-Key for this request (the actor''s, or for nobody scoped to the request), or answers the stored response.';
COMMENT ON FUNCTION spor_idempotency_store(text, bytea, integer, bytea, text) IS 'Keeps the answer of a claimed key.';
COMMENT ON FUNCTION spor_idempotency_release(text, bytea) IS 'Gives a claimed, unanswered key up.';
REVOKE EXECUTE ON FUNCTION spor_idempotency_scope(text, bytea), spor_idempotency_claim(text, bytea),
    spor_idempotency_store(text, bytea, integer, bytea, text), spor_idempotency_release(text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_idempotency_claim(text, bytea), spor_idempotency_store(text, bytea, integer, bytea, text),
    spor_idempotency_release(text, bytea) TO spor_app;
