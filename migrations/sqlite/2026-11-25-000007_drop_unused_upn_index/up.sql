-- No query reads users by their exact user principal name: the API's search goes through
-- users_search_upn (lower(user_principal_name)). The index only cost every user write one
-- more index entry (100,000 entries in a 100,000-user full sync).
DROP INDEX users_upn;
