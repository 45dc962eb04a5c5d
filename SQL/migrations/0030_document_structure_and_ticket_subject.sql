-- 0030 — R10: a document is the type it claims by its structure, and a ticket quotes its request as a whole number.
--
-- 0002 checked only a document's first bytes, so "%PDF-" alone was an affiliation letter; and a ticket's subject
-- had only to contain the request id somewhere, so "request ID 100049" quoted request 10004. Now a PDF needs a
-- `%PDF-n.n` header and a `%%EOF` trailer in its last 1,024 bytes, a PNG an IHDR chunk first and the IEND chunk
-- last, a JPEG its EOI marker (FF D9) last — as AccessDomain's DocumentType.matches checks them — and the subject
-- must quote the id right after "request ID" as a whole number, as TicketPolicy.quotedRequestID reads it.
-- Both constraints are NOT VALID: rows stored before stay as they are; every new or changed row is checked.
ALTER TABLE documents ADD CONSTRAINT r10_content_structure CHECK (
    (content_type = 'application/pdf'
        AND octet_length(bytes) >= 13
        AND get_byte(bytes, 5) BETWEEN 48 AND 57 AND get_byte(bytes, 6) = 46 AND get_byte(bytes, 7) BETWEEN 48 AND 57
        AND position('\x2525454f46'::bytea IN substring(bytes FROM greatest(octet_length(bytes) - 1023, 1))) > 0)
    OR (content_type = 'image/png'
        AND octet_length(bytes) >= 45
        AND substring(bytes FROM 13 FOR 4) = '\x49484452'::bytea
        AND substring(bytes FROM octet_length(bytes) - 11) = '\x0000000049454e44ae426082'::bytea)
    OR (content_type = 'image/jpeg'
        AND octet_length(bytes) >= 5
        AND substring(bytes FROM octet_length(bytes) - 1) = '\xffd9'::bytea)
) NOT VALID;

ALTER TABLE service_desk_tickets DROP CONSTRAINT r10_subject_quotes_the_request;
ALTER TABLE service_desk_tickets ADD CONSTRAINT r10_subject_quotes_the_request
    CHECK (subject ~* ('request id[^0-9]*' || access_request_id || '([^0-9]|$)')) NOT VALID;
