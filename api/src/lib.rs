//! The HTTP API: thin handlers over the services in `shared`.

pub mod error;
pub mod middleware;
pub mod rate_limit;
pub mod routes;
pub mod startup;
pub mod state;
pub mod upload;
