//! The HTTP API: thin handlers over the services of the domain crates.

pub mod app_files;
pub mod error;
pub mod etag;
pub mod guard;
pub mod hub;
pub mod middleware;
pub mod monitor;
pub mod rate_limit;
pub mod routes;
pub mod startup;
pub mod state;
pub mod upload;
// Generates and checks api/web/contract.js; only its test uses it.
#[cfg(test)]
mod web_contract;
