//! The leases of every job this process runs, renewed together: one statement per renewal
//! for the whole process, however many jobs it runs, instead of one per job. A renewal also
//! brings each job's cancellation, and a lease found lost stops its job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::error::ServiceError;
use engine::jobs::JobService;
use engine::lifecycle::{LeaseState, LeaseToken};
use engine::tasks::{Pass, Task};
use telemetry::metrics;
use uuid::Uuid;

use crate::stop::{Stop, StopReason};

/// The running jobs' leases, and how to stop each job.
#[derive(Default)]
pub struct Leases {
    held: Mutex<HashMap<Uuid, (LeaseToken, Arc<Stop>)>>,
}

/// A job's place among the renewed leases, given up when dropped (the attempt is over).
pub(crate) struct Held<'a> {
    leases: &'a Leases,
    job_id: Uuid,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.leases.lock().remove(&self.job_id);
    }
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (LeaseToken, Arc<Stop>)>> {
        self.held.lock().expect("no holder panics")
    }

    /// Renews `lease` with the others until the returned guard is dropped.
    pub(crate) fn hold(&self, job_id: Uuid, lease: LeaseToken, stop: Arc<Stop>) -> Held<'_> {
        self.lock().insert(job_id, (lease, stop));
        Held {
            leases: self,
            job_id,
        }
    }

    fn snapshot(&self) -> Vec<(Uuid, LeaseToken)> {
        self.lock()
            .iter()
            .map(|(id, (lease, _))| (*id, *lease))
            .collect()
    }

    /// Stops the jobs the renewal found cancelled or lost.
    fn apply(&self, states: HashMap<Uuid, LeaseState>, round_trip: Duration) {
        let held = self.lock();
        for (job_id, state) in states {
            let Some((_, stop)) = held.get(&job_id) else {
                continue; // Ended while the renewal ran: its lease went with it, not lost.
            };
            metrics::lease_renewed(round_trip, state != LeaseState::Lost);
            match state {
                LeaseState::Held {
                    cancel_requested: true,
                } => stop.request(StopReason::Cancelled),
                LeaseState::Held { .. } => {}
                LeaseState::Lost => stop.request(StopReason::LeaseLost),
            }
        }
    }
}

/// The background task renewing a process's leases every `ENGINE_LEASE_RENEW_…` period.
pub struct LeaseRenewal {
    pub leases: Arc<Leases>,
    pub jobs: JobService,
    pub lease_for: Duration,
}

impl Task for LeaseRenewal {
    const NAME: &'static str = "lease renewal";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        let leases = self.leases.snapshot();
        if leases.is_empty() {
            return Ok(Pass::Idle);
        }
        let asked = Instant::now();
        // The lease outlives a database blip; if the blip outlives the lease, the next
        // renewal finds it lost.
        let states = self.jobs.renew_leases(leases, self.lease_for).await?;
        self.leases.apply(states, asked.elapsed());
        Ok(Pass::Idle)
    }
}
