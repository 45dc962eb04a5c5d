-- 0049 — R1: the OMS search's misspelling threshold is the search's own, not the caller's.
--
-- spor_search_term_words (0047) finds the nearest spellings with pg_trgm's `%`, whose threshold is the session
-- setting pg_trgm.similarity_threshold. A client connected as spor_app could lower it to 0 and make every word of
-- the dictionary a candidate for any misspelt query word: slower searches, and words that share nothing with the
-- query among the results. The function now carries the threshold the rules document (0.3).
ALTER FUNCTION spor_search_term_words(text, integer) SET pg_trgm.similarity_threshold = 0.3;
