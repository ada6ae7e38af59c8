//! Opens a clip and proves it is decodable video before any rendering starts.

use std::path::Path;

use ffmpeg_next::{self as ffmpeg, codec, format, media, util::frame};
use settings::ClipLimits;

use super::{open::open_input, MediaError};

/// What the renderer needs to know about a clip.
#[derive(Debug, Clone)]
pub struct ClipInfo {
    pub duration_seconds: f64,
    pub width: u32,
    pub height: u32,
    /// Clockwise degrees the picture must turn to display upright: 0, 90, 180 or 270.
    pub rotation: u32,
    pub has_audio: bool,
    pub video_codec: String,
    /// Frames per second as the stream declares them (its average, else its base rate);
    /// 0 when it declares neither.
    pub frame_rate: f64,
}

impl ClipInfo {
    /// A rough measure of the work of decoding the whole clip: pixels times seconds.
    pub fn decode_cost(&self) -> f64 {
        f64::from(self.width) * f64::from(self.height) * self.duration_seconds
    }
}

/// Packets read while looking for a first decodable frame before giving up.
const MAX_PROBE_PACKETS: usize = 500;

pub fn probe(path: &Path, limits: &ClipLimits) -> Result<ClipInfo, MediaError> {
    let invalid = |why: String| MediaError::Invalid(why);
    let mut input = open_input(path)?;
    let streams = input.streams().count();
    if streams > limits.max_streams {
        return Err(invalid(format!(
            "has {streams} streams; the limit is {}",
            limits.max_streams
        )));
    }
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| invalid("contains no video stream".into()))?;
    let index = stream.index();
    let rotation = rotation_of(&stream);
    let frame_rate = [stream.avg_frame_rate(), stream.rate()]
        .into_iter()
        .map(f64::from)
        .find(|fps| fps.is_finite() && *fps > 0.0)
        .unwrap_or(0.0);
    let stream_duration =
        (stream.duration() > 0).then(|| stream.duration() as f64 * f64::from(stream.time_base()));
    let context = codec::context::Context::from_parameters(stream.parameters())?;
    let mut decoder = context
        .decoder()
        .video()
        .map_err(|e| invalid(format!("has a video stream no decoder here supports ({e})")))?;
    check_claims(&decoder, &stream, limits)?;
    let video_codec = decoder
        .codec()
        .map(|c| c.name().to_owned())
        .unwrap_or_default();
    let has_audio = input
        .streams()
        .best(media::Type::Audio)
        .is_some_and(|s| ffmpeg::decoder::find(s.parameters().id()).is_some());
    let container_duration = (input.duration() > 0)
        .then(|| input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE));

    let decoded = first_frame(&mut input, &mut decoder, index)
        .ok_or_else(|| invalid("has no decodable video frames".into()))?;
    let duration_seconds = stream_duration.or(container_duration).unwrap_or(0.0);
    check_duration(duration_seconds, limits)?;
    Ok(ClipInfo {
        duration_seconds,
        width: decoded.width(),
        height: decoded.height(),
        rotation,
        has_audio,
        video_codec,
        frame_rate,
    })
}

/// The first picture of the video stream, reading at most [`MAX_PROBE_PACKETS`] packets.
fn first_frame(
    input: &mut ffmpeg::format::context::Input,
    decoder: &mut ffmpeg::decoder::Video,
    index: usize,
) -> Option<frame::Video> {
    let mut decoded = frame::Video::empty();
    let mut got_frame = false;
    for (packet_stream, packet) in input.packets().take(MAX_PROBE_PACKETS) {
        if packet_stream.index() == index
            && decoder.send_packet(&packet).is_ok()
            && decoder.receive_frame(&mut decoded).is_ok()
        {
            got_frame = true;
            break;
        }
    }
    if !got_frame {
        let _ = decoder.send_eof();
        got_frame = decoder.receive_frame(&mut decoded).is_ok();
    }
    (got_frame && decoded.width() > 0 && decoded.height() > 0).then_some(decoded)
}

fn check_duration(duration_seconds: f64, limits: &ClipLimits) -> Result<(), MediaError> {
    if duration_seconds <= 0.0 {
        return Err(MediaError::Invalid("has no known duration".into()));
    }
    if duration_seconds > limits.max_duration_seconds {
        return Err(MediaError::Invalid(format!(
            "runs {duration_seconds:.0} s; the limit for a clip is {} s",
            limits.max_duration_seconds
        )));
    }
    Ok(())
}

/// Refuses a stream whose header already claims more than the limits allow, before any
/// frame is decoded (a decoder allocates for the claimed size).
fn check_claims(
    decoder: &ffmpeg::decoder::Video,
    stream: &format::stream::Stream,
    limits: &ClipLimits,
) -> Result<(), MediaError> {
    let (width, height) = (decoder.width(), decoder.height());
    if width > limits.max_width || height > limits.max_height {
        return Err(MediaError::Invalid(format!(
            "declares {width}x{height} pictures; the limit is {}x{}",
            limits.max_width, limits.max_height
        )));
    }
    let rate = stream.avg_frame_rate();
    let fps = if rate.denominator() > 0 {
        f64::from(rate)
    } else {
        0.0
    };
    if fps > limits.max_fps {
        return Err(MediaError::Invalid(format!(
            "declares {fps:.0} frames per second; the limit is {}",
            limits.max_fps
        )));
    }
    Ok(())
}

/// The rotation from the stream's display matrix, as the ffmpeg CLI reads it.
pub(crate) fn rotation_of(stream: &format::stream::Stream) -> u32 {
    for side_data in stream.side_data() {
        if side_data.kind() == codec::packet::side_data::Type::DisplayMatrix
            && side_data.data().len() >= 36
        {
            // SAFETY: a display matrix is nine 32-bit integers, checked above.
            let degrees =
                unsafe { ffmpeg::ffi::av_display_rotation_get(side_data.data().as_ptr().cast()) };
            if degrees.is_nan() {
                return 0;
            }
            // libav reports counter-clockwise degrees; normalise to clockwise quarter turns.
            let clockwise = (-degrees).rem_euclid(360.0);
            return ((clockwise / 90.0).round() as u32 % 4) * 90;
        }
    }
    0
}
