-- Weekly montages, share links, views, interests (issue 14).

-- A user's weekly montage choices; no row means on, in the style their jobs use most.
CREATE TABLE weekly_settings (
    user_id    UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    style      TEXT CHECK (style IN ('cinematic', 'gaming', 'energetic', 'chill')),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per user and week the scheduled run looked at: the montage it built, or that
-- there was too little material. The unique key is what makes the run happen once.
CREATE TABLE weekly_montages (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    week_start  TIMESTAMPTZ NOT NULL,
    week_end    TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('built', 'too_little')),
    -- NULL once the owner deletes the job (a built montage) or always (too little).
    job_id      UUID REFERENCES jobs (id) ON DELETE SET NULL,
    clip_count  INTEGER NOT NULL CHECK (clip_count >= 0),
    visibility  TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
    featured_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT one_per_user_and_week UNIQUE (user_id, week_start),
    CONSTRAINT week_is_ordered CHECK (week_start < week_end),
    CONSTRAINT too_little_has_no_job CHECK (outcome = 'built' OR job_id IS NULL),
    CONSTRAINT featured_is_public CHECK (featured_at IS NULL OR visibility = 'public')
);
CREATE INDEX weekly_montages_public ON weekly_montages (created_at DESC) WHERE visibility = 'public';
CREATE INDEX weekly_montages_job ON weekly_montages (job_id);

-- The weeks every user has been looked at for: later runs skip them at the cost of one read.
CREATE TABLE weekly_runs (
    week_end     TIMESTAMPTZ PRIMARY KEY,
    completed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Public links to a finished job's montage; one live link per job, revoked by its owner.
CREATE TABLE share_links (
    token      TEXT PRIMARY KEY CHECK (char_length(token) = 43),
    job_id     UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX share_links_live ON share_links (job_id) WHERE revoked_at IS NULL;

-- One view per viewer, job and day. `viewer` is a keyed hash of the viewer under that day's
-- salt; the salt is deleted after the day, so no hash can be traced back to an address.
CREATE TABLE montage_views (
    job_id UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    day    DATE NOT NULL,
    viewer BYTEA NOT NULL CHECK (length(viewer) = 32),
    source TEXT NOT NULL CHECK (source IN ('share_page', 'client')),
    PRIMARY KEY (job_id, day, viewer)
);
CREATE TABLE view_salts (
    day  DATE PRIMARY KEY,
    salt BYTEA NOT NULL CHECK (length(salt) = 32)
);

-- What a player likes: games (free names) and styles.
CREATE TABLE user_interests (
    user_id  UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    interest TEXT NOT NULL CHECK (char_length(interest) BETWEEN 2 AND 40),
    kind     TEXT NOT NULL CHECK (kind IN ('game', 'style')),
    PRIMARY KEY (user_id, interest)
);
CREATE INDEX user_interests_by_interest ON user_interests (interest);

-- Admins feature public weekly montages.
ALTER TABLE role_permissions DROP CONSTRAINT role_permissions_resource_check;
ALTER TABLE role_permissions ADD CONSTRAINT role_permissions_resource_check
    CHECK (resource IN ('Job', 'User', 'Role', 'UserData', 'Subscription', 'WeeklyMontage'));
INSERT INTO role_permissions (role, action, resource)
    SELECT 'admin', action, 'WeeklyMontage' FROM unnest(ARRAY['read', 'write', 'delete']) AS action;
