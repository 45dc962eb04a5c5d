-- 0031 — R13 for analysts: the reporting views are security barriers.
--
-- An analyst (a member of spor_reporting) could write a cheap function of their own in pg_temp and put it in the
-- WHERE clause of a query on a reporting view; the planner pushed it below the view's own joins and filters, so
-- the function saw the underlying rows the view leaves out (every account's e-mail, say). With security_barrier the
-- view's own conditions are applied first, and only leakproof operators (equality and comparisons on ids and times,
-- which is what the per-organisation and time-range filters use) are pushed into it, so indexes still serve them.
-- A test checks that every view of the schema is a barrier, so a view added later cannot forget it.
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'reporting' AND c.relkind = 'v' ORDER BY c.relname LOOP
        EXECUTE format('ALTER VIEW reporting.%I SET (security_barrier = true)', v.relname);
    END LOOP;
END
$$;
