//! The one way a clip (or a montage's music) is opened: with the demuxer its first bytes prove it is, the `file`
//! protocol only, and no other demuxer allowed even for nested opens. libavformat left to
//! probe freely opens text as a DASH/HLS manifest or a concat list, which can name any file
//! on the worker's disk or a URL.

use std::{ffi::CString, io::Read, path::Path, ptr};

use domain::sniff::{self, AUDIO_ACCEPTED, AUDIO_SNIFF_LEN, SNIFF_LEN};
use ffmpeg_next::{ffi, format, Dictionary};

use super::MediaError;

pub fn open_input(path: &Path) -> Result<format::context::Input, MediaError> {
    let container = sniff::container(&head_of(path, SNIFF_LEN)?).ok_or_else(|| {
        MediaError::Invalid("is not in a video container this service reads".into())
    })?;
    open_with(path, container.demuxer(), container.name())
}

/// Opens a montage's music, with the demuxer its first bytes prove it is, as clips are.
pub fn open_audio(path: &Path) -> Result<format::context::Input, MediaError> {
    let format = sniff::audio(&head_of(path, AUDIO_SNIFF_LEN)?).ok_or_else(|| {
        MediaError::Invalid(format!(
            "is not audio this service reads ({AUDIO_ACCEPTED})"
        ))
    })?;
    open_with(path, format.demuxer(), format.name())
}

fn head_of(path: &Path, len: usize) -> Result<Vec<u8>, MediaError> {
    let mut head = Vec::with_capacity(len);
    std::fs::File::open(path)?
        .take(len as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Opens `path` with the named demuxer alone and the `file` protocol alone.
fn open_with(
    path: &Path,
    demuxer_name: &str,
    name: &str,
) -> Result<format::context::Input, MediaError> {
    let demuxer = CString::new(demuxer_name).expect("static name");
    let path_c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| MediaError::Internal("scratch path holds a NUL byte".into()))?;
    let mut options = Dictionary::new();
    options.set("protocol_whitelist", "file");
    options.set("format_whitelist", demuxer_name);
    // SAFETY: plain libavformat calls on pointers we own; the context is wrapped (and so
    // freed) on success and closed on failure.
    unsafe {
        let format = ffi::av_find_input_format(demuxer.as_ptr());
        if format.is_null() {
            return Err(MediaError::Internal(format!(
                "libavformat has no {demuxer_name} demuxer"
            )));
        }
        let mut context = ptr::null_mut();
        let mut raw_options = options.disown();
        let opened =
            ffi::avformat_open_input(&mut context, path_c.as_ptr(), format, &mut raw_options);
        Dictionary::own(raw_options);
        if opened < 0 {
            return Err(MediaError::Invalid(format!(
                "is not a readable {name} file ({})",
                ffmpeg_next::Error::from(opened)
            )));
        }
        if ffi::avformat_find_stream_info(context, ptr::null_mut()) < 0 {
            ffi::avformat_close_input(&mut context);
            return Err(MediaError::Invalid("holds no readable streams".into()));
        }
        Ok(format::context::Input::wrap(context))
    }
}
