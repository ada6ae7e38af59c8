//! The domain and infrastructure that the API and the workers share.

pub mod auth;
pub mod billing;
pub mod callbacks;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod egress;
pub mod engine;
pub mod error;
pub mod events;
pub mod heartbeat;
pub mod hud;
pub mod jobs;
pub mod models;
pub mod montage;
pub mod queue;
pub mod ratelimit;
pub mod schema;
pub mod signing;
pub mod sniff;
pub mod storage;
pub mod styles;
pub mod telemetry;
