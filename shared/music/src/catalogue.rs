//! The tracks the service ships: the `immich-memories-music` package (MIT), unpacked into
//! `MUSIC_DIR` by the set-up scripts and the Dockerfile. Its folders name each track's mood;
//! its `LICENSE-MUSIC` lists the tempo and key each track was made at.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use domain::error::{ServiceError, ServiceResult};
use domain::music::{Mood, TrackId};

/// The package's name on PyPI, and what players are told about it.
pub const SOURCE: &str = "immich-memories-music";
pub const LICENCE: &str = "MIT";
const ARTIST: &str = "immich-memories-music (made with ACE-Step 1.5)";

/// One track of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: TrackId,
    pub title: String,
    pub artist: &'static str,
    pub licence: &'static str,
    pub mood: Mood,
    /// The tempo the track was made at, as its package lists it.
    pub bpm: Option<u16>,
    pub duration_seconds: f64,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read the music directory {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not an Ogg Opus file")]
    NotOpus(PathBuf),
    #[error("the music directory {0} holds no tracks")]
    Empty(PathBuf),
}

/// Every track, by mood then id.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    tracks: Vec<Track>,
}

impl Catalogue {
    /// Reads the catalogue under `dir`; `None` is no music (an empty catalogue).
    pub fn load(dir: Option<&Path>) -> Result<Self, CatalogueError> {
        let Some(dir) = dir else {
            return Ok(Self::default());
        };
        let tempos = read_tempos(dir)?;
        let mut tracks = Vec::new();
        for (mood, folder) in mood_folders(dir)? {
            for path in files(&folder)? {
                if let Some(track) = track_at(&path, mood, &tempos)? {
                    tracks.push(track);
                }
            }
        }
        if tracks.is_empty() {
            return Err(CatalogueError::Empty(dir.to_owned()));
        }
        tracks.sort_by(|a, b| (a.mood, &a.id).cmp(&(b.mood, &b.id)));
        Ok(Self { tracks })
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn get(&self, id: &TrackId) -> Option<&Track> {
        self.tracks.iter().find(|t| &t.id == id)
    }

    /// A request's `field` naming a track: its id, when the catalogue has it.
    pub fn find(&self, field: &str, raw: &str) -> ServiceResult<TrackId> {
        let id = TrackId::parse(field, raw)?;
        self.require(field, &id).map(|track| track.id.clone())
    }

    /// The track `id` names, or a refusal of `field` that says where the tracks are listed.
    pub fn require(&self, field: &str, id: &TrackId) -> ServiceResult<&Track> {
        self.get(id).ok_or_else(|| {
            ServiceError::invalid_field(
                field,
                format!(
                    "Unknown {field} {:?}; GET /api/v2/music lists the tracks",
                    id.as_str()
                ),
            )
        })
    }
}

/// The package's `tracks/<mood>/` folders, wherever under `dir` it was unpacked.
fn mood_folders(dir: &Path) -> Result<Vec<(Mood, PathBuf)>, CatalogueError> {
    let mut found = Vec::new();
    for package in files(dir)? {
        let tracks = package.join("tracks");
        if !tracks.is_dir() {
            continue;
        }
        for folder in files(&tracks)? {
            let name = folder.file_name().and_then(|n| n.to_str()).unwrap_or("");
            match name.parse::<Mood>() {
                Ok(mood) => found.push((mood, folder)),
                Err(()) => {
                    tracing::warn!(folder = %folder.display(), "unknown mood folder skipped")
                }
            }
        }
    }
    Ok(found)
}

fn files(dir: &Path) -> Result<Vec<PathBuf>, CatalogueError> {
    let unreadable = |source| CatalogueError::Unreadable {
        path: dir.to_owned(),
        source,
    };
    let mut paths = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    paths.sort();
    Ok(paths)
}

/// A track from its file, if it is one (an `.opus` file named like a track id).
fn track_at(
    path: &Path,
    mood: Mood,
    tempos: &HashMap<String, u16>,
) -> Result<Option<Track>, CatalogueError> {
    if path.extension().and_then(|e| e.to_str()) != Some("opus") {
        return Ok(None);
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let Ok(id) = TrackId::parse("track", stem) else {
        tracing::warn!(path = %path.display(), "track with an unusable name skipped");
        return Ok(None);
    };
    let (head, tail) = ends_of(path).map_err(|source| CatalogueError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let duration_seconds =
        opus_duration(&head, &tail).ok_or_else(|| CatalogueError::NotOpus(path.to_owned()))?;
    Ok(Some(Track {
        title: title_of(stem),
        bpm: tempos.get(stem).copied(),
        id,
        artist: ARTIST,
        licence: LICENCE,
        mood,
        duration_seconds,
        path: path.to_owned(),
    }))
}

/// "energetic_electronic_s411" reads "Energetic Electronic S411".
fn title_of(stem: &str) -> String {
    stem.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The tempo of each track from the package's `LICENSE-MUSIC`, whose table has lines like
/// `calm_acoustic_1.opus   68 bpm  C major   seed 101  [acoustic]`.
fn read_tempos(dir: &Path) -> Result<HashMap<String, u16>, CatalogueError> {
    let mut tempos = HashMap::new();
    for info in files(dir)? {
        let licence = info.join("licenses").join("LICENSE-MUSIC");
        let Ok(text) = std::fs::read_to_string(&licence) else {
            continue;
        };
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [file, bpm, "bpm", ..] = words.as_slice() {
                if let (Some(stem), Ok(bpm)) = (file.strip_suffix(".opus"), bpm.parse()) {
                    tempos.insert(stem.to_owned(), bpm);
                }
            }
        }
    }
    Ok(tempos)
}

/// The start of a file (where Ogg's first page, with `OpusHead`, is) and its end (at
/// least its last page, which is at most 65 307 bytes): all a track's length needs.
fn ends_of(path: &Path) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    use std::io::{Read, Seek, SeekFrom};
    const HEAD: u64 = 4096;
    const TAIL: u64 = 65_536;
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::new();
    (&mut file).take(HEAD).read_to_end(&mut head)?;
    let length = file.metadata()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(TAIL)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok((head, tail))
}

/// An Ogg Opus file's length from its `head` and `tail` bytes: the last page's granule
/// position (48 kHz samples) less the pre-skip its `OpusHead` declares.
pub fn opus_duration(head: &[u8], tail: &[u8]) -> Option<f64> {
    let opus = find(head, b"OpusHead")?;
    let pre_skip = u16::from_le_bytes(head.get(opus + 10..opus + 12)?.try_into().ok()?);
    let last_page = tail.windows(4).rposition(|w| w == b"OggS")?;
    let granule = i64::from_le_bytes(tail.get(last_page + 6..last_page + 14)?.try_into().ok()?);
    let samples = granule - i64::from(pre_skip);
    (samples > 0).then(|| samples as f64 / 48_000.0)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_read_like_words() {
        assert_eq!(
            title_of("energetic_electronic_s411"),
            "Energetic Electronic S411"
        );
        assert_eq!(title_of("calm_acoustic_1"), "Calm Acoustic 1");
    }

    #[test]
    fn a_missing_directory_is_an_error_and_no_directory_is_no_music() {
        assert!(Catalogue::load(None).unwrap().tracks().is_empty());
        let missing = Path::new("/nonexistent/music");
        assert!(matches!(
            Catalogue::load(Some(missing)),
            Err(CatalogueError::Unreadable { .. })
        ));
    }

    #[test]
    fn a_file_that_is_not_ogg_opus_has_no_duration() {
        assert_eq!(
            opus_duration(b"RIFF....WAVEfmt ", b"RIFF....WAVEfmt "),
            None
        );
        assert_eq!(opus_duration(b"", b""), None);
    }
}
