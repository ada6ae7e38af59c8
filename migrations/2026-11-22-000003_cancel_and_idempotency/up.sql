-- Cancellation: a CANCELLED end state, and a request flag a running worker polls.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCESS', 'FAILED', 'CANCELLED'));
ALTER TABLE jobs DROP CONSTRAINT jobs_stage_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_stage_check
    CHECK (stage IN ('queued', 'downloading', 'probing', 'analyzing', 'rendering', 'uploading', 'done', 'failed', 'cancelled'));
ALTER TABLE jobs DROP CONSTRAINT finished_when_terminal;
ALTER TABLE jobs ADD CONSTRAINT finished_when_terminal
    CHECK ((status IN ('SUCCESS', 'FAILED', 'CANCELLED')) = (finished_at IS NOT NULL));
ALTER TABLE jobs DROP CONSTRAINT started_unless_pending;
ALTER TABLE jobs ADD CONSTRAINT started_unless_pending
    CHECK (status IN ('PENDING', 'CANCELLED') OR started_at IS NOT NULL);
ALTER TABLE jobs ADD COLUMN cancel_requested_at TIMESTAMPTZ;

-- Idempotency-Key on job creation: the same key from the same user returns the first job.
CREATE TABLE idempotency_keys (
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    job_id      UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
