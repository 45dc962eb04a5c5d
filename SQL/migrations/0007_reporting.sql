-- 0007 — reporting: stable views for analysts (the public contract: column names do not change), readable by
-- the spor_reporting role and nothing else. Views run with the owner's rights, so the reporting role reads
-- them without any access to the base tables (no password hashes, tokens, security answers or letter bytes).

CREATE SCHEMA reporting;
COMMENT ON SCHEMA reporting IS 'Reporting views for analysts and BI tools; the only objects spor_reporting may read.';

-- Active super users, the building block of the first two views.
CREATE VIEW reporting.organisations_without_super_user AS
SELECT o.id AS organisation_id,
       o.name AS organisation_name,
       o.country,
       r.id AS access_request_id,
       r.created_at AS requested_at,
       now() - r.created_at AS waiting,
       round(extract(epoch FROM now() - r.created_at)::numeric / 3600, 1) AS waiting_hours
FROM organisations o
LEFT JOIN access_requests r
       ON r.organisation_id = o.id AND r.status = 'pending' AND r.role = 'spor-industry-super-user'
WHERE o.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM role_assignments g JOIN accounts a ON a.id = g.account_id
                  WHERE g.organisation_id = o.id AND g.role = 'spor-industry-super-user'
                    AND g.revoked_at IS NULL AND g.effective_from <= now() AND a.status = 'active');
COMMENT ON VIEW reporting.organisations_without_super_user IS 'Organisations with no active super user, one row per pending super-user request (or one row with NULL request columns when none is pending).';
COMMENT ON COLUMN reporting.organisations_without_super_user.organisation_id IS 'OMS organisation id (ORG-…).';
COMMENT ON COLUMN reporting.organisations_without_super_user.organisation_name IS 'Organisation name in OMS.';
COMMENT ON COLUMN reporting.organisations_without_super_user.country IS 'ISO 3166-1 alpha-2 country code.';
COMMENT ON COLUMN reporting.organisations_without_super_user.access_request_id IS 'A pending first-super-user request, or NULL.';
COMMENT ON COLUMN reporting.organisations_without_super_user.requested_at IS 'When that request was filed.';
COMMENT ON COLUMN reporting.organisations_without_super_user.waiting IS 'How long it has waited (interval).';
COMMENT ON COLUMN reporting.organisations_without_super_user.waiting_hours IS 'How long it has waited, in hours (one decimal).';

CREATE VIEW reporting.organisations_with_single_super_user AS
SELECT o.id AS organisation_id,
       o.name AS organisation_name,
       o.country,
       min(a.id::text)::uuid AS super_user_account_id,
       min(a.email) AS super_user_email,
       min(g.granted_at) AS super_user_since
FROM organisations o
JOIN role_assignments g ON g.organisation_id = o.id AND g.role = 'spor-industry-super-user'
                       AND g.revoked_at IS NULL AND g.effective_from <= now()
JOIN accounts a ON a.id = g.account_id AND a.status = 'active'
GROUP BY o.id, o.name, o.country
HAVING count(*) = 1;
COMMENT ON VIEW reporting.organisations_with_single_super_user IS 'Organisations with exactly one active super user (EMA recommends at least two).';
COMMENT ON COLUMN reporting.organisations_with_single_super_user.organisation_id IS 'OMS organisation id.';
COMMENT ON COLUMN reporting.organisations_with_single_super_user.organisation_name IS 'Organisation name in OMS.';
COMMENT ON COLUMN reporting.organisations_with_single_super_user.country IS 'ISO 3166-1 alpha-2 country code.';
COMMENT ON COLUMN reporting.organisations_with_single_super_user.super_user_account_id IS 'The only super user''s account.';
COMMENT ON COLUMN reporting.organisations_with_single_super_user.super_user_email IS 'The only super user''s e-mail.';
COMMENT ON COLUMN reporting.organisations_with_single_super_user.super_user_since IS 'When that super user was granted the role.';

CREATE VIEW reporting.pending_access_requests AS
SELECT r.organisation_id,
       r.role,
       r.approver_kind,
       CASE WHEN now() - r.created_at < interval '1 day' THEN '< 1 day'
            WHEN now() - r.created_at <= interval '7 days' THEN '1-7 days'
            ELSE '> 7 days' END AS age_bucket,
       count(*) AS requests,
       min(r.created_at) AS oldest_requested_at,
       round(extract(epoch FROM now() - min(r.created_at))::numeric / 3600, 1) AS oldest_age_hours
FROM access_requests r
WHERE r.status = 'pending'
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW reporting.pending_access_requests IS 'Pending access requests by organisation, role, approver kind and age bucket.';
COMMENT ON COLUMN reporting.pending_access_requests.organisation_id IS 'OMS organisation id (NULL never occurs: unaffiliated requests are approved at once).';
COMMENT ON COLUMN reporting.pending_access_requests.role IS 'Requested SPOR role.';
COMMENT ON COLUMN reporting.pending_access_requests.approver_kind IS 'ema-service-desk (first super user) or organisation-super-users.';
COMMENT ON COLUMN reporting.pending_access_requests.age_bucket IS '< 1 day, 1-7 days or > 7 days since filing.';
COMMENT ON COLUMN reporting.pending_access_requests.requests IS 'Number of pending requests in the group.';
COMMENT ON COLUMN reporting.pending_access_requests.oldest_requested_at IS 'Filing time of the oldest request in the group.';
COMMENT ON COLUMN reporting.pending_access_requests.oldest_age_hours IS 'Age of the oldest request in the group, in hours.';

CREATE VIEW reporting.service_desk_sla AS
SELECT t.id AS ticket_id,
       t.organisation_id,
       t.access_request_id,
       t.status,
       t.resolution,
       t.opened_at,
       t.due_at,
       t.resolved_at,
       coalesce(t.resolved_at, now()) > t.due_at AS overdue,
       round(extract(epoch FROM t.resolved_at - t.opened_at)::numeric / 3600, 1) AS hours_to_resolution
FROM service_desk_tickets t;
COMMENT ON VIEW reporting.service_desk_sla IS 'Service desk tickets against their 24-hour due time (R10).';
COMMENT ON COLUMN reporting.service_desk_sla.ticket_id IS 'Service desk ticket number.';
COMMENT ON COLUMN reporting.service_desk_sla.organisation_id IS 'Organisation of the first-super-user request.';
COMMENT ON COLUMN reporting.service_desk_sla.access_request_id IS 'The access request the ticket quotes.';
COMMENT ON COLUMN reporting.service_desk_sla.status IS 'open or resolved.';
COMMENT ON COLUMN reporting.service_desk_sla.resolution IS 'approved or rejected, when resolved.';
COMMENT ON COLUMN reporting.service_desk_sla.opened_at IS 'When the ticket was opened.';
COMMENT ON COLUMN reporting.service_desk_sla.due_at IS 'opened_at + 24 hours.';
COMMENT ON COLUMN reporting.service_desk_sla.resolved_at IS 'When it was resolved (NULL while open).';
COMMENT ON COLUMN reporting.service_desk_sla.overdue IS 'Open past its due time, or resolved after it.';
COMMENT ON COLUMN reporting.service_desk_sla.hours_to_resolution IS 'Hours from opening to resolution (NULL while open).';

CREATE VIEW reporting.role_holders AS
SELECT g.organisation_id,
       g.role,
       count(*) AS holders,
       array_agg(a.email ORDER BY a.email) AS holder_emails
FROM role_assignments g
JOIN accounts a ON a.id = g.account_id AND a.status = 'active'
WHERE g.revoked_at IS NULL AND g.effective_from <= now()
GROUP BY g.organisation_id, g.role;
COMMENT ON VIEW reporting.role_holders IS 'Active holders of each SPOR role per organisation (organisation_id NULL: the unaffiliated role).';
COMMENT ON COLUMN reporting.role_holders.organisation_id IS 'OMS organisation id, NULL for the unaffiliated role.';
COMMENT ON COLUMN reporting.role_holders.role IS 'SPOR role.';
COMMENT ON COLUMN reporting.role_holders.holders IS 'Number of active holders.';
COMMENT ON COLUMN reporting.role_holders.holder_emails IS 'Their e-mail addresses, sorted.';

CREATE VIEW reporting.approval_activity AS
SELECT (r.decided_at AT TIME ZONE 'UTC')::date AS day,
       r.organisation_id,
       r.decided_by AS approver_account_id,
       a.email AS approver_email,
       r.approver_kind,
       r.status AS outcome,
       count(*) AS decisions
FROM access_requests r
JOIN accounts a ON a.id = r.decided_by
WHERE r.status IN ('approved', 'rejected') AND r.decided_by IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
COMMENT ON VIEW reporting.approval_activity IS 'Decisions (approved, rejected) per UTC day, organisation, approver and outcome.';
COMMENT ON COLUMN reporting.approval_activity.day IS 'UTC date of the decision.';
COMMENT ON COLUMN reporting.approval_activity.organisation_id IS 'Organisation of the decided requests.';
COMMENT ON COLUMN reporting.approval_activity.approver_account_id IS 'Who decided.';
COMMENT ON COLUMN reporting.approval_activity.approver_email IS 'Their e-mail.';
COMMENT ON COLUMN reporting.approval_activity.approver_kind IS 'ema-service-desk or organisation-super-users.';
COMMENT ON COLUMN reporting.approval_activity.outcome IS 'approved or rejected.';
COMMENT ON COLUMN reporting.approval_activity.decisions IS 'Number of decisions.';

CREATE VIEW reporting.request_funnel AS
SELECT date_trunc('month', r.created_at AT TIME ZONE 'UTC')::date AS month,
       r.role,
       count(*) AS submitted,
       count(*) FILTER (WHERE r.status = 'approved') AS approved,
       count(*) FILTER (WHERE r.status = 'rejected') AS rejected,
       count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE r.status = 'expired') AS expired,
       count(*) FILTER (WHERE r.status = 'pending') AS pending,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.decided_at - r.created_at))
              FILTER (WHERE r.status IN ('approved', 'rejected')))::numeric / 3600, 1) AS median_hours_to_decision,
       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM r.decided_at - r.created_at))
              FILTER (WHERE r.status IN ('approved', 'rejected')))::numeric / 3600, 1) AS p90_hours_to_decision
FROM access_requests r
GROUP BY 1, 2;
COMMENT ON VIEW reporting.request_funnel IS 'Requests per UTC month of filing and role, by outcome, with median and 90th-percentile hours to a decision (approved or rejected).';
COMMENT ON COLUMN reporting.request_funnel.month IS 'First day of the UTC month the requests were filed in.';
COMMENT ON COLUMN reporting.request_funnel.role IS 'Requested SPOR role.';
COMMENT ON COLUMN reporting.request_funnel.submitted IS 'Requests filed.';
COMMENT ON COLUMN reporting.request_funnel.approved IS 'Of those, approved (including automatic approvals).';
COMMENT ON COLUMN reporting.request_funnel.rejected IS 'Of those, rejected.';
COMMENT ON COLUMN reporting.request_funnel.cancelled IS 'Of those, cancelled by the requester.';
COMMENT ON COLUMN reporting.request_funnel.expired IS 'Of those, expired undecided.';
COMMENT ON COLUMN reporting.request_funnel.pending IS 'Of those, still pending.';
COMMENT ON COLUMN reporting.request_funnel.median_hours_to_decision IS 'Median hours from filing to approval or rejection.';
COMMENT ON COLUMN reporting.request_funnel.p90_hours_to_decision IS '90th percentile of hours from filing to approval or rejection.';

CREATE VIEW reporting.oms_change_requests AS
SELECT c.status,
       count(*) AS requests,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.decided_at - c.created_at))
              FILTER (WHERE c.decided_at IS NOT NULL))::numeric / 3600, 1) AS median_hours_to_decision,
       round(max(extract(epoch FROM coalesce(c.decided_at, now()) - c.created_at))::numeric / 3600, 1) AS max_hours
FROM oms_change_requests c
GROUP BY c.status;
COMMENT ON VIEW reporting.oms_change_requests IS 'OMS change requests per status, with time to decision.';
COMMENT ON COLUMN reporting.oms_change_requests.status IS 'pending, approved or rejected.';
COMMENT ON COLUMN reporting.oms_change_requests.requests IS 'Number of change requests.';
COMMENT ON COLUMN reporting.oms_change_requests.median_hours_to_decision IS 'Median hours from filing to decision (NULL for pending).';
COMMENT ON COLUMN reporting.oms_change_requests.max_hours IS 'Longest time to decision, or age of the oldest pending one, in hours.';

-- The reporting role reads these views and nothing else. (The application role gets no grant: the views
-- bypass row-level security, so reading them is not for a tenant's session.)
REVOKE ALL ON SCHEMA reporting FROM PUBLIC;
GRANT USAGE ON SCHEMA reporting TO spor_reporting;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO spor_reporting;
-- The owner may act as the reporting role (the `report` command does, to read exactly what analysts read).
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'spor_reporting', 'MEMBER') THEN
        EXECUTE format('GRANT spor_reporting TO %I', current_user);
    END IF;
END
$$;
