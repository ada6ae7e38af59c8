//! The worker's media code against real libav, on clips the ffmpeg CLI makes
//! (`testkit::media`). The worker as a process, with the API, is tested in `api/tests`.

mod montage;
mod music;
mod probe;
