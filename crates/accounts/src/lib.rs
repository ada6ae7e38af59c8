//! Accounts: sign-up, login, tokens and sessions, each user's application data, and the
//! Redis rate limiter that guards them (and the API).

pub mod auth;
pub mod profile;
pub mod ratelimit;
pub mod userdata;
