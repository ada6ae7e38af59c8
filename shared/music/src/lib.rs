//! Music for montages: the catalogue of tracks the service ships, and beat tracking.
//! Pure Rust; decoding is the worker's (libav, in the sandbox).

pub mod beats;
pub mod catalogue;

pub use catalogue::{Catalogue, CatalogueError, Track};
