//! Direct uploads: the client sends a multipart upload's parts straight to storage through
//! presigned `UploadPart` URLs, and the service completes it once every part is there.

use aws_sdk_s3::{
    error::{ProvideErrorMetadata, SdkError},
    presigning::PresigningConfig,
    types::{CompletedMultipartUpload, CompletedPart},
};

use crate::{unavailable, Storage, StoreError, StoreResult};

/// A part of a direct upload already in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub number: i32,
    /// Real S3 always lists it; some compatible servers do not (and do not check it).
    pub etag: Option<String>,
    pub size: u64,
}

/// `NoSuchUpload` (completed, aborted or never started) is "not found"; the rest, an outage.
fn upload_error<E, R>(key: &str) -> impl FnOnce(SdkError<E, R>) -> StoreError + '_
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |err| match err.as_service_error().and_then(|e| e.code()) {
        Some("NoSuchUpload") => StoreError::NotFound(key.to_owned()),
        _ => unavailable(err),
    }
}

impl Storage {
    /// Starts a multipart upload to `key`; answers its upload id.
    pub async fn start_multipart(&self, key: &str, content_type: &str) -> StoreResult<String> {
        let started = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(unavailable)?;
        started
            .upload_id()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Invalid("no upload id in the answer".into()))
    }

    /// A time-limited URL the client PUTs part `number` (from 1) to, of exactly `size`
    /// bytes: the length is signed into the URL, so storage refuses any other.
    pub async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        size: u64,
    ) -> StoreResult<String> {
        let presigning = PresigningConfig::expires_in(self.presign_ttl)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(size as i64)
            .presigned(presigning)
            .await
            .map_err(unavailable)?;
        Ok(request.uri().to_owned())
    }

    /// The parts stored so far, by number.
    pub async fn stored_parts(&self, key: &str, upload_id: &str) -> StoreResult<Vec<StoredPart>> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(upload_error(key))?;
            parts.extend(page.parts().iter().filter_map(|part| {
                Some(StoredPart {
                    number: part.part_number()?,
                    etag: part.e_tag().map(str::to_owned),
                    size: part.size()?.max(0) as u64,
                })
            }));
            match page.next_part_number_marker() {
                Some(next) if page.is_truncated() == Some(true) => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        parts.sort_by_key(|part| part.number);
        Ok(parts)
    }

    /// Joins the stored parts into the object.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> StoreResult<()> {
        let parts = parts
            .iter()
            .map(|part| {
                CompletedPart::builder()
                    .part_number(part.number)
                    .set_e_tag(part.etag.clone())
                    .build()
            })
            .collect();
        self.join_parts(key, upload_id, parts).await
    }

    /// Completes a multipart upload from its parts, in order.
    pub(crate) async fn join_parts(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> StoreResult<()> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(upload_error(key))?;
        Ok(())
    }

    /// Drops an unfinished upload and its parts; one already gone is not an error.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(upload_error(key));
        match aborted {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The first `len` bytes of an object (fewer if it is shorter).
    pub async fn head_bytes(&self, key: &str, len: usize) -> StoreResult<Vec<u8>> {
        self.read_range(key, 0, len).await
    }

    /// Up to `len` bytes of an object from `start`.
    pub async fn read_range(&self, key: &str, start: u64, len: usize) -> StoreResult<Vec<u8>> {
        let last = start + (len as u64).saturating_sub(1);
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{last}"))
            .send()
            .await
            .map_err(|err| match err.as_service_error() {
                Some(e) if e.is_no_such_key() => StoreError::NotFound(key.to_owned()),
                _ => unavailable(err),
            })?;
        let bytes = object.body.collect().await.map_err(unavailable)?;
        let mut bytes = bytes.to_vec();
        bytes.truncate(len);
        Ok(bytes)
    }

    /// An object's size in bytes.
    pub async fn size_of(&self, key: &str) -> StoreResult<u64> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| match err.as_service_error() {
                Some(e) if e.is_not_found() => StoreError::NotFound(key.to_owned()),
                _ => unavailable(err),
            })?;
        Ok(head.content_length().unwrap_or(0).max(0) as u64)
    }
}
