-- Optional webhook to the job's owner when it ends. The trigger queues the delivery in the
-- same transaction as the final status, whichever process writes it: an outbox that no code
-- path can forget.
ALTER TABLE jobs ADD COLUMN callback_url TEXT CHECK (length(callback_url) BETWEEN 1 AND 2048);

CREATE TABLE callback_deliveries (
    job_id           UUID PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    abandoned_at     TIMESTAMPTZ,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX callback_deliveries_due ON callback_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;

CREATE FUNCTION queue_job_callback() RETURNS trigger AS $$
BEGIN
    INSERT INTO callback_deliveries (job_id, url) VALUES (NEW.id, NEW.callback_url)
    ON CONFLICT (job_id) DO NOTHING;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_queue_callback
    AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (NEW.callback_url IS NOT NULL
          AND NEW.status IN ('SUCCESS', 'FAILED', 'CANCELLED')
          AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION queue_job_callback();
