-- 0013 — spor_verification_account (0005) only looked a token up; verification is done whole by
-- spor_verify_account (0010), and nothing calls the look-up any more.
DROP FUNCTION spor_verification_account(bytea);
