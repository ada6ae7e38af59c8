ALTER TABLE jobs DROP CONSTRAINT jobs_error_code_check;
