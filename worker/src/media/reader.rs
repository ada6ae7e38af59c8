//! Reads a clip's pictures for the segments the plan takes from it, in order, decoding as
//! little as possible: a segment close after the previous one continues the decode instead
//! of seeking back to a keyframe, and frames no segment shows are skipped when nothing
//! refers to them (the run-up from a keyframe, every other frame of a 60 fps clip).

use ffmpeg_next::{codec, codec::discard::Discard, decoder, ffi, format, media, util::frame};

use super::{open::open_input, video::FrameSelector, MediaError};

/// Where a clip's timeline starts (seconds) and the index of its video stream.
pub fn video_origin(input: &format::context::Input) -> Result<(usize, f64, f64), MediaError> {
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| MediaError::Invalid("has no video".into()))?;
    let time_base = f64::from(stream.time_base());
    let origin = match stream.start_time() {
        ffi::AV_NOPTS_VALUE => 0.0,
        start => start as f64 * time_base,
    };
    Ok((stream.index(), time_base, origin))
}

/// Seeks to the keyframe at or before `start` seconds into the clip (decoding then walks
/// up to it). A failed seek decodes from the beginning instead.
pub fn seek_to(input: &mut format::context::Input, origin: f64, start: f64) {
    if start > 0.0 {
        let target = ((origin + start) * f64::from(ffi::AV_TIME_BASE)) as i64;
        if let Err(err) = input.seek(target, ..target) {
            tracing::debug!(error = %err, "seek failed; decoding from the start");
        }
    }
}

/// One clip's video, open across the consecutive segments taken from it.
pub struct ClipReader {
    input: format::context::Input,
    decoder: decoder::Video,
    index: usize,
    time_base: f64,
    origin: f64,
    /// How long each frame shows, for a constant-rate stream whose container says.
    frame_duration: Option<f64>,
    /// Time of the last video packet read; `None` right after opening or seeking.
    position: Option<f64>,
    /// The decoder was drained at the end of the stream: only a seek brings frames again.
    ended: bool,
    /// The newest decoded frame when the previous segment completed; the next segment may
    /// need it for its first slot when it continues the decode.
    carried: Option<(frame::Video, f64)>,
}

impl ClipReader {
    pub fn open(path: &std::path::Path) -> Result<Self, MediaError> {
        let input = open_input(path)?;
        let (index, time_base, origin) = video_origin(&input)?;
        let stream = input.stream(index).expect("index from the same input");
        let rate = stream.avg_frame_rate();
        let frame_duration =
            (rate.numerator() > 0 && rate.denominator() > 0).then(|| f64::from(rate.invert()));
        let mut context = codec::context::Context::from_parameters(stream.parameters())?;
        context.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let decoder = context.decoder().video()?;
        Ok(Self {
            input,
            decoder,
            index,
            time_base,
            origin,
            frame_duration,
            position: None,
            ended: false,
            carried: None,
        })
    }

    /// Decodes `selector`'s segment and hands it each frame to show. `next_start` is where
    /// the following segment of this clip starts, if one follows: frames it may show are
    /// decoded even when this segment does not need them.
    pub fn read_segment(
        &mut self,
        selector: &mut FrameSelector,
        next_start: Option<f64>,
        emit: &mut impl FnMut(&mut frame::Video, u32) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        self.reposition(selector.start());
        if let Some((frame, time)) = self.carried.take() {
            selector.offer(frame, time, &mut *emit)?;
        }
        if self.drain(selector, emit)? {
            self.carried = selector.take_newest();
            return Ok(());
        }
        while let Some((stream, packet)) = self.input.packets().next() {
            if stream.index() != self.index {
                continue;
            }
            let time = packet
                .pts()
                .map(|pts| pts as f64 * self.time_base - self.origin);
            self.position = time.or(self.position);
            let wanted = match (time, self.frame_duration) {
                (Some(time), Some(duration)) => {
                    selector.wants(time, duration)
                        || next_start.is_some_and(|next| time + duration > next)
                }
                _ => true,
            };
            self.decoder.skip_frame(if wanted {
                Discard::Default
            } else {
                Discard::NonReference
            });
            // A corrupt packet loses a frame, not the job; the selector repeats its neighbour.
            if self.decoder.send_packet(&packet).is_ok() && self.drain(selector, emit)? {
                // The newest frame may be the next segment's first; whatever the decoder
                // still holds comes out then.
                self.carried = selector.take_newest();
                return Ok(());
            }
        }
        self.ended = true;
        let _ = self.decoder.send_eof();
        self.drain(selector, emit)?;
        selector.finish(emit)
    }

    /// Gets ready to decode from `start`: continues when the keyframe a seek would land on
    /// is already behind the decode (a seek would decode that stretch again), else seeks.
    fn reposition(&mut self, start: f64) {
        let continues = match (self.ended, self.position) {
            (false, Some(position)) => self.keyframe_before(start).is_some_and(|k| k <= position),
            _ => false,
        };
        if !continues {
            self.decoder.flush();
            self.carried = None;
            self.ended = false;
            seek_to(&mut self.input, self.origin, start);
            self.position = None;
        }
    }

    /// The time of the last keyframe at or before `start`, from the container's index.
    fn keyframe_before(&mut self, start: f64) -> Option<f64> {
        let timestamp = ((self.origin + start) / self.time_base).floor() as i64;
        let stream = self.input.stream(self.index)?;
        // SAFETY: the stream belongs to our open input; the entry is read before any other
        // call on the input can change its index.
        let entry = unsafe {
            ffi::avformat_index_get_entry_from_timestamp(
                stream.as_ptr().cast_mut(),
                timestamp,
                ffi::AVSEEK_FLAG_BACKWARD,
            )
            .as_ref()
        }?;
        Some(entry.timestamp as f64 * self.time_base - self.origin)
    }

    /// Hands every frame the decoder has ready to the selector, timed from the clip's start;
    /// whether the segment has all its frames.
    fn drain(
        &mut self,
        selector: &mut FrameSelector,
        emit: &mut impl FnMut(&mut frame::Video, u32) -> Result<(), MediaError>,
    ) -> Result<bool, MediaError> {
        let mut decoded = frame::Video::empty();
        while !selector.is_done() && self.decoder.receive_frame(&mut decoded).is_ok() {
            let time = decoded
                .timestamp()
                .map_or(0.0, |ts| ts as f64 * self.time_base - self.origin);
            selector.offer(
                std::mem::replace(&mut decoded, frame::Video::empty()),
                time,
                &mut *emit,
            )?;
        }
        Ok(selector.is_done())
    }
}
