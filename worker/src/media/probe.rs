//! Opens a clip and proves it is decodable video before any rendering starts.

use std::path::Path;

use ffmpeg_next::{self as ffmpeg, codec, format, media, util::frame};

use super::MediaError;

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
}

/// Packets read while looking for a first decodable frame before giving up.
const MAX_PROBE_PACKETS: usize = 500;

pub fn probe(path: &Path) -> Result<ClipInfo, MediaError> {
    let invalid = |why: String| MediaError::Invalid(why);
    let mut input =
        format::input(path).map_err(|e| invalid(format!("is not a readable media file ({e})")))?;
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| invalid("contains no video stream".into()))?;
    let index = stream.index();
    let rotation = rotation_of(&stream);
    let stream_duration =
        (stream.duration() > 0).then(|| stream.duration() as f64 * f64::from(stream.time_base()));
    let context = codec::context::Context::from_parameters(stream.parameters())?;
    let mut decoder = context
        .decoder()
        .video()
        .map_err(|e| invalid(format!("has a video stream no decoder here supports ({e})")))?;
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

    let mut decoded = frame::Video::empty();
    let mut got_frame = false;
    for (packet_stream, packet) in input.packets().take(MAX_PROBE_PACKETS) {
        if packet_stream.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_ok() && decoder.receive_frame(&mut decoded).is_ok() {
            got_frame = true;
            break;
        }
    }
    if !got_frame {
        let _ = decoder.send_eof();
        got_frame = decoder.receive_frame(&mut decoded).is_ok();
    }
    if !got_frame || decoded.width() == 0 || decoded.height() == 0 {
        return Err(invalid("has no decodable video frames".into()));
    }
    let duration_seconds = stream_duration.or(container_duration).unwrap_or(0.0);
    if duration_seconds <= 0.0 {
        return Err(invalid("has no known duration".into()));
    }
    Ok(ClipInfo {
        duration_seconds,
        width: decoded.width(),
        height: decoded.height(),
        rotation,
        has_audio,
        video_codec,
    })
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
