//! Recognises video containers from their first bytes. Clients' declared content types and
//! file names are not trusted. Each container's magic must stand where that container puts
//! it: a text file that merely contains `free` or `ftyp` at offset 4 is not a QuickTime file.
//! The worker later opens the clip with the one demuxer recognised here, and nothing else.

/// The containers below, as people know them, for messages.
pub const ACCEPTED: &str = "MP4, MOV, WebM, MKV, AVI, FLV, MPEG-TS";

/// Bytes needed to recognise every container below.
pub const SNIFF_LEN: usize = 512;

/// A container the service accepts. Playlists and manifests (DASH, HLS, concat, image
/// sequences) are deliberately absent: they name other files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Mov,
    Webm,
    Mkv,
    Avi,
    Flv,
    Ogg,
    MpegPs,
    MpegTs,
}

impl Container {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Mov => "mov",
            Self::Webm => "webm",
            Self::Mkv => "mkv",
            Self::Avi => "avi",
            Self::Flv => "flv",
            Self::Ogg => "ogg",
            Self::MpegPs => "mpeg",
            Self::MpegTs => "mpegts",
        }
    }

    /// The libavformat demuxer that reads this container (its short name).
    pub fn demuxer(self) -> &'static str {
        match self {
            Self::Mp4 | Self::Mov => "mov",
            Self::Webm | Self::Mkv => "matroska",
            Self::Avi => "avi",
            Self::Flv => "flv",
            Self::Ogg => "ogg",
            Self::MpegPs => "mpeg",
            Self::MpegTs => "mpegts",
        }
    }
}

/// The container the bytes are, if any.
pub fn container(head: &[u8]) -> Option<Container> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if let Some(quicktime) = quicktime(head) {
        return Some(quicktime);
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        // The EBML header's DocType comes within its first few dozen bytes.
        let is_webm = head.iter().take(64).copied().collect::<Vec<u8>>();
        let is_webm = is_webm.windows(4).any(|w| w == b"webm");
        return Some(if is_webm {
            Container::Webm
        } else {
            Container::Mkv
        });
    }
    if at(0, b"RIFF") && at(8, b"AVI ") {
        return Some(Container::Avi);
    }
    // FLV: signature, version 1, then a 9-byte header length.
    if at(0, b"FLV\x01") && at(5, &[0, 0, 0, 9]) {
        return Some(Container::Flv);
    }
    if at(0, b"OggS\x00") {
        return Some(Container::Ogg);
    }
    if at(0, &[0x00, 0x00, 0x01, 0xBA]) {
        return Some(Container::MpegPs);
    }
    // A transport stream is 188-byte packets, each starting with the sync byte.
    if [0, 188, 376].iter().all(|&offset| at(offset, &[0x47])) {
        return Some(Container::MpegTs);
    }
    None
}

/// Top-level QuickTime/ISO-BMFF boxes that may come before the movie.
const LEADING_BOXES: [&[u8; 4]; 5] = [b"free", b"skip", b"wide", b"pnot", b"uuid"];

/// Walks the top-level boxes in `head`: each must have a sane size and a known type, and
/// the walk must reach `ftyp` (first), `moov` or `mdat`.
fn quicktime(head: &[u8]) -> Option<Container> {
    let mut offset = 0usize;
    while let Some(header) = head.get(offset..offset + 8) {
        let size = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
        let kind: &[u8; 4] = header[4..8].try_into().ok()?;
        match kind {
            b"ftyp" if offset == 0 && (16..=1024).contains(&size) => {
                let brand = head.get(8..12)?;
                return Some(if brand == b"qt  " {
                    Container::Mov
                } else {
                    Container::Mp4
                });
            }
            // Size 0 ("to the end of the file") and 1 (a 64-bit size follows) are legal here.
            b"moov" | b"mdat" if size == 0 || size == 1 || size >= 8 => {
                return Some(Container::Mov)
            }
            kind if LEADING_BOXES.contains(&kind) && size >= 8 => offset += size,
            _ => return None,
        }
    }
    None
}

/// The audio formats a montage's uploaded music may be in, as people know them.
pub const AUDIO_ACCEPTED: &str = "MP3, AAC/M4A, Opus/Ogg, FLAC, WAV";

/// Bytes needed to recognise every audio format below: two of the longest MPEG frames.
pub const AUDIO_SNIFF_LEN: usize = 4096;

/// An audio format the service accepts for a montage's music.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    Mp3,
    /// Raw AAC in ADTS frames.
    Aac,
    /// AAC (or ALAC) in an MP4 box structure.
    M4a,
    Ogg,
    Flac,
    Wav,
}

impl AudioFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Aac => "aac",
            Self::M4a => "m4a",
            Self::Ogg => "ogg",
            Self::Flac => "flac",
            Self::Wav => "wav",
        }
    }

    /// The libavformat demuxer that reads this format (its short name).
    pub fn demuxer(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Aac => "aac",
            Self::M4a => "mov",
            Self::Ogg => "ogg",
            Self::Flac => "flac",
            Self::Wav => "wav",
        }
    }
}

/// The audio format the bytes are, if any. An MPEG audio frame must be followed by a second
/// where its header says, so a stray `0xFF` does not pass for MP3.
pub fn audio(head: &[u8]) -> Option<AudioFormat> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if quicktime(head).is_some() {
        return Some(AudioFormat::M4a);
    }
    if at(0, b"OggS\x00") {
        return Some(AudioFormat::Ogg);
    }
    if at(0, b"fLaC") {
        return Some(AudioFormat::Flac);
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some(AudioFormat::Wav);
    }
    // An ID3v2 tag: version 2 to 4, then flags and a syncsafe size.
    if at(0, b"ID3") && matches!(head.get(3), Some(2..=4)) {
        return Some(AudioFormat::Mp3);
    }
    if two_frames(head, adts_frame) {
        return Some(AudioFormat::Aac);
    }
    if two_frames(head, mpeg_frame) {
        return Some(AudioFormat::Mp3);
    }
    None
}

/// Whether `head` starts with a frame `frame` recognises, followed by another.
fn two_frames(head: &[u8], frame: fn(&[u8]) -> Option<usize>) -> bool {
    frame(head)
        .and_then(|len| head.get(len..))
        .and_then(frame)
        .is_some()
}

/// The length of the ADTS frame `bytes` start with: sync word, layer 0, a sampling rate.
fn adts_frame(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..7)?;
    let synced = header[0] == 0xFF && header[1] & 0xF6 == 0xF0;
    let rate = (header[2] >> 2) & 0x0F;
    let len = (usize::from(header[3] & 0x03) << 11)
        | (usize::from(header[4]) << 3)
        | usize::from(header[5] >> 5);
    (synced && rate < 13 && len >= 7).then_some(len)
}

/// The length of the MPEG-1/2 layer III frame `bytes` start with.
fn mpeg_frame(bytes: &[u8]) -> Option<usize> {
    const MPEG1: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const MPEG2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let header = bytes.get(..4)?;
    let version = (header[1] >> 3) & 0x03;
    let layer_iii = (header[1] >> 1) & 0x03 == 0x01;
    if header[0] != 0xFF || header[1] & 0xE0 != 0xE0 || version == 1 || !layer_iii {
        return None;
    }
    let (bitrate, rate) = (
        usize::from(header[2] >> 4),
        usize::from((header[2] >> 2) & 0x03),
    );
    if bitrate == 0 || bitrate == 15 || rate == 3 {
        return None;
    }
    let padding = u32::from((header[2] >> 1) & 0x01);
    let len = match version {
        // MPEG-1: 44.1, 48, 32 kHz; 144 bytes per kbit/s per kHz.
        3 => 144_000 * MPEG1[bitrate] / [44_100, 48_000, 32_000][rate] + padding,
        // MPEG-2 and 2.5: half and quarter rates, half as many samples per frame.
        _ => {
            let rates = if version == 2 {
                [22_050, 24_000, 16_000]
            } else {
                [11_025, 12_000, 8_000]
            };
            72_000 * MPEG2[bitrate] / rates[rate] + padding
        }
    };
    Some(len as usize)
}

#[cfg(test)]
mod tests {
    use super::{audio, container, AudioFormat, Container};

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn recognises_common_containers() {
        let mp4 = boxed(b"ftyp", b"isom\0\0\x02\0isomiso2");
        assert_eq!(container(&mp4), Some(Container::Mp4));
        let mut mov = boxed(b"wide", b"");
        mov.extend(boxed(b"mdat", &[0; 32]));
        assert_eq!(container(&mov), Some(Container::Mov));
        let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x84];
        webm.extend_from_slice(b"webm");
        assert_eq!(container(&webm), Some(Container::Webm));
        let mut ts = vec![0u8; 400];
        for offset in [0, 188, 376] {
            ts[offset] = 0x47;
        }
        assert_eq!(container(&ts), Some(Container::MpegTs));
    }

    #[test]
    fn refuses_other_bytes() {
        assert_eq!(container(b"hello, world, this is not a video"), None);
        assert_eq!(container(b"\x89PNG\r\n\x1a\n0000"), None);
        assert_eq!(container(b""), None);
        assert_eq!(container(b"#EXTM3U\n#EXT-X-VERSION:3\n"), None);
    }

    #[test]
    fn refuses_text_posing_as_quicktime() {
        // A DASH manifest behind a well-formed `free` box: the next "box" is text.
        let mut posing = boxed(b"free", b"");
        posing.extend_from_slice(b"<?xml version=\"1.0\"?><MPD>");
        assert_eq!(container(&posing), None);
        // ASCII where the size belongs: the box would run far past the head.
        assert_eq!(container(b"abcdfree<MPD><Period/></MPD>"), None);
        assert_eq!(container(b"1234ftyp<MPD/>"), None);
        // A lone sync byte is not a transport stream.
        let mut lone = vec![b'G'; 10];
        lone.extend_from_slice(&[b' '; 300]);
        assert_eq!(container(&lone), None);
    }

    #[test]
    fn recognises_audio_formats() {
        assert_eq!(audio(b"ID3\x04\0\0\0\0\0\x21"), Some(AudioFormat::Mp3));
        assert_eq!(audio(b"fLaC\0\0\0\x22"), Some(AudioFormat::Flac));
        assert_eq!(audio(b"RIFF\x24\0\0\0WAVEfmt "), Some(AudioFormat::Wav));
        assert_eq!(audio(b"OggS\0\x02\0\0"), Some(AudioFormat::Ogg));
        let m4a = boxed(b"ftyp", b"M4A \0\0\x02\0M4A mp42isom");
        assert_eq!(audio(&m4a), Some(AudioFormat::M4a));
        // Two MPEG-1 layer III frames at 128 kbit/s, 44.1 kHz: 417 bytes each.
        let mut mp3 = vec![0u8; 417 * 2];
        for frame in mp3.chunks_mut(417) {
            frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        }
        assert_eq!(audio(&mp3), Some(AudioFormat::Mp3));
        // Two ADTS frames of 20 bytes each.
        let mut aac = vec![0u8; 40];
        for frame in aac.chunks_mut(20) {
            frame[..7].copy_from_slice(&[0xFF, 0xF1, 0x50, 0x80, 0x02, 0x9F, 0xFC]);
        }
        assert_eq!(audio(&aac), Some(AudioFormat::Aac));
    }

    #[test]
    fn refuses_bytes_posing_as_audio() {
        // One MPEG frame header with nothing where the next frame should be.
        let mut lone = vec![0xFF, 0xFB, 0x90, 0x00];
        lone.extend_from_slice(&[b'x'; 600]);
        assert_eq!(audio(&lone), None);
        assert_eq!(audio(b"ID3 is what this text begins with"), None);
        assert_eq!(audio(b"RIFF\x24\0\0\0AVI LIST"), None);
        assert_eq!(audio(b"#EXTM3U\nmusic.mp3\n"), None);
        assert_eq!(audio(b""), None);
    }
}
