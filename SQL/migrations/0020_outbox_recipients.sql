-- 0020 — R16: the application role queues messages only to accounts, at their own address, for an actor.
--
-- 0005 let spor_app insert any outbox row (WITH CHECK (true)): any text to any address, with nobody acting. Now a
-- row names its recipient account, goes to that account's own e-mail address, and is written by an authenticated
-- actor. (Which template and text a change sends is still the store's choice; the rules' SQL does not write the
-- messages itself yet.)
CREATE FUNCTION spor_is_account_email(account uuid, address text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    RETURN EXISTS (SELECT 1 FROM accounts a WHERE a.id = account AND a.email = address);
COMMENT ON FUNCTION spor_is_account_email(uuid, text) IS 'R16: whether the address is the account''s own (yes or no, nothing else).';
REVOKE EXECUTE ON FUNCTION spor_is_account_email(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_is_account_email(uuid, text) TO spor_app;

DROP POLICY r16_outbox_insert ON notification_outbox;
CREATE POLICY r16_outbox_insert ON notification_outbox FOR INSERT TO spor_app
    WITH CHECK ((SELECT spor_actor()) IS NOT NULL AND recipient_account_id IS NOT NULL
                AND spor_is_account_email(recipient_account_id, recipient_email));
