DROP INDEX users_username;
ALTER TABLE users DROP COLUMN display_name, DROP COLUMN username;
