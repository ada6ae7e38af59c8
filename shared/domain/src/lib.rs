//! The service's vocabulary: job states and kinds, plans, the caller's identity, validated
//! job options, upload sniffing, webhook signing, sealing secrets at rest, and the errors every layer speaks.
//! Depends on no other crate of ours.

pub mod access;
pub mod clips;
pub mod error;
pub mod facecam;
pub mod identity;
pub mod jobs;
pub mod music;
pub mod plans;
pub mod providers;
pub mod sealing;
pub mod showcase;
pub mod signing;
pub mod sniff;
pub mod timings;
pub mod title;
pub mod userdata;
mod wire;
