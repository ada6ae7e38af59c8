-- Per-application user data (seed 003): small JSON values under keys, per user and, when the
-- client names one, per application.
CREATE TABLE user_data (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- '' when the client named no application.
    application_id TEXT NOT NULL CHECK (application_id ~ '^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$'),
    key TEXT NOT NULL CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    value JSONB NOT NULL,
    size_bytes INT NOT NULL CHECK (size_bytes > 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, application_id, key)
);
