-- R13: an organisation's super users and their e-mails are not for every signed-in account.
--
-- spor_super_user_recipients(organisation) (0006, rewritten by 0016) was granted to spor_app so that the service
-- could fan out "request filed" messages; since the command functions (0021) queue those messages themselves
-- (spor_queue_to_super_users, owner only), nothing calls it. Its only condition was that somebody is acting, so any
-- account holding a session (a self-registered applicant with no role anywhere) could list, over a direct spor_app
-- connection, every organisation's super users with their e-mail addresses. Dropped; IdentityAttackTests has the
-- attack (as nobody and as an unaffiliated applicant).
DROP FUNCTION IF EXISTS spor_super_user_recipients(text);
