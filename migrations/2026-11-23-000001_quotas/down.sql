DROP INDEX jobs_outputs_to_expire;
ALTER TABLE jobs DROP COLUMN outputs_expired_at;
ALTER TABLE jobs DROP COLUMN output_retention_secs;
