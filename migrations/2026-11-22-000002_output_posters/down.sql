ALTER TABLE job_outputs DROP COLUMN poster_key;
