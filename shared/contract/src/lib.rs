//! The public API's contract, typed once for the server and its clients: the envelopes, the
//! views of jobs and tracks, the sign-in exchange and every message `/ws` sends. The service
//! serialises these types and the `montage` CLI deserialises the same ones, so a renamed
//! field breaks the build rather than a client. No database types: a client builds it without
//! a driver.

pub mod auth;
pub mod envelope;
pub mod jobs;
pub mod live;
pub mod music;

pub use envelope::{ok, Envelope, ErrorBody, ErrorEnvelope};
