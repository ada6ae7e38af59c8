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

#[cfg(test)]
mod tests {
    use super::{container, Container};

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
}
