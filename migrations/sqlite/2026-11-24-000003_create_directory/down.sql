DROP TABLE security_alerts;
DROP TABLE directory_audits;
DROP TABLE sign_ins;
DROP TABLE managed_devices;
DROP TABLE group_members;
DROP TABLE groups;
DROP TABLE users;
