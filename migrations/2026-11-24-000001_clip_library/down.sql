DROP TABLE direct_uploads;
DELETE FROM job_inputs WHERE from_library;
ALTER TABLE job_inputs ADD CONSTRAINT job_inputs_storage_key_key UNIQUE (storage_key);
ALTER TABLE job_inputs DROP COLUMN from_library;
ALTER TABLE job_inputs DROP COLUMN clip_id;
DROP TABLE clips;
