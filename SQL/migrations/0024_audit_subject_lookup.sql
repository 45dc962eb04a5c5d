-- 0024 — cheaper audit attribution and shared locks.
--
-- Measured with Benchmarks/api/load.sh --top-statements (pg_stat_statements, track = all): each INSERT INTO
-- audit_events inside the command functions cost about 1.1 ms, three per request+approve pair, growing with the
-- tables. 0015's spor_subject_organisation compared `id::text = subject_id`, which no index serves: every audit
-- event scanned access_requests or role_assignments whole. It now casts the subject id once and reads the primary key.
CREATE OR REPLACE FUNCTION spor_subject_organisation(subject_type text, subject_id text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    key bigint;
    found text;
BEGIN
    IF subject_type = 'organisation' THEN
        RETURN subject_id;
    END IF;
    IF subject_type NOT IN ('access_request', 'role_assignment', 'service_desk_ticket', 'oms_change_request')
       OR subject_id !~ '^[0-9]{1,18}$' THEN
        RETURN NULL;
    END IF;
    key := subject_id::bigint;
    CASE subject_type
        WHEN 'access_request' THEN SELECT organisation_id INTO found FROM access_requests WHERE id = key;
        WHEN 'role_assignment' THEN SELECT organisation_id INTO found FROM role_assignments WHERE id = key;
        WHEN 'service_desk_ticket' THEN SELECT organisation_id INTO found FROM service_desk_tickets WHERE id = key;
        ELSE SELECT organisation_id INTO found FROM oms_change_requests WHERE id = key;
    END CASE;
    RETURN found;
END
$$;
COMMENT ON FUNCTION spor_subject_organisation(text, text) IS 'R15/R13: the organisation an audit event about this subject belongs to (primary-key read). Owner only.';
REVOKE EXECUTE ON FUNCTION spor_subject_organisation(text, text) FROM PUBLIC;

-- The shared mode of the organisation lock is FOR KEY SHARE: it conflicts with FOR UPDATE (a change of the
-- super-user set) and with nothing else, and it is the mode the foreign-key checks of the same commands take on
-- that row anyway, so a command adds no second lock mode (and no larger multixact) to a row many commands share.
CREATE OR REPLACE FUNCTION spor_lock_organisation_for(organisation text, changes_super_users boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF organisation IS NULL THEN
        RETURN;
    END IF;
    IF changes_super_users THEN
        PERFORM 1 FROM organisations WHERE id = organisation FOR UPDATE;
    ELSE
        PERFORM 1 FROM organisations WHERE id = organisation FOR KEY SHARE;
    END IF;
END
$$;
