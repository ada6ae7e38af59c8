//! Walks the job state machine: every operation from every status, on a real database.
//! Where [`Transition`] says an operation applies, the job must end in one of the statuses
//! the table names; everywhere else the operation must be refused and change nothing.

use std::time::Duration;

use db::{scratch::ScratchDatabase, Db};
use diesel::{prelude::*, sql_query, sql_types};
use domain::{
    identity::AuthUser,
    jobs::{FailureCode, JobOptions, JobStatus, Library, OutputFormat, Stage, StoredInput, Style},
};
use engine::{
    jobs::JobService,
    lifecycle::{dispatch_due, Claim, LeaseToken, Origin, Transition},
    queue::RenderJob,
};
use uuid::Uuid;

/// The service's functions that change a job's status.
#[derive(Debug, Clone, Copy)]
enum Operation {
    Dispatch,
    Claim,
    Progress,
    Retry,
    HandBack,
    Cancel,
    StopCancelled,
    Succeed,
    Fail,
    RecoverOrphans,
    Delete,
    Rerun,
}

impl Operation {
    const ALL: [Operation; 12] = [
        Self::Dispatch,
        Self::Claim,
        Self::Progress,
        Self::Retry,
        Self::HandBack,
        Self::Cancel,
        Self::StopCancelled,
        Self::Succeed,
        Self::Fail,
        Self::RecoverOrphans,
        Self::Delete,
        Self::Rerun,
    ];

    /// The transitions of the table this operation carries out.
    fn transitions(self) -> &'static [Transition] {
        match self {
            Self::Dispatch => &[Transition::Dispatch],
            Self::Claim => &[Transition::Claim],
            Self::Progress => &[Transition::Progress],
            Self::Retry => &[Transition::Retry],
            Self::HandBack => &[Transition::HandBack],
            Self::Cancel => &[Transition::Cancel, Transition::RequestCancel],
            Self::StopCancelled => &[Transition::StopCancelled],
            Self::Succeed => &[Transition::Succeed],
            Self::Fail => &[Transition::Fail],
            Self::RecoverOrphans => &[Transition::RecoverOrphan],
            Self::Delete => &[Transition::Delete],
            Self::Rerun => &[Transition::Rerun],
        }
    }
}

struct Walk {
    jobs: JobService,
    scratch: ScratchDatabase,
    user: AuthUser,
}

/// A job of the walk's user, in `status`, and the lease its last claim got.
struct Placed {
    id: Uuid,
    lease: LeaseToken,
}

impl Walk {
    async fn new() -> Self {
        let scratch = ScratchDatabase::create("lifecycle_walk");
        let user = AuthUser {
            id: Uuid::new_v4(),
            expires_at: i64::MAX,
            session: None,
        };
        sql_query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')")
            .bind::<sql_types::Uuid, _>(user.id)
            .bind::<sql_types::Text, _>(format!("{}@example.com", user.id.simple()))
            .execute(&mut scratch.connect())
            .expect("user");
        Self {
            jobs: JobService::new(Db::new(&scratch.url, 2)),
            scratch,
            user,
        }
    }

    /// Creates a job, claims it (so the walk holds a lease), then moves it to `status` the
    /// way the database allows.
    async fn place(&self, status: JobStatus) -> Placed {
        let id = Uuid::new_v4();
        let options = JobOptions {
            target_duration: 30,
            style: Style::Chill,
            formats: vec![OutputFormat::Landscape],
            hud_remove: false,
            music: None,
            facecam: None,
            fps: None,
            title: None,
            watermark: false,
            callback_url: None,
            output_retention: None,
        };
        let input = StoredInput {
            storage_key: format!("jobs/{id}/inputs/00"),
            label: "clip.mp4".into(),
            container: "mp4".into(),
            size_bytes: 1,
            library: Library::Outside,
        };
        self.jobs
            .create(self.user, id, options, vec![input], Origin::default())
            .await
            .expect("create");
        assert_eq!(
            self.status(id),
            Some(JobStatus::Pending),
            "create makes PENDING"
        );
        let dispatch = self.dispatch(id);
        let Claim::Claimed(claimed) = self
            .jobs
            .claim(
                RenderJob {
                    job_id: id,
                    dispatch,
                },
                Duration::from_secs(60),
                3,
            )
            .await
            .expect("claim")
        else {
            panic!("a dispatched PENDING job is claimed");
        };
        self.force(id, status);
        Placed {
            id,
            lease: claimed.lease,
        }
    }

    /// Marks the job dispatched as the relay would; returns the dispatch number.
    fn dispatch(&self, id: Uuid) -> i32 {
        let mut conn = self.scratch.connect();
        let picked = dispatch_due(&mut conn, (100, 100), 100, 100).expect("dispatch");
        picked
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.dispatches)
            .unwrap_or_else(|| self.dispatches(id))
    }

    fn dispatches(&self, id: Uuid) -> i32 {
        use db::schema::jobs;
        jobs::table
            .find(id)
            .select(jobs::dispatches)
            .first(&mut self.scratch.connect())
            .expect("job")
    }

    /// Sets a status directly, with the columns the database's checks tie to it.
    fn force(&self, id: Uuid, status: JobStatus) {
        sql_query(
            "UPDATE jobs SET status = $2,
                finished_at = CASE WHEN $2 IN ('SUCCESS', 'FAILED', 'CANCELLED') THEN now() END,
                error_code = CASE WHEN $2 IN ('FAILED', 'RETRYING') THEN 'RENDER_FAILED' END,
                error_message = CASE WHEN $2 IN ('FAILED', 'RETRYING') THEN 'x' END,
                lease_token = CASE WHEN $2 = 'PROCESSING' THEN lease_token END,
                lease_expires_at = CASE WHEN $2 = 'PROCESSING' THEN lease_expires_at END,
                dispatched_at = CASE WHEN $2 NOT IN ('PENDING', 'RETRYING') THEN dispatched_at END,
                run_after = now()
             WHERE id = $1",
        )
        .bind::<sql_types::Uuid, _>(id)
        .bind::<sql_types::Text, _>(status.as_str())
        .execute(&mut self.scratch.connect())
        .expect("force a status");
    }

    fn status(&self, id: Uuid) -> Option<JobStatus> {
        use db::schema::jobs;
        jobs::table
            .find(id)
            .select(jobs::status)
            .first(&mut self.scratch.connect())
            .optional()
            .expect("read status")
    }

    /// Runs `operation` on the job; whether the service accepted it.
    async fn apply(&self, operation: Operation, job: &Placed) -> bool {
        let (id, lease, jobs) = (job.id, job.lease, &self.jobs);
        match operation {
            Operation::Dispatch => {
                let before = self.dispatches(id);
                self.dispatch(id) > before
            }
            Operation::Claim => {
                let delivery = RenderJob {
                    job_id: id,
                    dispatch: self.dispatch(id),
                };
                let claim = jobs.claim(delivery, Duration::from_secs(60), 3);
                matches!(claim.await.expect("claim"), Claim::Claimed(_))
            }
            Operation::Progress => held(jobs.set_progress(id, lease, Stage::Rendering, 50).await),
            Operation::Retry => {
                let retry =
                    jobs.retry_later(id, lease, FailureCode::RenderFailed, "x", Duration::ZERO);
                held(retry.await)
            }
            Operation::HandBack => held(jobs.hand_back(id, lease).await),
            Operation::Cancel => jobs.cancel(self.user, id).await.is_ok(),
            Operation::StopCancelled => held(jobs.mark_cancelled(id, lease).await),
            Operation::Succeed => held(
                jobs.succeed(id, lease, Vec::new(), Default::default())
                    .await,
            ),
            Operation::Fail => held(jobs.fail(id, lease, FailureCode::RenderFailed, "x").await),
            Operation::RecoverOrphans => {
                sql_query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1 AND status = 'PROCESSING'")
                    .bind::<sql_types::Uuid, _>(id)
                    .execute(&mut self.scratch.connect())
                    .expect("lapse the lease");
                let recovered = jobs.recover_orphans(3, 100).await.expect("recover");
                recovered.iter().any(|job| job.id == id)
            }
            Operation::Delete => jobs.discard(self.user, id).await.is_ok(),
            Operation::Rerun => jobs.rerun(id).await.is_ok(),
        }
    }
}

fn held(outcome: domain::error::ServiceResult<Option<db::models::JobRow>>) -> bool {
    outcome.expect("a fenced write answers").is_some()
}

#[tokio::test]
async fn every_operation_from_every_status_follows_the_transition_table() {
    let walk = Walk::new().await;
    assert!(Transition::Create.from().is_empty());
    assert_eq!(Transition::Create.to(), [JobStatus::Pending]);
    for operation in Operation::ALL {
        for &start in JobStatus::ALL {
            let job = walk.place(start).await;
            assert_eq!(walk.status(job.id), Some(start), "placed in {start}");
            let accepted = walk.apply(operation, &job).await;
            let after = walk.status(job.id);
            let case = format!("{operation:?} from {start}: accepted {accepted}, now {after:?}");
            let applies = operation
                .transitions()
                .iter()
                .find(|t| t.from().contains(&start));
            match applies {
                Some(transition) => {
                    assert!(accepted, "{case}: {transition:?} applies");
                    match after {
                        Some(status) => assert!(transition.to().contains(&status), "{case}"),
                        None => assert!(transition.to().is_empty(), "{case}: removed"),
                    }
                    if let Some(status) = after {
                        assert!(
                            status == start || Transition::is_legal(start, status),
                            "{case}: not in the table"
                        );
                    }
                }
                None => {
                    assert!(
                        !accepted,
                        "{case}: no transition applies, so it must be refused"
                    );
                    assert_eq!(after, Some(start), "{case}: a refusal changes nothing");
                }
            }
        }
    }
}

#[tokio::test]
async fn leases_are_renewed_together_and_each_comes_back_held_cancelled_or_lost() {
    use engine::lifecycle::LeaseState;
    let walk = Walk::new().await;
    let running = walk.place(JobStatus::Processing).await;
    let cancelled = walk.place(JobStatus::Processing).await;
    walk.jobs
        .cancel(walk.user, cancelled.id)
        .await
        .expect("cancel asked");
    let ended = walk.place(JobStatus::Success).await;
    let other = walk.place(JobStatus::Processing).await;
    let leases = vec![
        (running.id, running.lease),
        (cancelled.id, cancelled.lease),
        (ended.id, ended.lease),
        // Another attempt's lease does not hold this job.
        (other.id, running.lease),
    ];
    let states = walk
        .jobs
        .renew_leases(leases, Duration::from_secs(600))
        .await
        .expect("one renewal");
    let held = |cancel_requested| LeaseState::Held { cancel_requested };
    assert_eq!(states[&running.id], held(false));
    assert_eq!(states[&cancelled.id], held(true));
    assert_eq!(states[&ended.id], LeaseState::Lost);
    assert_eq!(states[&other.id], LeaseState::Lost);
    let remaining = |id: Uuid| -> f64 {
        sql_query("SELECT extract(epoch FROM lease_expires_at - now())::float8 AS secs FROM jobs WHERE id = $1")
            .bind::<sql_types::Uuid, _>(id)
            .get_result::<Remaining>(&mut walk.scratch.connect())
            .expect("lease")
            .secs
    };
    assert!(
        remaining(running.id) > 500.0,
        "the renewal extended the lease"
    );
    assert!(
        remaining(other.id) < 100.0,
        "the foreign lease extended nothing"
    );
}

#[derive(QueryableByName)]
struct Remaining {
    #[diesel(sql_type = sql_types::Double)]
    secs: f64,
}
