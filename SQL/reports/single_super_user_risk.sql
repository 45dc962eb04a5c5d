-- Single-super-user risk: organisations that depend on exactly one super user (EMA recommends at least two),
-- ranked by how many industry users that one person stands for, with how long they have held the role and how
-- many requests are waiting for them. Built on reporting.organisations_with_single_super_user,
-- reporting.role_holders and reporting.pending_access_requests only.
SELECT s.organisation_id,
       s.organisation_name,
       s.country,
       s.super_user_email,
       s.super_user_since,
       coalesce(h.holders, 0) AS industry_users,
       coalesce(p.pending, 0) AS pending_requests
FROM reporting.organisations_with_single_super_user s
LEFT JOIN reporting.role_holders h ON h.organisation_id = s.organisation_id AND h.role = 'spor-industry-user'
LEFT JOIN (SELECT organisation_id, sum(requests) AS pending
           FROM reporting.pending_access_requests
           WHERE approver_kind = 'organisation-super-users'
           GROUP BY organisation_id) p ON p.organisation_id = s.organisation_id
ORDER BY industry_users DESC, pending_requests DESC, s.organisation_id
LIMIT 100;
