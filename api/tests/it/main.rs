//! Integration tests against real PostgreSQL, Redis, S3 (scripts/s3-server) and libav, as
//! started by `scripts/test`. Each test gets its own database (cloned from a migrated
//! template), its own queue namespace and its own bucket.

mod accounts;
mod admin;
mod auth;
mod billing;
mod cli;
mod clips;
mod control;
mod engine;
mod errors;
mod floods;
mod helpers;
mod hostile;
mod jobs;
mod linking;
mod metrics;
mod mfa;
mod music;
mod processes;
mod quotas;
mod recovery;
mod render;
mod showcase;
mod smtp;
mod social;
mod styles;
mod system;
mod users;
mod web_app;
