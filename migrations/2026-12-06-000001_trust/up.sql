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

-- Posts outlive the link they went through: they keep their platform, the account's name
-- (as it was when posted) and URL. Open posts of a removed link fail (no token is left).
ALTER TABLE social_posts ADD COLUMN account_name TEXT NOT NULL DEFAULT '';
UPDATE social_posts p SET account_name = l.display_name FROM linked_accounts l WHERE l.id = p.link_id;
ALTER TABLE social_posts ALTER COLUMN account_name DROP DEFAULT;
ALTER TABLE social_posts ALTER COLUMN link_id DROP NOT NULL;
ALTER TABLE social_posts DROP CONSTRAINT social_posts_link_id_fkey;
ALTER TABLE social_posts ADD CONSTRAINT social_posts_link_id_fkey
    FOREIGN KEY (link_id) REFERENCES linked_accounts (id) ON DELETE SET NULL;
