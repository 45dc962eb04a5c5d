-- 0009 — EXECUTE on SPOR Access's functions is granted, never public.
--
-- PostgreSQL lets every role execute a new function unless told otherwise. The SECURITY DEFINER functions run
-- with the owner's rights (sign-in lookups return password hashes, the outbox functions mark deliveries), so
-- only the application role may call them; the reporting role gets none. Trigger functions need no grant
-- (PostgreSQL does not check EXECUTE when a trigger fires). Extension functions (pg_trgm, unaccent) are left
-- as their extensions made them.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- What the application role calls: directly (the store), in row-level security policies (which run with the
-- caller's rights), and from the trigger functions that are not SECURITY DEFINER.
GRANT EXECUTE ON FUNCTION
    spor_fold(text),
    spor_actor(),
    spor_refuse(text, text, text),
    spor_has_staff_role(uuid, text),
    spor_actor_is_staff(),
    spor_is_active_super_user(uuid, text),
    spor_active_super_user_count(text),
    spor_actor_super_user_organisations(),
    spor_lock_organisation(text),
    spor_login_candidate(text),
    spor_account_for_email(text),
    spor_verification_account(bytea),
    spor_session_account(bytea),
    spor_expire_due_requests(integer),
    spor_claim_notifications(integer),
    spor_mark_notification(bigint, text),
    spor_super_user_recipients(text)
TO spor_app;
