-- 0036 — R16: one message per change, template and recipient in a transaction.
--
-- spor_notify (0027) writes the message a change of the calling transaction needs; called again and again in that
-- transaction it wrote the message again and again, so a client holding the spor_app login could flood an
-- organisation's super users from one filed request. Now a second identical message (same subject, template and
-- recipient, same transaction) is not written, whoever writes it: the commands never write one twice, and a
-- repeated spor_notify queues nothing more.
CREATE FUNCTION r16_one_message_each() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM notification_outbox o
               WHERE o.subject_type = NEW.subject_type AND o.subject_id = NEW.subject_id
                 AND o.transaction_id = NEW.transaction_id AND o.template = NEW.template
                 AND o.recipient_account_id IS NOT DISTINCT FROM NEW.recipient_account_id
                 AND o.recipient_email = NEW.recipient_email) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION r16_one_message_each() IS 'R16: a message identical to one already queued in this transaction (subject, template, recipient) is not queued again.';
REVOKE EXECUTE ON FUNCTION r16_one_message_each() FROM PUBLIC;
CREATE TRIGGER r16_one_message_each BEFORE INSERT ON notification_outbox FOR EACH ROW EXECUTE FUNCTION r16_one_message_each();
