-- Weekly service desk SLA: per ISO week (UTC, Monday) in which first-super-user tickets were opened, how many were
-- opened, resolved and late (open past their 24-hour due time, or resolved after it), the breach rate, and the
-- median and 90th-percentile hours to resolution. Built on reporting.service_desk_sla only.
SELECT date_trunc('week', opened_at AT TIME ZONE 'UTC')::date AS week,
       count(*) AS tickets,
       count(*) FILTER (WHERE status = 'resolved') AS resolved,
       count(*) FILTER (WHERE status = 'open') AS still_open,
       count(*) FILTER (WHERE overdue IS TRUE) AS breached,
       round(100.0 * count(*) FILTER (WHERE overdue IS TRUE) / count(*), 1) AS breach_rate_pct,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY hours_to_resolution) AS median_hours_to_resolution,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY hours_to_resolution) AS p90_hours_to_resolution
FROM reporting.service_desk_sla
GROUP BY 1
ORDER BY 1 DESC;
