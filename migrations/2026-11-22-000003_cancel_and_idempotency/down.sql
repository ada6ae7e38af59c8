DROP TABLE idempotency_keys;
ALTER TABLE jobs DROP COLUMN cancel_requested_at;
DELETE FROM jobs WHERE status = 'CANCELLED';
ALTER TABLE jobs DROP CONSTRAINT started_unless_pending;
ALTER TABLE jobs ADD CONSTRAINT started_unless_pending CHECK (status = 'PENDING' OR started_at IS NOT NULL);
ALTER TABLE jobs DROP CONSTRAINT finished_when_terminal;
ALTER TABLE jobs ADD CONSTRAINT finished_when_terminal CHECK ((status IN ('SUCCESS', 'FAILED')) = (finished_at IS NOT NULL));
ALTER TABLE jobs DROP CONSTRAINT jobs_stage_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_stage_check
    CHECK (stage IN ('queued', 'downloading', 'probing', 'analyzing', 'rendering', 'uploading', 'done', 'failed'));
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCESS', 'FAILED'));
