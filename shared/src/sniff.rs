//! Recognises video containers from their first bytes. Clients' declared content types and
//! file names are not trusted; the worker's full probe decides what is decodable.

/// Bytes needed to recognise every container below.
pub const SNIFF_LEN: usize = 512;

/// The container the bytes start like, if any.
pub fn container(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(4, b"ftyp") {
        let brand = head.get(8..12).unwrap_or_default();
        return Some(if brand == b"qt  " { "mov" } else { "mp4" });
    }
    if at(4, b"moov") || at(4, b"mdat") || at(4, b"wide") || at(4, b"free") || at(4, b"skip") {
        return Some("mov");
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        let doc_type = head.iter().take(64).copied().collect::<Vec<u8>>();
        let is_webm = doc_type.windows(4).any(|w| w == b"webm");
        return Some(if is_webm { "webm" } else { "mkv" });
    }
    if at(0, b"RIFF") && at(8, b"AVI ") {
        return Some("avi");
    }
    if at(0, b"FLV") {
        return Some("flv");
    }
    if at(0, b"OggS") {
        return Some("ogg");
    }
    if at(0, &[0x00, 0x00, 0x01, 0xBA]) {
        return Some("mpeg");
    }
    if at(0, &[0x47]) && at(188, &[0x47]) {
        return Some("mpegts");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::container;

    #[test]
    fn recognises_common_containers() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom");
        assert_eq!(container(&mp4), Some("mp4"));
        let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x84];
        webm.extend_from_slice(b"webm");
        assert_eq!(container(&webm), Some("webm"));
        let mut ts = vec![0u8; 200];
        ts[0] = 0x47;
        ts[188] = 0x47;
        assert_eq!(container(&ts), Some("mpegts"));
    }

    #[test]
    fn refuses_other_bytes() {
        assert_eq!(container(b"hello, world, this is not a video"), None);
        assert_eq!(container(b"\x89PNG\r\n\x1a\n0000"), None);
        assert_eq!(container(b""), None);
    }
}
