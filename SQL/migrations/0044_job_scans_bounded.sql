-- 0044 — R21, R22: the jobs read only what may be due, not every organisation or every time-bound grant.
--
-- spor_open_due_reviews (0042) walked every active organisation each minute — OMS holds hundreds of thousands, few
-- with members — and spor_send_grant_notices (0041) every active time-bound grant, however far its end. Now the
-- reviews job starts from the organisations that hold active roles (one pass over the active assignments), and the
-- notices job reads, through r21_grants_ending, only grants ending within the largest notice threshold. What each
-- does for one organisation or one grant moves into a function of its own, unchanged.

-- R22: opens one organisation's review of its active roles (the caller found it due). Owner only.
CREATE FUNCTION spor_open_review(organisation text, clock timestamptz, period interval) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    review bigint;
    members integer;
BEGIN
    INSERT INTO access_reviews (organisation_id, opened_at, due_at) VALUES (organisation, clock, clock + period)
    ON CONFLICT (organisation_id) WHERE closed_at IS NULL DO NOTHING
    RETURNING id INTO review;
    IF review IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO access_review_items (review_id, organisation_id, assignment_id, account_id, role)
    SELECT review, g.organisation_id, g.id, g.account_id, g.role FROM role_assignments g
    WHERE g.organisation_id = organisation AND g.revoked_at IS NULL AND (g.ends_at IS NULL OR g.ends_at > clock)
    ORDER BY g.id;
    GET DIAGNOSTICS members = ROW_COUNT;
    PERFORM spor_audit(NULL, organisation, 'access-review.opened', 'access_review', review::text, NULL,
        jsonb_build_object('items', members, 'dueAt', clock + period));
    PERFORM spor_queue_to_super_users(organisation, 'review-opened',
        'Access review ' || review || ' of ' || organisation || ': certify your organisation''s roles',
        'Access review ' || review || ' of ' || organisation || ' lists ' || members || ' active role(s). Certify the ones that are '
            || 'still needed and revoke the others by ' || to_char((clock + period) AT TIME ZONE 'UTC', 'YYYY-MM-DD')
            || '. Your own role is decided by another super user, or by the EMA service desk if you are the only one.',
        'access_review', review::text);
    IF spor_active_super_user_count(organisation) <= 1 THEN
        PERFORM spor_queue_to_service_desk(organisation, 'review-opened',
            'Access review ' || review || ' of ' || organisation || ': the only super user''s role is yours to decide',
            organisation || ' has at most one super user, so the EMA service desk certifies or revokes that super user''s role in access review '
                || review || ', due ' || to_char((clock + period) AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '.',
            'access_review', review::text);
    END IF;
    RETURN true;
END
$$;
REVOKE EXECUTE ON FUNCTION spor_open_review(text, timestamptz, interval) FROM PUBLIC;
COMMENT ON FUNCTION spor_open_review(text, timestamptz, interval) IS 'R22: opens an access review of the organisation''s active roles, audited and told (false when one is open already). Owner only.';

CREATE OR REPLACE FUNCTION spor_open_due_reviews(batch integer DEFAULT 100) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    clock timestamptz := spor_job_now();
    months integer;
    period interval;
    o record;
    opened integer := 0;
BEGIN
    SELECT s.review_interval_months, s.review_period INTO months, period FROM settings s;
    FOR o IN SELECT held.organisation_id
             FROM (SELECT g.organisation_id, min(g.granted_at) AS oldest FROM role_assignments g
                   WHERE g.organisation_id IS NOT NULL AND g.revoked_at IS NULL AND (g.ends_at IS NULL OR g.ends_at > clock)
                   GROUP BY g.organisation_id) held
             JOIN organisations org ON org.id = held.organisation_id AND org.status = 'active'
             LEFT JOIN LATERAL (SELECT max(r.opened_at) AS last_opened, bool_or(r.closed_at IS NULL) AS open
                                FROM access_reviews r WHERE r.organisation_id = held.organisation_id) past ON true
             WHERE NOT coalesce(past.open, false)
               AND coalesce(past.last_opened, held.oldest) + make_interval(months => months) <= clock
             ORDER BY held.organisation_id LIMIT batch LOOP
        IF spor_open_review(o.organisation_id, clock, period) THEN
            opened := opened + 1;
        END IF;
    END LOOP;
    RETURN opened;
END
$$;

-- R21: the notice that one grant ends in about `days` days (the caller found it due and recorded it). Owner only.
CREATE FUNCTION spor_send_grant_notice(g role_assignments) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ending text := to_char(g.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
    day text := to_char(g.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD');
    outlasting integer;
BEGIN
    PERFORM spor_queue_to_account(g.account_id, g.organisation_id, 'grant-ending',
        'Your role ' || g.role || ' in ' || g.organisation_id || ' ends on ' || day,
        'Your role ' || g.role || ' in ' || g.organisation_id || ' was granted until ' || ending
            || '. To keep it, file a new access request for it before then; your super users decide it.',
        'role_assignment', g.id::text);
    PERFORM spor_queue_to_super_users(g.organisation_id, 'grant-ending',
        'A role in ' || g.organisation_id || ' ends on ' || day,
        'The role ' || g.role || ' of role assignment ' || g.id || ' in ' || g.organisation_id || ' ends on ' || ending
            || '. Its holder has been told; a renewal comes to you as a new access request.',
        'role_assignment', g.id::text);
    IF g.role = 'spor-industry-super-user' THEN
        SELECT count(*) INTO outlasting FROM role_assignments o JOIN accounts a ON a.id = o.account_id
        WHERE o.organisation_id = g.organisation_id AND o.role = 'spor-industry-super-user' AND o.id <> g.id
          AND o.revoked_at IS NULL AND (o.ends_at IS NULL OR o.ends_at > g.ends_at) AND a.status = 'active';
        IF outlasting = 0 THEN
            PERFORM spor_queue_to_service_desk(g.organisation_id, 'grant-ending',
                g.organisation_id || ' will have no super user from ' || day,
                'The super user role of ' || g.organisation_id || ' (role assignment ' || g.id || ') ends on ' || ending
                    || ', and no other super user''s role outlasts it. Unless it is renewed, the organisation''s next'
                    || ' super user request is a first one, decided by the EMA service desk.',
                'role_assignment', g.id::text);
        END IF;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION spor_send_grant_notice(role_assignments) FROM PUBLIC;
COMMENT ON FUNCTION spor_send_grant_notice(role_assignments) IS 'R21: tells a grant''s holder and its organisation''s super users (and the service desk for a last super user) that it ends soon. Owner only.';

CREATE OR REPLACE FUNCTION spor_send_grant_notices(batch integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    clock timestamptz := spor_job_now();
    thresholds integer[];
    horizon timestamptz;
    sent integer := 0;
    g record;
    fresh boolean;
BEGIN
    SELECT s.grant_notice_days INTO thresholds FROM settings s;
    horizon := clock + make_interval(days => (SELECT coalesce(max(t), 0) FROM unnest(thresholds) t));
    -- For each active grant ending within the horizon, the smallest threshold whose window has begun; sent unless a
    -- notice at that threshold or a smaller one was (a grant made 5 days before its end gets the 14-day notice at
    -- once, then the 3-day one).
    FOR g IN SELECT x.*, d.days
             FROM role_assignments x
             CROSS JOIN LATERAL (SELECT min(t) AS days FROM unnest(thresholds) t
                                 WHERE x.ends_at - make_interval(days => t) <= clock) d
             JOIN accounts a ON a.id = x.account_id AND a.status = 'active'
             WHERE x.revoked_at IS NULL AND x.ends_at IS NOT NULL AND x.ends_at > clock AND x.ends_at <= horizon
               AND d.days IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM grant_notices n WHERE n.assignment_id = x.id AND n.days_before <= d.days)
             ORDER BY x.ends_at, x.id LIMIT batch LOOP
        fresh := NULL;
        INSERT INTO grant_notices (assignment_id, days_before, organisation_id) VALUES (g.id, g.days, g.organisation_id)
        ON CONFLICT DO NOTHING RETURNING true INTO fresh;
        CONTINUE WHEN NOT coalesce(fresh, false);
        PERFORM spor_send_grant_notice((SELECT x FROM role_assignments x WHERE x.id = g.id));
        sent := sent + 1;
    END LOOP;
    RETURN sent;
END
$$;
