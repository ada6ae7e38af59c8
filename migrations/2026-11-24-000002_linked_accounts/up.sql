-- Linking a platform account: an OAuth authorisation in flight (its state, bound to the user
-- who started it, single use and short-lived), and the links it makes.
CREATE TABLE oauth_states (
    -- SHA-256 of the state sent to the platform: the table never holds the value itself.
    state_hash     BYTEA PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL CHECK (provider IN ('steam', 'twitch', 'youtube', 'tiktok')),
    -- The PKCE verifier, sealed (XChaCha20-Poly1305 under DATA_ENCRYPTION_KEY).
    pkce_verifier  BYTEA,
    expires_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

-- One platform account links to one user only. Tokens are sealed; they never leave the
-- service.
CREATE TABLE linked_accounts (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider          TEXT NOT NULL CHECK (provider IN ('steam', 'twitch', 'youtube', 'tiktok')),
    external_id       TEXT NOT NULL CHECK (length(external_id) BETWEEN 1 AND 256),
    display_name      TEXT NOT NULL,
    access_token      BYTEA,
    refresh_token     BYTEA,
    token_expires_at  TIMESTAMPTZ,
    scopes            TEXT[] NOT NULL DEFAULT '{}' CHECK (array_position(scopes, NULL) IS NULL),
    last_synced_at    TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT one_user_per_platform_account UNIQUE (provider, external_id)
);
CREATE INDEX linked_accounts_user ON linked_accounts (user_id);
