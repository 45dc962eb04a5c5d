-- 0054 — the last three PL/pgSQL trigger functions without a pinned search_path get one.
--
-- r15_audit_insert (0004, replaced by 0053) runs with the rights and the search_path of whoever inserts an audit
-- event, spor_app included, and calls spor_written_by_owner(), spor_actor() and spor_refuse() by unqualified name;
-- r15_audit_append_only and r18_no_delete (0004) only refuse. Pinning the path means no caller's path can resolve
-- those names elsewhere. Every SECURITY DEFINER and every trigger function in PL/pgSQL now pins it
-- (IdentityAttackTests checks). spor_written_by_owner() (0053) stays unpinned on purpose: it is a one-expression SQL
-- function inlined into the triggers' WHEN clauses (a SET clause would stop the inlining), it names no object, and it
-- is not SECURITY DEFINER.
ALTER FUNCTION r15_audit_insert() SET search_path = public, pg_temp;
ALTER FUNCTION r15_audit_append_only() SET search_path = public, pg_temp;
ALTER FUNCTION r18_no_delete() SET search_path = public, pg_temp;
