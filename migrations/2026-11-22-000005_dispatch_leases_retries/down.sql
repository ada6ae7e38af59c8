DROP INDEX jobs_active_by_user;
DROP INDEX jobs_awaiting_dispatch;
ALTER TABLE jobs DROP CONSTRAINT leased_while_processing;
ALTER TABLE jobs DROP CONSTRAINT error_only_when_failed_or_retrying;
ALTER TABLE jobs DROP CONSTRAINT failed_has_error;
ALTER TABLE jobs DROP CONSTRAINT error_is_whole;
UPDATE jobs SET status = 'PENDING', error_code = NULL, error_message = NULL WHERE status = 'RETRYING';
ALTER TABLE jobs ADD CONSTRAINT failed_has_error
    CHECK ((status = 'FAILED') = (error_code IS NOT NULL AND error_message IS NOT NULL));
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCESS', 'FAILED', 'CANCELLED'));
ALTER TABLE jobs DROP COLUMN lease_expires_at;
ALTER TABLE jobs DROP COLUMN lease_token;
ALTER TABLE jobs DROP COLUMN run_after;
ALTER TABLE jobs DROP COLUMN dispatches;
ALTER TABLE jobs DROP COLUMN dispatched_at;
