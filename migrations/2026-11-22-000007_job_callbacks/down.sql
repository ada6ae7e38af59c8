DROP TRIGGER jobs_queue_callback ON jobs;
DROP FUNCTION queue_job_callback();
DROP TABLE callback_deliveries;
ALTER TABLE jobs DROP COLUMN callback_url;
