//! Accounts: sign-up, login, tokens and sessions, and the Redis rate limiter that guards them
//! (and the API).

pub mod auth;
pub mod ratelimit;
