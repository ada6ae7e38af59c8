-- The id of the request that created the job, so the worker's log lines for the job can be
-- joined with the API's for the request.
ALTER TABLE jobs ADD COLUMN request_id TEXT CHECK (length(request_id) BETWEEN 1 AND 128);
