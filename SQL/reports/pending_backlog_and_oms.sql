-- The approval backlog at a glance: pending access requests per approver kind (EMA service desk for first super
-- users, organisation super users for everything else) and age bucket, with the oldest request's age; plus the
-- OMS change requests still waiting for a data steward. Built on reporting.pending_access_requests and
-- reporting.oms_change_requests only.
SELECT 'access requests: ' || approver_kind AS queue,
       age_bucket,
       sum(requests) AS requests,
       count(DISTINCT organisation_id) AS organisations,
       max(oldest_age_hours) AS oldest_age_hours
FROM reporting.pending_access_requests
GROUP BY approver_kind, age_bucket
UNION ALL
SELECT 'oms change requests', NULL, requests, NULL, max_hours
FROM reporting.oms_change_requests
WHERE status = 'pending'
ORDER BY 1, 2;
