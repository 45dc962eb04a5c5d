-- 0001 — database roles (DESIGN.md, "PostgreSQL roles").
--
-- The role running this migration is the owner: it owns every table, view, function and trigger.
-- spor_app is the service's role: it owns nothing, so row-level security applies to it and it cannot
-- alter or drop the rule triggers. spor_reporting reads the reporting views only.
-- Roles are cluster-wide, so they are created only when missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'spor_app') THEN
        CREATE ROLE spor_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'spor_reporting') THEN
        CREATE ROLE spor_reporting NOLOGIN;
    END IF;
    -- The owner may act as spor_app inside a transaction (SET LOCAL ROLE) when the service has no login of its own.
    IF NOT pg_has_role(current_user, 'spor_app', 'MEMBER') THEN
        EXECUTE format('GRANT spor_app TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO spor_app;
-- The readiness check compares applied migrations with the files the service ships.
GRANT SELECT ON schema_migrations TO spor_app;

COMMENT ON TABLE schema_migrations IS 'Applied migrations: version, file name, SHA-256 of the file, when applied. Written by the migration runner only.';
