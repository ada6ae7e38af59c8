-- Seconds per stage of a job's successful attempt (download, probe, analysis, audio,
-- video, upload, total), for the job's status and for finding where render time goes.
ALTER TABLE jobs ADD COLUMN timings JSONB CHECK (jsonb_typeof(timings) = 'object');
