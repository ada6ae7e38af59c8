-- Issue 29: what keeps one player from acting as another.

-- An OAuth or OpenID flow belongs to the browser that started it: the SHA-256 of the value
-- of the cookie that browser was given. Flows in flight when this lands must start again.
DELETE FROM oauth_states;
ALTER TABLE oauth_states ADD COLUMN browser_hash BYTEA NOT NULL;

-- A direct upload's completion holds it: a second completion meanwhile is a conflict. A
-- completed upload stays until it expires, so a repeated completion answers the same clip.
ALTER TABLE direct_uploads ADD COLUMN completing_until TIMESTAMPTZ;
ALTER TABLE direct_uploads ADD COLUMN completed_at TIMESTAMPTZ;

-- Login sessions that ended (logout, password reset, a reused refresh token, a closed
-- account): API instances refuse their access tokens until those expire. No foreign key:
-- a closed account's rows must outlive it.
CREATE TABLE ended_sessions (
    session_id   UUID PRIMARY KEY,
    ended_at     TIMESTAMPTZ NOT NULL,
    forget_after TIMESTAMPTZ NOT NULL
);
CREATE INDEX ended_sessions_ended_at ON ended_sessions (ended_at);
