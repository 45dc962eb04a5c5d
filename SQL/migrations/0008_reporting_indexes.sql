-- 0008 — indexes for the reporting views of 0007 (measured with Benchmarks/reporting/run.sh: 300,000 access
-- requests; figures in Benchmarks/reporting/RESULTS.md).
--
-- The per-organisation reports (WHERE organisation_id = …) are already served by the indexes of 0002, which lead
-- with organisation_id: access_requests_organisation, role_assignments_organisation,
-- service_desk_tickets_organisation, organisations_pkey. They run in about a millisecond and need nothing here.
-- The whole-table aggregations (role_holders, approval_activity) read most rows of their tables by nature; an
-- index would not make them cheaper than a sequential scan, so they get none.

-- reporting.request_funnel groups every access request by (UTC month of filing, role) and reads status,
-- created_at and decided_at. This index holds exactly the grouping key in group order plus those columns, so the
-- funnel is an index-only scan feeding a GroupAggregate directly: no sort of the whole table (which spilled to
-- disk at the default work_mem) and no heap access. Cost: one more index entry per insert and decision.
CREATE INDEX access_requests_funnel
    ON access_requests ((date_trunc('month', created_at AT TIME ZONE 'UTC')::date), role)
    INCLUDE (created_at, status, decided_at);
COMMENT ON INDEX access_requests_funnel IS 'reporting.request_funnel: index-only scan in (month, role) order, no sort.';
