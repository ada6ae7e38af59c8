DROP TABLE job_outputs;
DROP TABLE job_inputs;
DROP TABLE jobs;
DROP TABLE refresh_tokens;
DROP TABLE users;
