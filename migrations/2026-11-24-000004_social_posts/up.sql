-- Montages posted to a linked account, one per (job, format, platform). A worker uploads the
-- output; an interrupted upload resumes from the platform's session (`upload_session`).
CREATE TABLE social_posts (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id           UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    link_id          UUID NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    platform         TEXT NOT NULL CHECK (platform IN ('youtube', 'tiktok')),
    format           TEXT NOT NULL CHECK (format IN ('landscape', 'portrait')),
    caption          TEXT NOT NULL CHECK (length(caption) <= 2200),
    status           TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'UPLOADING', 'PROCESSING', 'PUBLISHED', 'FAILED')),
    post_url         TEXT,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    upload_session   TEXT,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    held_until       TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT one_post_per_output UNIQUE (job_id, format, platform),
    CONSTRAINT failed_has_error CHECK ((status = 'FAILED') = (error IS NOT NULL)),
    CONSTRAINT published_has_url CHECK (status <> 'PUBLISHED' OR post_url IS NOT NULL)
);
CREATE INDEX social_posts_user ON social_posts (user_id, created_at DESC);
CREATE INDEX social_posts_due ON social_posts (next_attempt_at) WHERE status IN ('PENDING', 'UPLOADING', 'PROCESSING');
