//! The job engine: the jobs' state machine in PostgreSQL, the outbox relay to the Redis
//! queue, live job events, worker heartbeats, and signed "job ended" callbacks.

pub mod admission;
pub mod callbacks;
pub mod dispatch;
pub mod egress;
pub mod events;
pub mod heartbeat;
pub mod jobs;
pub mod lifecycle;
pub mod queue;
pub mod retention;
pub mod status;
pub mod tasks;
