-- Output retention by plan: how long a job's outputs are kept after it ends (NULL: for
-- good), and when they were deleted.
ALTER TABLE jobs ADD COLUMN output_retention_secs BIGINT;
ALTER TABLE jobs ADD COLUMN outputs_expired_at TIMESTAMPTZ;
CREATE INDEX jobs_outputs_to_expire ON jobs (finished_at)
    WHERE output_retention_secs IS NOT NULL AND outputs_expired_at IS NULL;
