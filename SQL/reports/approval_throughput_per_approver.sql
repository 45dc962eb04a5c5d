-- Approval throughput per approver: for each super user (and service desk agent) and UTC month, how many access
-- requests they approved and rejected, on how many days they decided anything, in how many organisations, and
-- their approval rate. Built on reporting.approval_activity only.
SELECT date_trunc('month', day)::date AS month,
       approver_email,
       approver_kind,
       count(DISTINCT organisation_id) AS organisations,
       count(DISTINCT day) AS active_days,
       sum(decisions) FILTER (WHERE outcome = 'approved') AS approved,
       sum(decisions) FILTER (WHERE outcome = 'rejected') AS rejected,
       sum(decisions) AS decisions,
       round(100.0 * coalesce(sum(decisions) FILTER (WHERE outcome = 'approved'), 0) / sum(decisions), 1) AS approval_rate_pct
FROM reporting.approval_activity
GROUP BY 1, 2, 3
ORDER BY 1 DESC, decisions DESC, approver_email;
