-- Profiles (seeds 002, 003): a public name, unique whatever its case, and a display name.
ALTER TABLE users
    ADD COLUMN username TEXT CHECK (username ~ '^[A-Za-z0-9_.-]{3,50}$'),
    ADD COLUMN display_name TEXT CHECK (char_length(display_name) BETWEEN 1 AND 100);
CREATE UNIQUE INDEX users_username ON users (lower(username));
