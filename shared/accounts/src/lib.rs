//! Accounts: sign-up, login, tokens and sessions, profiles, verified email and password
//! recovery (with the mailer), multi-factor login, each user's application data, and the Redis rate limiter that
//! guards them (and the API).

pub mod access;
pub mod auth;
pub mod closure;
pub mod directory;
pub mod file_pass;
pub mod mail;
pub mod mfa;
pub mod profile;
pub mod ratelimit;
pub mod sessions;
pub mod userdata;
pub mod verification;
