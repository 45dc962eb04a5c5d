-- 0022 — the main reads in one statement each, and account reads whose cost does not grow with the tenant.
--
-- Track my requests, an organisation's request list and the OMS search were each a transaction of four round
-- trips (BEGIN, role and token, the query, COMMIT). Now each is one call: the functions authenticate the token
-- (where there is one) and apply R13 themselves, since as SECURITY DEFINER functions row-level security does not
-- narrow what they read. PL/pgSQL keeps their plans for the session.

-- Track my requests: the actor's own requests, newest first, before `before` (keyset paging by id).
CREATE FUNCTION spor_my_requests(token text, before bigint, page_limit integer) RETURNS SETOF access_requests
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
BEGIN
    RETURN QUERY
    SELECT * FROM access_requests r
    WHERE r.requester_id = actor AND (before IS NULL OR r.id < before)
    ORDER BY r.id DESC LIMIT page_limit;
END
$$;
COMMENT ON FUNCTION spor_my_requests(text, bigint, integer) IS 'R13: the requests of the account of the token, newest first (keyset paging by id).';

-- An organisation's requests, for its active super users and for staff; anyone else: not-found (R13).
CREATE FUNCTION spor_organisation_requests(token text, organisation text, wanted_status text, before bigint, page_limit integer)
    RETURNS SETOF access_requests
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_authenticate(token);
BEGIN
    IF NOT (spor_actor_is_staff() OR spor_is_active_super_user(actor, organisation)) THEN
        PERFORM spor_refuse('R13', 'not-found', 'Organisation ' || organisation || ' has nothing for you here.');
    END IF;
    IF wanted_status IS NULL THEN
        RETURN QUERY
        SELECT * FROM access_requests r
        WHERE r.organisation_id = organisation AND (before IS NULL OR r.id < before)
        ORDER BY r.id DESC LIMIT page_limit;
    ELSE
        RETURN QUERY
        SELECT * FROM access_requests r
        WHERE r.organisation_id = organisation AND r.status = wanted_status AND (before IS NULL OR r.id < before)
        ORDER BY r.id DESC LIMIT page_limit;
    END IF;
END
$$;
COMMENT ON FUNCTION spor_organisation_requests(text, text, text, bigint, integer) IS 'R13: an organisation''s requests (optionally of one status), newest first, for its super users and staff; not-found for anyone else.';
-- The list is read newest first per organisation (and status): one index serves both forms.
CREATE INDEX access_requests_organisation_id ON access_requests (organisation_id, id DESC);
CREATE INDEX access_requests_organisation_status_id ON access_requests (organisation_id, status, id DESC);

-- OMS search (R1, public): trigram similarity on the folded name, best match first; every organisation when the
-- query is empty. Two statements so that each keeps a plan that fits it.
CREATE FUNCTION spor_search_organisations(search text, wanted_country text, page_limit integer, page_offset integer)
    RETURNS TABLE (id text, name text, country text, city text, status text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    folded text := spor_fold(btrim(coalesce(search, '')));
BEGIN
    IF folded = '' THEN
        RETURN QUERY
        SELECT o.id, o.name, o.country, o.city, o.status FROM organisations o
        WHERE wanted_country IS NULL OR o.country = wanted_country
        ORDER BY o.id LIMIT page_limit OFFSET page_offset;
    ELSE
        RETURN QUERY
        SELECT o.id, o.name, o.country, o.city, o.status FROM organisations o
        WHERE (spor_fold(o.name) % folded OR spor_fold(o.name) LIKE '%' || folded || '%')
          AND (wanted_country IS NULL OR o.country = wanted_country)
        ORDER BY similarity(spor_fold(o.name), folded) DESC, o.id LIMIT page_limit OFFSET page_offset;
    END IF;
END
$$;
COMMENT ON FUNCTION spor_search_organisations(text, text, integer, integer) IS 'R1: OMS search by folded-name trigram similarity (or every organisation), best match first.';

-- R13 for accounts without a scan of the tenant: 0005's policy built the set of every account of the actor's
-- organisations for each statement, so a super user's primary-key read of one account cost as much as the
-- organisation was large. Correlated EXISTS probes the assignment and request of that one account instead
-- (role_assignments_account and access_requests_requester are the indexes).
DROP POLICY r13_accounts_read ON accounts;
CREATE POLICY r13_accounts_read ON accounts FOR SELECT TO spor_app USING (
    id = (SELECT spor_actor())
    OR (SELECT spor_actor_is_staff())
    OR EXISTS (SELECT 1 FROM role_assignments g
               WHERE g.account_id = accounts.id
                 AND g.organisation_id = ANY ((SELECT array_agg(o) FROM spor_actor_super_user_organisations() o)::text[]))
    OR EXISTS (SELECT 1 FROM access_requests q
               WHERE q.requester_id = accounts.id
                 AND q.organisation_id = ANY ((SELECT array_agg(o) FROM spor_actor_super_user_organisations() o)::text[])));
CREATE INDEX role_assignments_account_all ON role_assignments (account_id, organisation_id);

REVOKE EXECUTE ON FUNCTION spor_my_requests(text, bigint, integer),
    spor_organisation_requests(text, text, text, bigint, integer),
    spor_search_organisations(text, text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_my_requests(text, bigint, integer),
    spor_organisation_requests(text, text, text, bigint, integer),
    spor_search_organisations(text, text, integer, integer) TO spor_app;
