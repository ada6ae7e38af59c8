-- Uploaded clips are deleted some time after their job ends; this records when.
ALTER TABLE jobs ADD COLUMN inputs_purged_at TIMESTAMPTZ;
CREATE INDEX jobs_awaiting_purge ON jobs (finished_at) WHERE inputs_purged_at IS NULL AND finished_at IS NOT NULL;
