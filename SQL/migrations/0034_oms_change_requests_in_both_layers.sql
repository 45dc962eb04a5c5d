-- 0034 — R17 in SQL as in Swift: documents required, approval creates a new organisation with the next id, and no
-- data steward decides their own change request (R12's spirit).
--
-- Before: a change request needed no document in SQL; a data steward's approval could name an organisation that
-- already existed, or one inserted with an id of the steward's choosing; and a steward could decide their own
-- request (over HTTP too). Now:
--   * at commit, a change request has at least one supporting document (r17_documents_required, deferred: the
--     documents are linked after the request row exists);
--   * an approval names an organisation created in the same transaction, with the request's name, country and city
--     (r17_decision_rules); an organisation added by the application role gets the next ORG id whatever id the
--     statement gave (r17_organisation_next_id; the owner's OMS import keeps the dictionary's ids);
--   * the requester never decides their own change request (self-approval, R12).
CREATE FUNCTION r17_documents_required() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM oms_change_request_documents d WHERE d.change_request_id = NEW.id) THEN
        PERFORM spor_refuse('R17', 'validation-failed', 'an OMS change request needs 1 to 10 supporting documents');
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION r17_documents_required() FROM PUBLIC;
CREATE CONSTRAINT TRIGGER r17_documents_required AFTER INSERT ON oms_change_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION r17_documents_required();

CREATE FUNCTION r17_decision_rules() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF OLD.status = 'pending' AND NEW.status <> 'pending' THEN
        IF NEW.decided_by = OLD.requester_id THEN
            PERFORM spor_refuse('R12', 'self-approval', 'a data steward does not decide their own change request');
        END IF;
        IF NEW.status = 'approved' AND NOT EXISTS (
            SELECT 1 FROM organisations o
            WHERE o.id = NEW.organisation_id AND o.xmin::text = (pg_current_xact_id()::text::bigint % 4294967296)::text
              AND o.name = NEW.name AND o.country = NEW.country AND o.city = NEW.city) THEN
            PERFORM spor_refuse('R17', 'validation-failed',
                'an approval creates the requested organisation, new, in the same transaction');
        END IF;
    END IF;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION r17_decision_rules() FROM PUBLIC;
CREATE TRIGGER r17_decision_rules BEFORE UPDATE ON oms_change_requests FOR EACH ROW EXECUTE FUNCTION r17_decision_rules();

-- SECURITY INVOKER on purpose: current_user is the role that wrote the row (the owner inside the definer functions
-- and the import, the application role for a direct client).
CREATE FUNCTION r17_organisation_next_id() RETURNS trigger
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF current_user <> (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = TG_RELID) THEN
        NEW.id := 'ORG-' || lpad(nextval('organisation_number_seq')::text, 9, '0');
    END IF;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION r17_organisation_next_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION r17_organisation_next_id() TO spor_app;
CREATE TRIGGER r17_organisation_next_id BEFORE INSERT ON organisations FOR EACH ROW EXECUTE FUNCTION r17_organisation_next_id();
