DROP INDEX jobs_awaiting_purge;
ALTER TABLE jobs DROP COLUMN inputs_purged_at;
