-- 0047 — R1: the OMS search by the words of a name, with bounded work whatever the dictionary's size.
--
-- 0022's search ranked every name that was trigram-similar to the query or contained it: over 1,000,000
-- organisations a common word ("vega", in a twentieth of the names) made it compute the similarity of 50,000
-- candidates for every page (p95 1.4 s). The search now matches words:
--
--   * the query is folded (case, accents) and split into words (the first eight distinct ones count);
--   * a query word stands for the dictionary words it begins (at most 50, in alphabetical order), or, when it
--     begins none, for the three nearest spellings (trigram similarity ≥ 0.3: "baltc" finds "baltic");
--   * a name matches when each query word stands for one of its words;
--   * best match first means the shortest matching name first (the fewest characters beyond what was typed),
--     then the lowest ORG id: a total order, so pages never overlap or skip;
--   * a query that is an Organisation ID (ORG- and nine digits) finds that organisation.
--
-- How it stays bounded, whatever the dictionary holds:
--   * organisation_name_words keeps, for every word, its organisations in rank order (word, name length, id): one
--     index range gives a word's best names first;
--   * organisation_name_vocabulary counts each word's names (which query word is rarest) and has the trigram
--     index for misspellings; organisation_name_pairs counts the names that hold each pair of words, and the GIN
--     index on organisations.name_pairs finds them: two common words that never meet ("nordic gen", each in 5 %
--     of the names) are known to match nothing from their count, without intersecting 50,000 names with 50,000;
--   * dense matches: the rarest query word's names are read in rank order and checked against the other words
--     and the country, as many as the pair count says should hold two pages (at least 300); the matches among
--     that prefix are the best ones;
--   * sparse matches (a pair count under four times that many): the names holding the rarest pair of query words
--     come from the pair index, are checked against the other words and ranked whole.
--
-- Who may touch it: name_words is derived from the public name, so it is readable like the name (R1). The two
-- search tables belong to the owner: spor_app has no privilege on them (it could otherwise reorder or hide
-- search results); they are written only by the trigger below, which runs as the owner. The helpers are not
-- executable by anyone but the owner; spor_search_organisations (SECURITY DEFINER) is the way in.

CREATE FUNCTION spor_name_words(name text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN ARRAY(SELECT DISTINCT w FROM regexp_split_to_table(spor_fold(name), '[^[:alnum:]]+') w WHERE w <> '' ORDER BY 1);
COMMENT ON FUNCTION spor_name_words(text) IS 'R1: the distinct folded words of a name, as the OMS search matches them.';

-- Every pair of distinct words of a name, as 'a b' with a < b (words hold no spaces).
CREATE FUNCTION spor_name_pairs(words text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN ARRAY(SELECT a || ' ' || b FROM unnest(words) a, unnest(words) b WHERE a < b ORDER BY 1);
COMMENT ON FUNCTION spor_name_pairs(text[]) IS 'R1: the pairs of distinct words of a name (OMS search: two words that never meet match nothing).';

ALTER TABLE organisations ADD COLUMN name_words text[] GENERATED ALWAYS AS (spor_name_words(name)) STORED,
    ADD COLUMN name_pairs text[] GENERATED ALWAYS AS (spor_name_pairs(spor_name_words(name))) STORED;
CREATE INDEX organisations_name_words ON organisations USING gin (name_words);
CREATE INDEX organisations_name_pairs ON organisations USING gin (name_pairs);
CREATE INDEX organisations_search_rank ON organisations (length(name), id);
DROP INDEX organisations_name_search;

CREATE TABLE organisation_name_words (
    word text COLLATE "C" NOT NULL,
    name_length integer NOT NULL,
    organisation_id text NOT NULL REFERENCES organisations (id),
    PRIMARY KEY (word, name_length, organisation_id)
);
COMMENT ON TABLE organisation_name_words IS 'R1: every word of every organisation name with its organisations in search rank order (shortest name, then id).';

CREATE TABLE organisation_name_vocabulary (
    word text COLLATE "C" PRIMARY KEY,
    organisations integer NOT NULL DEFAULT 0 CHECK (organisations >= 0)
);
CREATE INDEX organisation_name_vocabulary_spelling ON organisation_name_vocabulary USING gin (word gin_trgm_ops);
COMMENT ON TABLE organisation_name_vocabulary IS 'R1: the words of organisation names, with how many names hold each (0: no longer used).';

CREATE TABLE organisation_name_pairs (
    pair text COLLATE "C" PRIMARY KEY,
    organisations integer NOT NULL DEFAULT 0 CHECK (organisations >= 0)
);
COMMENT ON TABLE organisation_name_pairs IS 'R1: how many organisation names hold each pair of words (0: no longer).';

REVOKE ALL ON organisation_name_words, organisation_name_vocabulary, organisation_name_pairs
    FROM PUBLIC, spor_app, spor_reporting, spor_worker;

-- Keeps both tables in step with every new or renamed organisation, in the same transaction.
CREATE FUNCTION spor_organisation_name_words() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.name IS NOT DISTINCT FROM OLD.name THEN RETURN NULL; END IF;
        DELETE FROM organisation_name_words WHERE organisation_id = OLD.id AND word = ANY (OLD.name_words);
        UPDATE organisation_name_vocabulary SET organisations = organisations - 1 WHERE word = ANY (OLD.name_words);
        UPDATE organisation_name_pairs SET organisations = organisations - 1 WHERE pair = ANY (OLD.name_pairs);
    END IF;
    INSERT INTO organisation_name_words (word, name_length, organisation_id)
    SELECT w, length(NEW.name), NEW.id FROM unnest(NEW.name_words) w;
    INSERT INTO organisation_name_vocabulary AS v (word, organisations)
    SELECT w, 1 FROM unnest(NEW.name_words) w ORDER BY w   -- one order, so two new names never deadlock
    ON CONFLICT (word) DO UPDATE SET organisations = v.organisations + 1;
    INSERT INTO organisation_name_pairs AS v (pair, organisations)
    SELECT w, 1 FROM unnest(NEW.name_pairs) w ORDER BY w
    ON CONFLICT (pair) DO UPDATE SET organisations = v.organisations + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER r1_organisation_name_words AFTER INSERT OR UPDATE OF name ON organisations
    FOR EACH ROW EXECUTE FUNCTION spor_organisation_name_words();

-- Rebuilds both tables from the names (the migration's backfill; after a bulk load with triggers off).
CREATE FUNCTION spor_rebuild_organisation_search() RETURNS bigint
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE postings bigint;
BEGIN
    LOCK TABLE organisation_name_words, organisation_name_vocabulary, organisation_name_pairs IN EXCLUSIVE MODE;
    TRUNCATE organisation_name_words, organisation_name_vocabulary, organisation_name_pairs;
    INSERT INTO organisation_name_words (word, name_length, organisation_id)
    SELECT w, length(o.name), o.id FROM organisations o, unnest(o.name_words) w ORDER BY 1, 2, 3;
    GET DIAGNOSTICS postings = ROW_COUNT;
    INSERT INTO organisation_name_vocabulary (word, organisations)
    SELECT word, count(*) FROM organisation_name_words GROUP BY word;
    INSERT INTO organisation_name_pairs (pair, organisations)
    SELECT p, count(*) FROM organisations o, unnest(o.name_pairs) p GROUP BY p;
    ANALYZE organisation_name_words;
    ANALYZE organisation_name_vocabulary;
    ANALYZE organisation_name_pairs;
    RETURN postings;
END
$$;
COMMENT ON FUNCTION spor_rebuild_organisation_search() IS 'R1: rebuild the OMS search words from the names (owner only; after a bulk load that bypassed triggers).';
SELECT spor_rebuild_organisation_search();

-- The query's words: folded, split, distinct, the first eight in the order typed.
CREATE FUNCTION spor_search_terms(search text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN (SELECT coalesce(array_agg(w ORDER BY n), '{}') FROM (
        SELECT w, min(n) AS n FROM regexp_split_to_table(spor_fold(search), '[^[:alnum:]]+') WITH ORDINALITY AS t(w, n)
        WHERE w <> '' GROUP BY w ORDER BY min(n) LIMIT 8) s);

-- The dictionary words one query word stands for, and how many names hold them. Broad: it begins more than
-- `most` words (then `words` holds the first `most`, and the search checks the prefix row by row instead).
CREATE FUNCTION spor_search_term_words(term text, most integer, OUT words text[], OUT organisations bigint, OUT broad boolean)
    LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
    SELECT array_agg(s.word) FILTER (WHERE s.n <= most), sum(s.organisations) FILTER (WHERE s.n <= most), count(*) > most
    INTO words, organisations, broad FROM (
        SELECT v.word, v.organisations, row_number() OVER (ORDER BY v.word) AS n FROM (
            SELECT v.word, v.organisations FROM organisation_name_vocabulary v
            WHERE v.word >= term COLLATE "C" AND v.word < (term || chr(1114111)) COLLATE "C" AND v.organisations > 0
            ORDER BY v.word LIMIT most + 1) v) s;
    IF words IS NULL THEN
        SELECT array_agg(s.word), sum(s.organisations) INTO words, organisations FROM (
            SELECT v.word, v.organisations FROM organisation_name_vocabulary v
            WHERE v.word % term AND v.organisations > 0
            ORDER BY similarity(v.word, term) DESC, v.word LIMIT 3) s;
    END IF;
    words := coalesce(words, '{}');
    organisations := coalesce(organisations, 0);
    broad := coalesce(broad, false);
END
$$;

-- The first `wanted` matches of the terms, in rank order (shortest name, then id). dense_scan: the fewest of the
-- rarest word's names read in rank order before the search turns to an index (a parameter, so that tests can drive
-- every way with a small dictionary).
CREATE FUNCTION spor_search_ranked(terms text[], wanted_country text, wanted bigint, dense_scan integer)
    RETURNS TABLE (organisation_id text, name_length integer)
    LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    expansions text[] := '{}';   -- each term's dictionary words, as an array literal
    sizes bigint[] := '{}';      -- and how many names hold them
    broad boolean[] := '{}';     -- and whether it begins too many words to list
    expansion record;
    driver integer;
    a text[];
    b text[];
    tokens text[];
    tokens_count bigint;
    pairs text[];
    pairs_count bigint;
    filters text := '';
    scan bigint;
    found_ids text[];
    found_lengths integer[];
BEGIN
    IF coalesce(cardinality(terms), 0) = 0 OR wanted < 1 THEN RETURN; END IF;
    FOR i IN 1 .. cardinality(terms) LOOP
        expansion := spor_search_term_words(terms[i], 50);
        IF expansion.organisations = 0 THEN RETURN; END IF;   -- a word that stands for nothing: no name matches
        expansions := expansions || expansion.words::text;
        sizes := sizes || expansion.organisations;
        broad := broad || expansion.broad;
        IF NOT expansion.broad AND (driver IS NULL OR expansion.organisations < sizes[driver]) THEN driver := i; END IF;
    END LOOP;
    -- The rarest pair of query words that a name must hold as two different words of its own.
    FOR i IN 1 .. cardinality(terms) LOOP
        FOR j IN i + 1 .. cardinality(terms) LOOP
            a := expansions[i]::text[];
            b := expansions[j]::text[];
            CONTINUE WHEN broad[i] OR broad[j] OR cardinality(a) * cardinality(b) > 100 OR a && b;
            tokens := ARRAY(SELECT least(x, y) || ' ' || greatest(x, y) FROM unnest(a) x, unnest(b) y);
            SELECT coalesce(sum(p.organisations), 0) INTO tokens_count FROM organisation_name_pairs p WHERE p.pair = ANY (tokens);
            IF tokens_count = 0 THEN RETURN; END IF;          -- two words that never meet in a name
            IF pairs_count IS NULL OR tokens_count < pairs_count THEN pairs := tokens; pairs_count := tokens_count; END IF;
        END LOOP;
    END LOOP;
    FOR i IN 1 .. cardinality(terms) LOOP
        IF broad[i] THEN   -- a short prefix of many words: checked on the row (terms are letters and digits only)
            filters := filters || format(' AND EXISTS (SELECT 1 FROM unnest(o.name_words) w WHERE w LIKE %L)', terms[i] || '%');
        ELSIF i IS DISTINCT FROM driver THEN
            filters := filters || format(' AND o.name_words && %L::text[]', expansions[i]);
        END IF;
    END LOOP;
    IF wanted_country IS NOT NULL THEN filters := filters || format(' AND o.country = %L', wanted_country); END IF;

    IF driver IS NULL THEN
        -- Only broad words ("ph", "1"): their names are many, so the best names of the whole dictionary, in rank
        -- order, are read until a page matches (at most 5,000); past that, the first word's first 1,000 dictionary
        -- words drive (a prefix that begins more words and matches fewer than a page in 5,000 names is the one
        -- case where the answer may leave names out).
        EXECUTE format($q$
            SELECT array_agg(o.id ORDER BY length(o.name), o.id), array_agg(length(o.name) ORDER BY length(o.name), o.id)
            FROM (SELECT o.id, o.name FROM (SELECT o.* FROM organisations o ORDER BY length(o.name), o.id LIMIT 5000) o
                  WHERE true %s ORDER BY length(o.name), o.id LIMIT %s) o$q$, filters, wanted) INTO found_ids, found_lengths;
        IF coalesce(cardinality(found_ids), 0) >= wanted
           OR (SELECT count(*) < 5000 FROM (SELECT 1 FROM organisations LIMIT 5000) n) THEN
            RETURN QUERY SELECT * FROM unnest(found_ids, found_lengths);
            RETURN;
        END IF;
        expansion := spor_search_term_words(terms[1], 1000);
        RETURN QUERY EXECUTE format($q$
            SELECT DISTINCT p.organisation_id, p.name_length FROM unnest(%L::text[]) AS d(word)
            CROSS JOIN LATERAL (SELECT p.organisation_id, p.name_length FROM organisation_name_words p
                                JOIN organisations o ON o.id = p.organisation_id
                                WHERE p.word = d.word %s ORDER BY p.name_length, p.organisation_id LIMIT %s) p
            ORDER BY p.name_length, p.organisation_id LIMIT %s$q$, expansion.words, filters, wanted, wanted);
        RETURN;
    END IF;

    IF filters = '' AND cardinality(expansions[driver]::text[]) = 1 THEN
        scan := wanted;                                       -- one word, anywhere: its first names are the answer
    ELSIF pairs_count IS NULL THEN
        scan := greatest(wanted, dense_scan);
    ELSE                                                      -- enough of the driver's names to hold two pages
        scan := greatest(wanted, dense_scan, ceil(2.0 * wanted * sizes[driver] / pairs_count)::bigint);
    END IF;

    IF pairs_count IS NULL OR pairs_count > 4 * scan THEN
        -- Dense: the driver's names in rank order (each of its dictionary words' best first, merged); the first
        -- `scan` of them are a prefix of the order of every match, so the matches among them are the best ones.
        -- One dictionary word: its index range is already in rank order, so the join can stop at `wanted` matches.
        IF cardinality(expansions[driver]::text[]) = 1 THEN
            EXECUTE format($q$
                SELECT array_agg(r.organisation_id ORDER BY r.name_length, r.organisation_id),
                       array_agg(r.name_length ORDER BY r.name_length, r.organisation_id) FROM (
                SELECT s.organisation_id, s.name_length FROM (
                    SELECT p.organisation_id, p.name_length FROM organisation_name_words p
                    WHERE p.word = %L ORDER BY p.name_length, p.organisation_id LIMIT %s) s
                JOIN LATERAL (SELECT 1 FROM organisations o WHERE o.id = s.organisation_id %s) o ON true
                ORDER BY s.name_length, s.organisation_id LIMIT %s) r$q$, (expansions[driver]::text[])[1], scan, filters, wanted)
            INTO found_ids, found_lengths;
        ELSE
        EXECUTE format($q$
            SELECT array_agg(r.organisation_id ORDER BY r.name_length, r.organisation_id),
                   array_agg(r.name_length ORDER BY r.name_length, r.organisation_id) FROM (
            SELECT DISTINCT s.organisation_id, s.name_length FROM (
                SELECT p.organisation_id, p.name_length FROM unnest(%L::text[]) AS d(word)
                CROSS JOIN LATERAL (SELECT p.organisation_id, p.name_length FROM organisation_name_words p
                                    WHERE p.word = d.word ORDER BY p.name_length, p.organisation_id LIMIT %s) p
                ORDER BY p.name_length, p.organisation_id LIMIT %s) s
            JOIN organisations o ON o.id = s.organisation_id
            WHERE true %s
            ORDER BY s.name_length, s.organisation_id LIMIT %s) r$q$, expansions[driver], scan, scan, filters, wanted)
        INTO found_ids, found_lengths;
        END IF;
        IF coalesce(cardinality(found_ids), 0) >= wanted OR sizes[driver] <= scan THEN
            RETURN QUERY SELECT * FROM unnest(found_ids, found_lengths);
            RETURN;
        END IF;
    END IF;
    -- Sparse: the names holding the rarest pair (few, by its count), or holding the driver and the other words
    -- (the word index intersects them), each checked against every term and ranked whole.
    IF pairs_count IS NOT NULL THEN
        RETURN QUERY EXECUTE format($q$
            SELECT o.id, length(o.name) FROM (SELECT * FROM organisations o WHERE o.name_pairs && %L::text[] OFFSET 0) o
            WHERE o.name_words && %L::text[] %s
            ORDER BY length(o.name), o.id LIMIT %s$q$, pairs, expansions[driver], filters, wanted);
    ELSE
        RETURN QUERY EXECUTE format($q$
            SELECT o.id, length(o.name) FROM organisations o
            WHERE o.name_words && %L::text[] %s
            ORDER BY length(o.name), o.id LIMIT %s$q$, expansions[driver], filters, wanted);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION spor_search_organisations(search text, wanted_country text, page_limit integer, page_offset integer)
    RETURNS TABLE (id text, name text, country text, city text, status text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    query text := btrim(coalesce(search, ''));
BEGIN
    IF query = '' THEN
        RETURN QUERY
        SELECT o.id, o.name, o.country, o.city, o.status FROM organisations o
        WHERE wanted_country IS NULL OR o.country = wanted_country
        ORDER BY o.id LIMIT page_limit OFFSET page_offset;
    ELSIF upper(query) ~ '^ORG-[0-9]{9}$' THEN
        RETURN QUERY
        SELECT o.id, o.name, o.country, o.city, o.status FROM organisations o
        WHERE o.id = upper(query) AND (wanted_country IS NULL OR o.country = wanted_country)
        LIMIT page_limit OFFSET page_offset;
    ELSE
        RETURN QUERY
        SELECT o.id, o.name, o.country, o.city, o.status
        FROM spor_search_ranked(spor_search_terms(query), wanted_country, page_limit::bigint + page_offset, 300) r
        JOIN organisations o ON o.id = r.organisation_id
        ORDER BY r.name_length, r.organisation_id OFFSET page_offset;
    END IF;
END
$$;
COMMENT ON FUNCTION spor_search_organisations(text, text, integer, integer) IS 'R1: OMS search by the words of the folded name (word prefixes, misspellings), shortest name first; an ORG id finds its organisation.';

-- spor_name_words computes the generated column, so whoever may insert or rename an organisation runs it.
GRANT EXECUTE ON FUNCTION spor_name_words(text) TO spor_app;
REVOKE EXECUTE ON FUNCTION spor_organisation_name_words(), spor_rebuild_organisation_search(),
    spor_search_terms(text), spor_search_term_words(text, integer), spor_search_ranked(text[], text, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spor_name_pairs(text[]) TO spor_app;
