//! Everything libav: probing clips and rendering montages, in-process through ffmpeg-next.

pub mod analyze;
mod audio;
mod layout;
mod loudness;
pub mod music;
mod open;
mod output;
mod poster;
pub mod probe;
mod reader;
pub mod render;
mod sequence;
mod video;

use std::sync::{atomic::Ordering, Once};

/// A clip or output the media code could not handle. `Invalid` is the client's problem
/// (the file is not usable video); `Internal` is ours.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{0}")]
    Invalid(String),
    #[error("render failed: {0}")]
    Internal(String),
    /// The job was told to stop (cancelled or out of time) while rendering.
    #[error("stopped")]
    Stopped,
}

impl From<ffmpeg_next::Error> for MediaError {
    fn from(err: ffmpeg_next::Error) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<std::io::Error> for MediaError {
    fn from(err: std::io::Error) -> Self {
        Self::Internal(err.to_string())
    }
}

/// Initialises libav once per process and keeps its logging to errors only.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        ffmpeg_next::init().expect("libav initialises");
        ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Error);
    });
}

/// Runs `work(i)` for every index in `order` on as many threads (named `name`) as the
/// machine has cores (the first indices first: put the longest work there), and returns
/// the results by index.
pub fn in_parallel<T: Send>(
    name: &str,
    order: &[usize],
    work: impl Fn(usize) -> T + Sync,
) -> Result<Vec<T>, MediaError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(order.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::with_capacity(order.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            spawn_named(scope, name, || {
                while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = work(index);
                    done.lock().expect("no worker panics").push((index, result));
                }
            })?;
        }
        Ok::<_, MediaError>(())
    })?;
    let mut done = done.into_inner().expect("no worker panics");
    done.sort_by_key(|(index, _)| *index);
    Ok(done.into_iter().map(|(_, result)| result).collect())
}

/// Starts `work` on a thread of `scope` called `name`, which `top -H` and profiles show
/// (threads libav starts from it inherit the name).
pub fn spawn_named<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    work: impl FnOnce() -> T + Send + 'scope,
) -> Result<std::thread::ScopedJoinHandle<'scope, T>, MediaError> {
    Ok(std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(scope, work)?)
}
