-- Importing clips from a linked account: one sync per run (asked for, or periodic), with its
-- progress, and the clips that failed to import, retried by later syncs.
CREATE TABLE account_syncs (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    link_id      UUID NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    status       TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'RUNNING', 'SUCCESS', 'FAILED')),
    found        INTEGER NOT NULL DEFAULT 0,
    imported     INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    -- Why the whole sync failed (the link's token refused, the platform down).
    error        TEXT,
    -- A worker running the sync holds it until then.
    held_until   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    CONSTRAINT finished_when_done CHECK ((status IN ('SUCCESS', 'FAILED')) = (finished_at IS NOT NULL))
);
CREATE INDEX account_syncs_due ON account_syncs (created_at) WHERE status IN ('PENDING', 'RUNNING');
CREATE INDEX account_syncs_link ON account_syncs (link_id, created_at DESC);

CREATE TABLE import_failures (
    link_id      UUID NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    external_id  TEXT NOT NULL,
    title        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 1,
    last_error   TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (link_id, external_id)
);
