DROP TABLE delegated_tokens;
DROP TABLE connections;
DROP TABLE organizations;
