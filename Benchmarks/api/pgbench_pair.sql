-- The database-only ceiling of one pair: the four statements the service sends for a request and its approval
-- (each a plain SELECT, its own implicit transaction), run by pgbench in the service's protocol: -M prepared (each
-- statement prepared once per connection, as the service prepares them since issue 10's prepared statements) or,
-- through pgbouncer, -M extended (unnamed statements with parameters, as the service then sends them). One pgbench
-- "transaction" is one pair, so pgbench's tps is pairs/s.
--
-- Variables (pgbench -D): base (first applicant number of this run), nclients (-c), orgs, orgbase (first
-- organisation number), i=0 (this client's pair counter; pgbench keeps a client's variables from one run of the
-- script to the next). Applicant n = base + i * nclients + client_id is fresh in every pair (R7), and files for
-- organisation orgbase + n % orgs, whose first super user approves. The tokens and the organisation id are made
-- from those numbers inside the statements ('bench-applicant-' || n, 'bench-su-' || num, 'ORG-' || num): the
-- same text the API load sends, built by a concatenation that costs microseconds. The service passes a fifth
-- argument to spor_decide_request, stop_after_reroute => true, which is that parameter's default (0021); it is
-- left out here so that the script also runs against the four-parameter form. Each command is wrapped as the
-- service wraps it (Database.command, 0029): `SELECT * FROM (<command>) AS command WHERE spor_check_deferred_rules()`,
-- which runs the transaction's deferred rule checks inside the statement.
\set n :base + :i * :nclients + :client_id
\set i :i + 1
\set org :orgbase + :n % :orgs
SELECT * FROM spor_submission_facts('bench-applicant-' || CAST(:n AS text), 'spor-industry-user', 'ORG-' || CAST(:org AS text));
SELECT * FROM (SELECT * FROM spor_file_request('bench-applicant-' || CAST(:n AS text), 'spor-industry-user', 'ORG-' || CAST(:org AS text), NULL)) AS command WHERE spor_check_deferred_rules() \gset f_
SELECT * FROM spor_decision_facts('bench-su-' || CAST(:org AS text), CAST(:f_id AS bigint));
SELECT * FROM (SELECT * FROM spor_decide_request('bench-su-' || CAST(:org AS text), CAST(:f_id AS bigint), true, NULL)) AS command WHERE spor_check_deferred_rules();
