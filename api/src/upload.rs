//! Receives a job-creation multipart body, streaming each file part straight into object
//! storage. Nothing is held whole in memory or written to local disk; on any error every
//! object already written for the request is removed.

use actix_multipart::{Field, Multipart};
use domain::clips::clip_key;
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::jobs::{
    input_key, music_key, parse_bool, unknown_field, JobOptionsForm, Library, StoredInput,
    FORM_FIELDS,
};
use domain::sniff;
use futures::TryStreamExt;
use storage::{ObjectWriter, Storage};
use uuid::Uuid;

use crate::error::ApiError;

/// Longest text field accepted; every real value is far shorter.
const MAX_TEXT_FIELD: usize = 1024;

pub struct UploadLimits {
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    /// What the plan's storage quota has left.
    pub quota_bytes: u64,
    pub max_files: usize,
    pub part_bytes: usize,
    pub part_concurrency: usize,
}

/// The parts of one request received so far.
pub struct Upload<'a> {
    storage: &'a Storage,
    limits: UploadLimits,
    job_id: Uuid,
    owner: Uuid,
    pub form: JobOptionsForm,
    /// The files stored so far.
    pub inputs: Vec<StoredInput>,
    /// Library clips named in `clip_ids`, each with its place among all the job's inputs.
    pub clip_ids: Vec<(usize, Uuid)>,
    /// The track sent in `music` is stored (at the job's `music_key`).
    pub music: bool,
    /// The options chose a catalogue track (`music_id`): a `music` file is then refused.
    pub track_chosen: bool,
    /// Files from here on go to the owner's library (`save_to_library`).
    save_to_library: bool,
    total_bytes: u64,
    /// The body itself was broken; the stream must not be read again (actix-multipart
    /// panics if polled after an error).
    stream_failed: bool,
}

impl<'a> Upload<'a> {
    /// The job the clips are stored for.
    pub fn job_id(&self) -> Uuid {
        self.job_id
    }

    pub fn new(storage: &'a Storage, limits: UploadLimits, job_id: Uuid, owner: Uuid) -> Self {
        Self {
            storage,
            limits,
            job_id,
            owner,
            form: JobOptionsForm::default(),
            inputs: Vec::new(),
            clip_ids: Vec::new(),
            music: false,
            track_chosen: false,
            save_to_library: false,
            total_bytes: 0,
            stream_failed: false,
        }
    }

    /// Reads the text fields up to the first file, which it answers (none when the body has
    /// no file): the job's options are checked before any byte of a file is stored. On error,
    /// call [`Upload::discard`] and [`Upload::drain`].
    pub async fn receive_options(
        &mut self,
        multipart: &mut Multipart,
    ) -> Result<Option<Field>, ApiError> {
        while let Some(field) = multipart.try_next().await.map_err(|e| self.broken(e))? {
            let name = field.name().unwrap_or_default().to_owned();
            if matches!(name.as_str(), "files" | "music") {
                return Ok(Some(field));
            }
            let text = self.text(field, &name).await?;
            match name.as_str() {
                "clip_ids" => self.name_clips(&text)?,
                "save_to_library" => self.choose_library(&text)?,
                _ => self.form.set(&name, &text)?,
            }
        }
        Ok(None)
    }

    /// Stores `first` and the rest of the files (clips and the music); `clip_ids` may still
    /// come between them (their place is the order), any other field is refused.
    pub async fn receive_files(
        &mut self,
        first: Field,
        multipart: &mut Multipart,
    ) -> Result<(), ApiError> {
        let mut next = Some(first);
        while let Some(field) = next.take() {
            self.receive_part(field).await?;
            next = multipart.try_next().await.map_err(|e| self.broken(e))?;
        }
        Ok(())
    }

    async fn receive_part(&mut self, field: Field) -> Result<(), ApiError> {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "files" => self.receive_file(field).await,
            "music" => self.receive_music(field).await,
            "clip_ids" => {
                let text = self.text(field, &name).await?;
                Ok(self.name_clips(&text)?)
            }
            known if FORM_FIELDS.contains(&known) => Err(ServiceError::invalid_field(
                known,
                format!("Send {known} before the files: a job's options are checked before any file is stored"),
            )
            .into()),
            unknown => Err(unknown_field(unknown).into()),
        }
    }

    async fn text(&mut self, field: Field, name: &str) -> Result<String, ApiError> {
        read_text(field, name)
            .await
            .inspect_err(|_| self.stream_failed = true)
    }

    /// The place the next input takes; refused past the per-job limit.
    fn next_position(&self, field: &str) -> ServiceResult<usize> {
        let position = self.inputs.len() + self.clip_ids.len();
        if position >= self.limits.max_files {
            return Err(ServiceError::invalid_field(
                field,
                format!("At most {} clips per job", self.limits.max_files),
            ));
        }
        Ok(position)
    }

    /// `clip_ids`: library clip ids, comma-separated; the field may repeat.
    fn name_clips(&mut self, text: &str) -> ServiceResult<()> {
        for raw in text.split(',').map(str::trim).filter(|id| !id.is_empty()) {
            let id = raw.parse::<Uuid>().map_err(|_| {
                ServiceError::invalid_field("clip_ids", format!("{raw:?} is not a clip id"))
            })?;
            let position = self.next_position("clip_ids")?;
            self.clip_ids.push((position, id));
        }
        Ok(())
    }

    /// `save_to_library`: it decides where the files are stored, so it must come first.
    fn choose_library(&mut self, text: &str) -> ServiceResult<()> {
        self.save_to_library = parse_bool("save_to_library", text)?;
        Ok(())
    }

    async fn receive_file(&mut self, field: Field) -> Result<(), ApiError> {
        let position = self.next_position("files")?;
        let label = file_label(&field).unwrap_or_else(|| format!("clip-{}", position + 1));
        let (key, library) = if self.save_to_library {
            let clip = Uuid::now_v7();
            (clip_key(self.owner, clip), Library::Added(clip))
        } else {
            (input_key(self.job_id, position), Library::Outside)
        };
        let (container, size_bytes) = self.store(field, &key, &label, &CLIP).await?;
        self.inputs.push(StoredInput {
            storage_key: key,
            label,
            container: container.to_owned(),
            size_bytes,
            library,
        });
        Ok(())
    }

    /// `music`: the montage's track, one at most, and not with a catalogue `music_id`.
    async fn receive_music(&mut self, field: Field) -> Result<(), ApiError> {
        if self.track_chosen || self.music {
            return Err(ServiceError::invalid_field(
                "music",
                "A montage takes one track: send one `music` file, or a `music_id`, not both",
            )
            .into());
        }
        let label = file_label(&field).unwrap_or_else(|| "The music".to_owned());
        self.store(field, &music_key(self.job_id), &label, &MUSIC)
            .await?;
        self.music = true;
        Ok(())
    }

    /// Streams one file part to `key`: its format and size, or nothing kept.
    async fn store(
        &mut self,
        mut field: Field,
        key: &str,
        label: &str,
        kind: &FileKind,
    ) -> Result<(&'static str, u64), ApiError> {
        let mut writer = self.storage.writer(
            key.to_owned(),
            self.limits.part_bytes,
            self.limits.part_concurrency,
        );
        match self.stream_file(&mut field, &mut writer, label, kind).await {
            Ok(format) => {
                let size_bytes = writer.finish().await?;
                telemetry::metrics::upload_received(size_bytes);
                Ok((format, size_bytes))
            }
            Err(err) => {
                writer.abort().await;
                Err(err)
            }
        }
    }

    /// Copies one part into `writer`, checking limits as bytes arrive and the format as
    /// soon as enough of the head is in.
    async fn stream_file(
        &mut self,
        field: &mut Field,
        writer: &mut ObjectWriter,
        label: &str,
        kind: &FileKind,
    ) -> Result<&'static str, ApiError> {
        let mut head: Vec<u8> = Vec::with_capacity(kind.sniff_len);
        let mut format = None;
        while let Some(chunk) = field.try_next().await.map_err(|e| self.broken(e))? {
            self.total_bytes += chunk.len() as u64;
            self.check_size(writer.written() + chunk.len() as u64, label)?;
            if format.is_none() {
                let wanted = kind.sniff_len - head.len();
                head.extend_from_slice(&chunk[..chunk.len().min(wanted)]);
                if head.len() >= kind.sniff_len {
                    format = Some(kind.recognise(&head, label)?);
                }
            }
            writer.write(&chunk).await?;
        }
        if head.is_empty() {
            return Err(
                ServiceError::invalid_field(kind.field, format!("{label} is empty")).into(),
            );
        }
        match format {
            Some(format) => Ok(format),
            None => Ok(kind.recognise(&head, label)?),
        }
    }

    /// Refuses a file of `file_bytes` so far past the per-file limit, or the request past
    /// the storage quota or the total limit.
    fn check_size(&self, file_bytes: u64, label: &str) -> ServiceResult<()> {
        if file_bytes > self.limits.max_file_bytes {
            return Err(ServiceError::too_large(
                format!(
                    "{label} is larger than the {} MiB per-file limit",
                    self.limits.max_file_bytes >> 20
                ),
                self.limits.max_file_bytes,
            ));
        }
        if self.total_bytes > self.limits.quota_bytes {
            return Err(ServiceError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "The upload would exceed your plan's storage: {} MiB left",
                    self.limits.quota_bytes >> 20
                ),
            )
            .with_data(
                serde_json::json!({ "quota": "storage", "left_bytes": self.limits.quota_bytes }),
            ));
        }
        if self.total_bytes > self.limits.max_total_bytes {
            return Err(ServiceError::too_large(
                format!(
                    "The upload is larger than the {} MiB total limit",
                    self.limits.max_total_bytes >> 20
                ),
                self.limits.max_total_bytes,
            ));
        }
        Ok(())
    }

    fn broken(&mut self, err: actix_multipart::MultipartError) -> ApiError {
        self.stream_failed = true;
        malformed(err)
    }

    /// [`drain`]s the body unless it is broken.
    pub async fn drain(&self, multipart: &mut Multipart) {
        if !self.stream_failed {
            drain(multipart).await;
        }
    }

    /// Removes every object this request stored.
    pub async fn discard(&self) {
        let clips = self.inputs.iter().map(|i| i.storage_key.clone());
        let music = self.music.then(|| music_key(self.job_id));
        let keys: Vec<String> = clips.chain(music).collect();
        if let Err(err) = self.storage.delete(&keys).await {
            tracing::warn!(error = %err, job_id = %self.job_id, "could not remove uploaded inputs");
        }
    }
}

/// Reading past a refusal stops after this many bytes...
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// ...or this long.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads and drops what is left of a refused request's body (up to a bound), so a client
/// still sending receives the error instead of a reset connection. Only for a stream that
/// has not failed.
pub async fn drain(multipart: &mut Multipart) {
    let skip = async {
        let mut skipped = 0u64;
        while let Ok(Some(mut field)) = multipart.try_next().await {
            while let Ok(Some(chunk)) = field.try_next().await {
                skipped += chunk.len() as u64;
                if skipped > DRAIN_LIMIT {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, skip).await;
}

/// What a file part must be: the field it comes in and how its first bytes are recognised.
struct FileKind {
    field: &'static str,
    sniff_len: usize,
    sniff: fn(&[u8]) -> Option<&'static str>,
    /// What the file must be, for the refusal.
    expected: &'static str,
    accepted: &'static str,
}

const CLIP: FileKind = FileKind {
    field: "files",
    sniff_len: sniff::SNIFF_LEN,
    sniff: |head| sniff::container(head).map(sniff::Container::name),
    expected: "a video file",
    accepted: sniff::ACCEPTED,
};

const MUSIC: FileKind = FileKind {
    field: "music",
    sniff_len: sniff::AUDIO_SNIFF_LEN,
    sniff: |head| sniff::audio(head).map(sniff::AudioFormat::name),
    expected: "an audio file",
    accepted: sniff::AUDIO_ACCEPTED,
};

impl FileKind {
    fn recognise(&self, head: &[u8], label: &str) -> ServiceResult<&'static str> {
        (self.sniff)(head).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "{label} is not {} this service can read ({})",
                    self.expected, self.accepted
                ),
            )
            .with_data(serde_json::json!({ "field": self.field, "file": label }))
        })
    }
}

/// The part's file name, kept only as a safe label.
fn file_label(field: &Field) -> Option<String> {
    field
        .content_disposition()
        .and_then(|cd| cd.get_filename())
        .and_then(sanitize_label)
}

async fn read_text(mut field: Field, name: &str) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(malformed)? {
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(ServiceError::invalid_field(name, format!("{name} is too long")).into());
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| ServiceError::invalid_field(name, format!("{name} must be UTF-8 text")).into())
}

fn malformed(err: actix_multipart::MultipartError) -> ApiError {
    match err {
        actix_multipart::MultipartError::ContentTypeMissing
        | actix_multipart::MultipartError::ContentTypeParse
        | actix_multipart::MultipartError::ContentTypeIncompatible => {
            ApiError::from(ServiceError::new(
                ErrorCode::UnsupportedMediaType,
                "Expected Content-Type: multipart/form-data",
            ))
        }
        other => ApiError::bad_request(format!("Malformed multipart body: {other}")),
    }
}

/// Keeps a client file name only as a label: the last path component, printable
/// characters, at most 128 of them.
pub fn sanitize_label(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let label: String = base
        .chars()
        .filter(|c| c.is_alphanumeric() || " ._-()[]".contains(*c))
        .take(128)
        .collect();
    let label = label.trim().trim_start_matches('.').to_owned();
    (!label.is_empty()).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::sanitize_label;

    #[test]
    fn labels_keep_only_a_safe_base_name() {
        assert_eq!(
            sanitize_label("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_label("C:\\clips\\ace <1>.mp4").as_deref(),
            Some("ace 1.mp4")
        );
        assert_eq!(sanitize_label("..").as_deref(), None);
        assert_eq!(
            sanitize_label("\u{202e}evil\u{0}.mp4").as_deref(),
            Some("evil.mp4")
        );
    }
}
