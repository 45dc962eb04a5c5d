-- 0045 — the reports of issue 12 over HTTP too: reminder_history, role_grants (R21), access_review_completion and
-- access_review_items (R22) join spor_report (0011), with the same R13: staff read them whole, a super user only for
-- an organisation where they are one. Each is per organisation; the time filter reads sent_at, granted_at and
-- opened_at (the review items have none).
CREATE OR REPLACE FUNCTION spor_report(report text, organisation text, from_time timestamptz, to_time timestamptz,
                            page_limit integer, page_offset integer) RETURNS json
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor uuid := spor_actor();
    per_organisation boolean := report NOT IN ('request_funnel', 'oms_change_requests');
    time_column text;
    order_by text;
    columns text[];
    cells text;
    result json;
BEGIN
    order_by := CASE report
        WHEN 'organisations_without_super_user' THEN 'organisation_id, requested_at NULLS LAST, access_request_id'
        WHEN 'organisations_with_single_super_user' THEN 'organisation_id'
        WHEN 'pending_access_requests' THEN 'organisation_id, role, approver_kind, age_bucket'
        WHEN 'service_desk_sla' THEN 'opened_at, ticket_id'
        WHEN 'role_holders' THEN 'organisation_id NULLS FIRST, role'
        WHEN 'approval_activity' THEN 'day, organisation_id, approver_email, outcome'
        WHEN 'request_funnel' THEN 'month, role'
        WHEN 'oms_change_requests' THEN 'status'
        WHEN 'reminder_history' THEN 'sent_at, kind, subject_type, subject_id, days_before NULLS FIRST'
        WHEN 'role_grants' THEN 'organisation_id NULLS FIRST, assignment_id'
        WHEN 'access_review_completion' THEN 'organisation_id, opened_at, review_id'
        WHEN 'access_review_items' THEN 'organisation_id, review_id, item_id'
    END;
    time_column := CASE report
        WHEN 'organisations_without_super_user' THEN 'requested_at'
        WHEN 'pending_access_requests' THEN 'oldest_requested_at'
        WHEN 'service_desk_sla' THEN 'opened_at'
        WHEN 'approval_activity' THEN 'day'
        WHEN 'request_funnel' THEN 'month'
        WHEN 'reminder_history' THEN 'sent_at'
        WHEN 'role_grants' THEN 'granted_at'
        WHEN 'access_review_completion' THEN 'opened_at'
    END;
    IF order_by IS NULL OR actor IS NULL THEN
        PERFORM spor_refuse('R13', 'not-found', 'there is no report ' || coalesce(report, ''));
    END IF;
    IF NOT spor_actor_is_staff() THEN
        IF NOT per_organisation OR organisation IS NULL OR NOT spor_is_active_super_user(actor, organisation) THEN
            PERFORM spor_refuse('R13', 'not-found', 'there is no report ' || report || ' for you here');
        END IF;
    END IF;
    SELECT array_agg(attname::text ORDER BY attnum) INTO columns
    FROM pg_attribute WHERE attrelid = format('reporting.%I', report)::regclass AND attnum > 0 AND NOT attisdropped;
    SELECT string_agg(format('v.%I', c), ', ') INTO cells FROM unnest(columns) AS c;
    EXECUTE format(
        'SELECT json_build_object(''columns'', to_json($6::text[]), ''rows'', coalesce(json_agg(json_build_array(%s) ORDER BY %s), ''[]''::json))
         FROM (SELECT * FROM reporting.%I v
               WHERE ($1::text IS NULL OR %s)
                 AND ($2::timestamptz IS NULL OR %s) AND ($3::timestamptz IS NULL OR %s)
               ORDER BY %s LIMIT $4 OFFSET $5) v',
        cells, order_by, report,
        CASE WHEN per_organisation THEN 'v.organisation_id = $1' ELSE 'true' END,
        CASE WHEN time_column IS NULL THEN 'true' ELSE format('v.%I >= $2', time_column) END,
        CASE WHEN time_column IS NULL THEN 'true' ELSE format('v.%I < $3', time_column) END,
        order_by)
    INTO result
    USING organisation, from_time, to_time, page_limit, page_offset, columns;
    RETURN result;
END
$$;
