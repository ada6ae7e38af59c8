//! Poster images: one frame of an output as a JPEG.

use std::path::Path;

use ffmpeg_next::{
    codec, encoder, ffi,
    software::scaling,
    util::{format::Pixel, frame},
    Packet, Rational,
};

use planning::montage::FrameRate;

use super::{
    video::{upright_chain, FilterChain},
    MediaError,
};

/// The longer side of a clip's thumbnail, in pixels.
const THUMBNAIL_SIZE: u32 = 320;

/// A clip's thumbnail: `picture` turned upright, shrunk to fit a [`THUMBNAIL_SIZE`] square.
pub fn write_thumbnail(
    picture: &frame::Video,
    rotation: u32,
    path: &Path,
) -> Result<(), MediaError> {
    let fit = format!(
        "scale={THUMBNAIL_SIZE}:{THUMBNAIL_SIZE}:force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1"
    );
    let spec = upright_chain(picture, None, rotation, Some(&fit), false)
        .expect("a chain with a scale step");
    // One picture: no filter here depends on time, so any rate does.
    let mut chain = FilterChain::new(picture, &spec, FrameRate::Thirty)?;
    let mut input = super::video::share(picture)?;
    chain.push(&mut input, 0)?;
    let mut small = frame::Video::empty();
    if !chain.pull(&mut small) {
        return Err(MediaError::Internal(
            "the thumbnail filter gave no picture".into(),
        ));
    }
    write_jpeg(&small, path)
}

/// JPEG quantiser (2 is best, 31 worst); 3 is visually lossless for a thumbnail.
const QUALITY: i32 = 3;

pub fn write_jpeg(picture: &frame::Video, path: &Path) -> Result<(), MediaError> {
    let (width, height) = (picture.width(), picture.height());
    // JPEG wants full-range YUV; the video frames are limited range.
    let mut full_range = frame::Video::empty();
    scaling::Context::get(
        picture.format(),
        width,
        height,
        Pixel::YUVJ420P,
        width,
        height,
        scaling::Flags::BICUBIC,
    )?
    .run(picture, &mut full_range)?;
    let jpeg = encoder::find(codec::Id::MJPEG)
        .ok_or_else(|| MediaError::Internal("no JPEG encoder".into()))?;
    let mut context = codec::context::Context::new_with_codec(jpeg)
        .encoder()
        .video()?;
    context.set_width(width);
    context.set_height(height);
    context.set_format(Pixel::YUVJ420P);
    context.set_time_base(Rational(1, 1));
    context.set_flags(codec::Flags::QSCALE);
    context.set_global_quality(QUALITY * ffi::FF_QP2LAMBDA);
    let mut encoder = context.open_as(jpeg)?;
    // SAFETY: the frame is ours and valid; the field is plain data read by the encoder.
    unsafe { (*full_range.as_mut_ptr()).quality = QUALITY * ffi::FF_QP2LAMBDA };
    full_range.set_pts(Some(0));
    encoder.send_frame(&full_range)?;
    encoder.send_eof()?;
    let mut packet = Packet::empty();
    encoder.receive_packet(&mut packet)?;
    std::fs::write(path, packet.data().unwrap_or_default())?;
    Ok(())
}
