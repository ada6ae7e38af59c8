//! Job status reads for pollers, batched without going stale.
//!
//! Every read waits for the next batch query that *starts after the read arrived*, and all
//! reads that arrive while one query runs share the next one. An answer therefore reflects
//! every change committed before its request was made (which includes anything the client
//! could have seen: events and callbacks go out after the commit), while the database sees
//! one query per round trip instead of one per request.
//!
//! A running job's progress within its stage is laid over its row from its Redis mark
//! ([`JobEvents::lay_progress_over`]), read after the row, so no fresher than it.

use std::collections::HashMap;

use diesel::prelude::*;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use db::models::{JobOutputRow, JobRow};
use db::schema::{job_outputs, jobs};
use db::Db;
use domain::error::{ServiceError, ServiceResult};
use domain::identity::AuthUser;

use crate::events::JobEvents;
use crate::jobs::{JobDetails, JobPage, JobService};

/// Reads waiting for a query at most; beyond it a read is refused as unavailable rather
/// than queued without bound.
const MAX_WAITING: usize = 8192;
/// Jobs one query reads at most; the rest wait for the next.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<ServiceResult<Option<JobDetails>>>;

/// Cheap to clone; every clone feeds the same batching loop.
#[derive(Clone)]
pub struct StatusReader {
    requests: mpsc::Sender<(Uuid, Reply)>,
    jobs: JobService,
    events: JobEvents,
}

impl StatusReader {
    /// Starts the reading thread, which keeps one connection of `db`'s pool; it ends with
    /// the last clone.
    pub fn start(db: Db, events: JobEvents) -> std::io::Result<Self> {
        let (requests, waiting) = mpsc::channel(MAX_WAITING);
        let jobs = JobService::new(db.clone());
        std::thread::Builder::new()
            .name("status-reader".into())
            .spawn(move || serve(&db, waiting))?;
        Ok(Self {
            requests,
            jobs,
            events,
        })
    }

    /// The caller's job as committed when this call was made.
    pub async fn get(&self, user: AuthUser, job_id: Uuid) -> ServiceResult<JobDetails> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .try_send((job_id, reply))
            .map_err(|_| ServiceError::unavailable("database", "too many status reads waiting"))?;
        let details = answer
            .await
            .map_err(|_| ServiceError::unavailable("database", "the status reader stopped"))??;
        let mut details = details
            .filter(|d| d.job.user_id == user.id)
            .ok_or_else(|| ServiceError::not_found("Job"))?;
        self.events
            .lay_progress_over(std::slice::from_mut(&mut details.job))
            .await;
        Ok(details)
    }

    /// The caller's jobs, newest first, with their progress.
    pub async fn list(&self, user: AuthUser, limit: i64, offset: i64) -> ServiceResult<JobPage> {
        let mut page = self.jobs.list(user, limit, offset).await?;
        self.events.lay_progress_over(&mut page.jobs).await;
        Ok(page)
    }
}

/// Waits for reads, takes every one queued, answers them from one query, and again. A
/// thread of its own with its own connection: no pool check-out and no hop to a blocking
/// thread per batch.
fn serve(db: &Db, mut waiting: mpsc::Receiver<(Uuid, Reply)>) {
    let mut connection = None;
    while let Some(first) = waiting.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(read) => batch.push(read),
                Err(_) => break,
            }
        }
        let mut ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        // Pollers of one job often arrive together.
        ids.sort_unstable();
        ids.dedup();
        let found = match connection.as_mut() {
            Some(conn) => read_jobs(conn, &ids),
            None => db
                .connection()
                .and_then(|conn| read_jobs(connection.insert(conn), &ids)),
        };
        match found {
            Ok(found) => {
                for (id, reply) in batch {
                    // Several reads of one job share its row. A reader that has gone (its
                    // client disconnected) needs nothing.
                    let _ = reply.send(Ok(found.get(&id).cloned()));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "status read failed");
                // The next batch starts from a fresh connection.
                connection = None;
                for (_, reply) in batch {
                    let _ = reply.send(Err(err.shareable()));
                }
            }
        }
    }
}

/// The jobs and their outputs, from one statement (so one snapshot).
fn read_jobs(conn: &mut db::PgConn, ids: &[Uuid]) -> ServiceResult<HashMap<Uuid, JobDetails>> {
    let rows: Vec<(JobRow, Option<JobOutputRow>)> = jobs::table
        .left_join(job_outputs::table)
        .filter(jobs::id.eq_any(ids))
        .order((jobs::id, job_outputs::format.asc()))
        .select((JobRow::as_select(), Option::<JobOutputRow>::as_select()))
        .load(conn)?;
    let mut found: HashMap<Uuid, JobDetails> = HashMap::with_capacity(rows.len());
    for (job, output) in rows {
        let details = found.entry(job.id).or_insert_with(|| JobDetails {
            job,
            outputs: Vec::new(),
        });
        details.outputs.extend(output);
    }
    Ok(found)
}
