-- Users, refresh tokens, jobs and their inputs/outputs.
-- Check constraints keep illegal states out of the table, whatever code writes to it.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash TEXT NOT NULL,
    plan          TEXT NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE refresh_tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Tokens rotated from one login share a family, so reuse of a rotated token revokes them all.
    family_id   UUID NOT NULL,
    token_hash  BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE jobs (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCESS', 'FAILED')),
    stage            TEXT CHECK (stage IN ('queued', 'downloading', 'probing', 'analyzing', 'rendering', 'uploading', 'done', 'failed')),
    progress         SMALLINT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    target_duration  INTEGER NOT NULL CHECK (target_duration BETWEEN 1 AND 3600),
    style            TEXT NOT NULL CHECK (style IN ('cinematic', 'gaming', 'energetic', 'chill')),
    formats          TEXT[] NOT NULL CHECK (
                         cardinality(formats) BETWEEN 1 AND 2
                         AND formats <@ ARRAY['landscape', 'portrait']::TEXT[]
                         AND array_position(formats, NULL) IS NULL),
    hud_remove       BOOLEAN NOT NULL,
    watermark        BOOLEAN NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    error_code       TEXT,
    error_message    TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT failed_has_error CHECK ((status = 'FAILED') = (error_code IS NOT NULL AND error_message IS NOT NULL)),
    CONSTRAINT finished_when_terminal CHECK ((status IN ('SUCCESS', 'FAILED')) = (finished_at IS NOT NULL)),
    CONSTRAINT started_unless_pending CHECK (status = 'PENDING' OR started_at IS NOT NULL)
);
CREATE INDEX jobs_user_created ON jobs (user_id, created_at DESC, id DESC);

CREATE TABLE job_inputs (
    job_id        UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position      SMALLINT NOT NULL CHECK (position BETWEEN 0 AND 99),
    storage_key   TEXT NOT NULL UNIQUE,
    label         TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 128),
    container     TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL CHECK (size_bytes > 0),
    PRIMARY KEY (job_id, position)
);

CREATE TABLE job_outputs (
    job_id            UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    format            TEXT NOT NULL CHECK (format IN ('landscape', 'portrait')),
    storage_key       TEXT NOT NULL UNIQUE,
    width             INTEGER NOT NULL CHECK (width > 0),
    height            INTEGER NOT NULL CHECK (height > 0),
    duration_seconds  DOUBLE PRECISION NOT NULL CHECK (duration_seconds > 0),
    size_bytes        BIGINT NOT NULL CHECK (size_bytes > 0),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, format)
);
