-- Which organisations have waited longest for their first super user? Organisations with no active super user and
-- at least one pending first-super-user request, the oldest request first, with how many requests are pending, how
-- many of them have a service desk ticket and whether one of those tickets is overdue.
-- Built on reporting.organisations_without_super_user and reporting.service_desk_sla only.
SELECT w.organisation_id,
       w.organisation_name,
       w.country,
       count(*) AS pending_requests,
       min(w.requested_at) AS first_requested_at,
       max(w.waiting_hours) AS waiting_hours,
       round(max(w.waiting_hours) / 24, 1) AS waiting_days,
       count(t.ticket_id) AS open_tickets,
       coalesce(bool_or(t.overdue), false) AS ticket_overdue
FROM reporting.organisations_without_super_user w
LEFT JOIN reporting.service_desk_sla t ON t.access_request_id = w.access_request_id AND t.status = 'open'
WHERE w.access_request_id IS NOT NULL
GROUP BY w.organisation_id, w.organisation_name, w.country
ORDER BY first_requested_at, w.organisation_id
LIMIT 50;
