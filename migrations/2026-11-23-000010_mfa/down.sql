DROP TABLE mfa_recovery_codes;
ALTER TABLE users
    DROP CONSTRAINT users_mfa_has_secret,
    DROP COLUMN mfa_last_step,
    DROP COLUMN mfa_enabled_at,
    DROP COLUMN mfa_secret;
