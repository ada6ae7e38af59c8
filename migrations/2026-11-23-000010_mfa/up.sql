-- Multi-factor authentication (seed 003). The TOTP secret is sealed (XChaCha20-Poly1305 with
-- DATA_ENCRYPTION_KEY); it is pending until a first code proves the authenticator has it.
-- The last time step accepted makes each code work once.
ALTER TABLE users
    ADD COLUMN mfa_secret BYTEA,
    ADD COLUMN mfa_enabled_at TIMESTAMPTZ,
    ADD COLUMN mfa_last_step BIGINT,
    ADD CONSTRAINT users_mfa_has_secret CHECK (mfa_enabled_at IS NULL OR mfa_secret IS NOT NULL);
-- Single-use recovery codes, stored as SHA-256 (they are random, so a fast hash is enough).
CREATE TABLE mfa_recovery_codes (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);
