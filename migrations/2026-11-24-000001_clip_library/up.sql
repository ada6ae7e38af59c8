-- The clip library: every clip a user keeps (a direct upload, an import, or a form upload
-- saved to the library), its probe facts, thumbnail and highlight analysis. The analysis is
-- stored once and reused by every later job that uses the clip.
CREATE TABLE clips (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source           TEXT NOT NULL CHECK (source IN ('upload', 'twitch')),
    -- The platform's id of an imported clip: each is imported once per user.
    external_id      TEXT CHECK (length(external_id) BETWEEN 1 AND 256),
    label            TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 128),
    storage_key      TEXT NOT NULL UNIQUE,
    container        TEXT NOT NULL,
    size_bytes       BIGINT NOT NULL CHECK (size_bytes > 0),
    status           TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'READY', 'REJECTED')),
    rejection        TEXT,
    duration_seconds DOUBLE PRECISION,
    width            INTEGER,
    height           INTEGER,
    has_audio        BOOLEAN,
    thumbnail_key    TEXT,
    analysis         JSONB,
    -- A worker examining the clip holds it until then.
    examining_until  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT rejected_has_reason CHECK ((status = 'REJECTED') = (rejection IS NOT NULL)),
    CONSTRAINT ready_has_facts CHECK (status <> 'READY' OR (duration_seconds IS NOT NULL AND width IS NOT NULL AND height IS NOT NULL AND has_audio IS NOT NULL)),
    CONSTRAINT imported_once UNIQUE (user_id, source, external_id)
);
CREATE INDEX clips_user_created ON clips (user_id, created_at DESC, id DESC);
CREATE INDEX clips_pending ON clips (created_at) WHERE status = 'PENDING';

-- A job's input may be a library clip: its object is the clip's, which retention leaves alone
-- and the storage quota counts once, as the clip.
ALTER TABLE job_inputs ADD COLUMN clip_id UUID REFERENCES clips (id) ON DELETE SET NULL;
ALTER TABLE job_inputs ADD COLUMN from_library BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE job_inputs DROP CONSTRAINT job_inputs_storage_key_key;
CREATE INDEX job_inputs_clip ON job_inputs (clip_id) WHERE clip_id IS NOT NULL;

-- Direct uploads in progress: the client PUTs the parts of an S3 multipart upload through
-- presigned URLs; completing it makes the library clip `clip_id`. Abandoned ones are aborted
-- once `expires_at` passes. Their declared size counts against the storage quota meanwhile.
CREATE TABLE direct_uploads (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    clip_id       UUID NOT NULL UNIQUE,
    storage_key   TEXT NOT NULL UNIQUE,
    s3_upload_id  TEXT NOT NULL,
    label         TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 128),
    size_bytes    BIGINT NOT NULL CHECK (size_bytes > 0),
    part_bytes    BIGINT NOT NULL CHECK (part_bytes > 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX direct_uploads_user ON direct_uploads (user_id);
CREATE INDEX direct_uploads_expiry ON direct_uploads (expires_at);
