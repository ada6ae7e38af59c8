//! One MP4 output: an H.264 encoder of its own, the shared AAC stream, index at the front.

use std::{
    path::{Path, PathBuf},
    sync::mpsc,
    thread::{Scope, ScopedJoinHandle},
};

use ffmpeg_next::{codec, encoder, format, util::frame, Dictionary, Packet, Rational};
use planning::montage::FrameRate;

use super::{
    audio::AacEncoder,
    layout::{Layout, Picture},
    spawn_named, MediaError,
};

/// x264 settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EncoderSettings {
    pub preset: String,
    /// 0 lets libx264 decide.
    pub threads: usize,
}

pub struct OutputFile {
    context: format::context::Output,
    video: encoder::Video,
    video_index: usize,
    audio_index: usize,
    path: PathBuf,
    width: u32,
    height: u32,
    poster_at: i64,
    poster: Option<frame::Video>,
    /// One output frame.
    time_base: Rational,
}

impl OutputFile {
    /// Opens the file for frames at `rate`; the frame with timestamp `poster_at` becomes
    /// its poster.
    pub fn create(
        path: &Path,
        (width, height): (u32, u32),
        audio: &AacEncoder,
        settings: &EncoderSettings,
        (rate, poster_at): (FrameRate, u64),
    ) -> Result<Self, MediaError> {
        let time_base = Rational(1, rate.fps() as i32);
        let mut context = format::output_as(path, "mp4")?;
        let h264 = encoder::find_by_name("libx264")
            .ok_or_else(|| MediaError::Internal("libx264 is not available".into()))?;
        let mut video = codec::context::Context::new_with_codec(h264)
            .encoder()
            .video()?;
        video.set_width(width);
        video.set_height(height);
        video.set_format(format::Pixel::YUV420P);
        video.set_time_base(time_base);
        video.set_frame_rate(Some(Rational(rate.fps() as i32, 1)));
        video.set_aspect_ratio(Rational(1, 1));
        video.set_flags(codec::Flags::GLOBAL_HEADER);
        let mut options = Dictionary::new();
        options.set("preset", &settings.preset);
        options.set("crf", "21");
        options.set("profile", "high");
        if settings.threads > 0 {
            options.set("threads", &settings.threads.to_string());
        }
        let video = video.open_with(options)?;

        let video_index = {
            let mut stream = context.add_stream(h264)?;
            stream.set_parameters(&video);
            stream.set_time_base(time_base);
            stream.index()
        };
        let audio_index = {
            let mut stream = context.add_stream(audio.encoder().codec())?;
            stream.set_parameters(audio.encoder());
            stream.set_time_base(audio.time_base());
            stream.index()
        };
        let mut header = Dictionary::new();
        // Index first, so players start before the whole file has arrived.
        header.set("movflags", "+faststart");
        context.write_header_with(header)?;
        Ok(Self {
            context,
            video,
            video_index,
            audio_index,
            path: path.to_owned(),
            width,
            height,
            poster_at: poster_at as i64,
            poster: None,
            time_base,
        })
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn encode_video(&mut self, frame: &frame::Video) -> Result<(), MediaError> {
        if frame.pts() == Some(self.poster_at) {
            self.poster = Some(frame.clone());
        }
        self.video.send_frame(frame)?;
        self.write_video_packets()
    }

    fn write_video_packets(&mut self) -> Result<(), MediaError> {
        let mut packet = Packet::empty();
        let stream_time_base = self
            .context
            .stream(self.video_index)
            .expect("added above")
            .time_base();
        while self.video.receive_packet(&mut packet).is_ok() {
            packet.set_stream(self.video_index);
            // Each packet is one frame at the constant rate; without this the muxer cannot
            // know the last frame's length and the stream reads one frame short.
            packet.set_duration(1);
            packet.rescale_ts(self.time_base, stream_time_base);
            packet.write_interleaved(&mut self.context)?;
        }
        Ok(())
    }

    pub fn write_audio(&mut self, packet: &Packet, time_base: Rational) -> Result<(), MediaError> {
        let mut packet = packet.clone();
        let stream_time_base = self
            .context
            .stream(self.audio_index)
            .expect("added above")
            .time_base();
        packet.set_stream(self.audio_index);
        packet.rescale_ts(time_base, stream_time_base);
        packet.write_interleaved(&mut self.context)?;
        Ok(())
    }

    /// Flushes the encoder, completes the file (moving the index to the front) and writes
    /// the poster beside it. Returns the video's and the poster's paths.
    pub fn finish(mut self) -> Result<(PathBuf, PathBuf), MediaError> {
        self.video.send_eof()?;
        self.write_video_packets()?;
        self.context.write_trailer()?;
        let poster = self.path.with_extension("jpg");
        let frame = self
            .poster
            .as_ref()
            .ok_or_else(|| MediaError::Internal("the poster frame never came".into()))?;
        super::poster::write_jpeg(frame, &poster)?;
        Ok((self.path, poster))
    }
}

/// Pictures and packets waiting for an output's thread at most (a few frames).
const QUEUED: usize = 8;

enum Work {
    Picture(Picture),
    Audio(Packet, Rational),
}

/// An [`OutputFile`] and its [`Layout`], run on a thread of their own. The render thread
/// decodes and grades each picture once; each output lays it out, joins the segments,
/// encodes (x264 copies each frame and prepares its lookahead in the calling thread) and
/// muxes beside it, so that no single thread sets the pace.
pub struct OutputThread<'scope> {
    size: (u32, u32),
    work: Option<mpsc::SyncSender<Work>>,
    thread: Option<ScopedJoinHandle<'scope, Result<(PathBuf, PathBuf), MediaError>>>,
}

impl<'scope> OutputThread<'scope> {
    /// Starts the thread (called `name`) that lays out, encodes and muxes `output`.
    pub fn spawn(
        scope: &'scope Scope<'scope, '_>,
        name: &str,
        mut output: OutputFile,
        mut layout: Layout,
    ) -> Result<Self, MediaError> {
        let size = output.size();
        let (work, queue) = mpsc::sync_channel(QUEUED);
        let thread = spawn_named(scope, name, move || {
            for work in queue {
                match work {
                    Work::Picture(picture) => {
                        layout.place(picture, &mut |frame| output.encode_video(frame))?;
                    }
                    Work::Audio(packet, time_base) => output.write_audio(&packet, time_base)?,
                }
            }
            output.finish()
        })?;
        Ok(Self {
            size,
            work: Some(work),
            thread: Some(thread),
        })
    }

    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    pub fn place(&mut self, picture: Picture) -> Result<(), MediaError> {
        self.send(Work::Picture(picture))
    }

    pub fn write_audio(&mut self, packet: &Packet, time_base: Rational) -> Result<(), MediaError> {
        self.send(Work::Audio(packet.clone(), time_base))
    }

    fn send(&mut self, work: Work) -> Result<(), MediaError> {
        let sent = self.work.as_ref().map(|queue| queue.send(work).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The thread stopped early: its error is the one to report.
        self.work = None;
        match self.join() {
            Err(err) => Err(err),
            Ok(_) => Err(MediaError::Internal("an output finished early".into())),
        }
    }

    /// Ends the output: flushes the encoder, completes the file and writes its poster.
    /// Returns the video's and the poster's paths.
    pub fn finish(mut self) -> Result<(PathBuf, PathBuf), MediaError> {
        self.work = None;
        self.join()
    }

    fn join(&mut self) -> Result<(PathBuf, PathBuf), MediaError> {
        self.thread
            .take()
            .ok_or_else(|| MediaError::Internal("an output was finished twice".into()))?
            .join()
            .map_err(|_| MediaError::Internal("an output's thread panicked".into()))?
    }
}
