-- Funnel conversion per role: of all requests filed for each SPOR role, the share approved, rejected, cancelled,
-- expired and still pending, and the conversion rate among requests that reached an end state. The decision time
-- is the submission-weighted mean of the monthly medians (a rough guide; see request_funnel for monthly figures).
-- Built on reporting.request_funnel only.
SELECT role,
       sum(submitted) AS submitted,
       sum(approved) AS approved,
       sum(rejected) AS rejected,
       sum(cancelled) AS cancelled,
       sum(expired) AS expired,
       sum(pending) AS pending,
       round(100.0 * sum(approved) / nullif(sum(submitted) - sum(pending), 0), 1) AS conversion_pct,
       round(100.0 * sum(expired) / nullif(sum(submitted) - sum(pending), 0), 1) AS expiry_pct,
       round(sum(median_hours_to_decision * (approved + rejected)) / nullif(sum(approved + rejected)
             FILTER (WHERE median_hours_to_decision IS NOT NULL), 0), 1) AS weighted_median_hours_to_decision
FROM reporting.request_funnel
GROUP BY role
ORDER BY role;
