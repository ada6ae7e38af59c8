-- A job's failure code is one the service knows (`domain::jobs::FailureCode`).
ALTER TABLE jobs ADD CONSTRAINT jobs_error_code_check CHECK (error_code IN (
    'INVALID_MEDIA', 'CLIPS_TOO_SHORT', 'RENDER_FAILED', 'RENDER_TIMEOUT',
    'MEDIA_CRASHED', 'INFRASTRUCTURE_ERROR', 'WORKER_LOST'
));
