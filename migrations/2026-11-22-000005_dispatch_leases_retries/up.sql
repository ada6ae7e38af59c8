-- The jobs table is its own outbox: a job waits here (dispatched_at IS NULL) until a relay
-- has pushed it to the queue, so a job can be accepted while Redis is down. Each push is a
-- new "dispatch" whose number travels with the queue message; stale messages are ignored.
ALTER TABLE jobs ADD COLUMN dispatched_at TIMESTAMPTZ;
ALTER TABLE jobs ADD COLUMN dispatches INTEGER NOT NULL DEFAULT 0 CHECK (dispatches >= 0);
-- Earliest time the relay may (re)dispatch: now for new jobs, later for backed-off retries.
ALTER TABLE jobs ADD COLUMN run_after TIMESTAMPTZ NOT NULL DEFAULT now();
-- A running job is leased to one claim; a worker that stops renewing loses the job.
ALTER TABLE jobs ADD COLUMN lease_token UUID;
ALTER TABLE jobs ADD COLUMN lease_expires_at TIMESTAMPTZ;
-- Jobs created before this migration were pushed to the queue when created.
UPDATE jobs SET dispatched_at = created_at, dispatches = 1;

-- RETRYING: between attempts, waiting for run_after. It carries the last attempt's error.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('PENDING', 'PROCESSING', 'RETRYING', 'SUCCESS', 'FAILED', 'CANCELLED'));
ALTER TABLE jobs DROP CONSTRAINT failed_has_error;
ALTER TABLE jobs ADD CONSTRAINT error_is_whole CHECK ((error_code IS NULL) = (error_message IS NULL));
ALTER TABLE jobs ADD CONSTRAINT failed_has_error CHECK (status <> 'FAILED' OR error_code IS NOT NULL);
ALTER TABLE jobs ADD CONSTRAINT error_only_when_failed_or_retrying
    CHECK (status IN ('FAILED', 'RETRYING') OR error_code IS NULL);
ALTER TABLE jobs ADD CONSTRAINT leased_while_processing
    CHECK ((status = 'PROCESSING') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL));

CREATE INDEX jobs_awaiting_dispatch ON jobs (run_after)
    WHERE dispatched_at IS NULL AND status IN ('PENDING', 'RETRYING');
CREATE INDEX jobs_active_by_user ON jobs (user_id)
    WHERE status IN ('PENDING', 'PROCESSING', 'RETRYING');
