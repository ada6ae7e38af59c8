//! Object storage on any S3-compatible server (path-style addressing, SigV4).

mod direct;

pub use direct::StoredPart;

use std::{path::Path, time::Duration};

use aws_sdk_s3::{
    config::{
        timeout::TimeoutConfig, BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation,
    },
    error::DisplayErrorContext,
    presigning::PresigningConfig,
    primitives::ByteStream,
    types::CompletedPart,
    Client,
};
use bytes::{Bytes, BytesMut};
use tokio::{io::AsyncWriteExt, task::JoinSet};

use domain::error::ServiceError;
use settings::S3Config;

/// What can go wrong with stored objects. Only [`StoreError::Unavailable`] is worth another
/// attempt later.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stored object {0} does not exist")]
    NotFound(String),
    /// The storage server could not be reached, or failed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A local file could not be read or written.
    #[error("local file: {0}")]
    File(#[from] std::io::Error),
    /// A request this client should never have built.
    #[error("invalid storage request: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The one place a storage failure becomes a service error (and so an HTTP status).
impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(key) => ServiceError::not_found(&format!("Stored object {key}")),
            StoreError::Unavailable(why) => ServiceError::unavailable("storage", why),
            other => ServiceError::internal(other),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

#[derive(Clone)]
pub struct Storage {
    client: Client,
    bucket: String,
    presign_ttl: Duration,
}

impl Storage {
    pub fn new(config: &S3Config) -> Self {
        let credentials =
            Credentials::new(&config.access_key, &config.secret_key, None, None, "config");
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(120))
            .build();
        let s3_config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .endpoint_url(&config.endpoint)
            .credentials_provider(credentials)
            .force_path_style(true)
            .timeout_config(timeouts)
            // Plain SigV4 payloads work with every S3-compatible server; TLS and SigV4
            // already protect integrity in transit.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Self {
            client: Client::from_conf(s3_config),
            bucket: config.bucket.clone(),
            presign_ttl: config.presign_ttl,
        }
    }

    /// Creates the bucket unless it exists.
    pub async fn ensure_bucket(&self) -> StoreResult<()> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Whether the bucket answers, for health checks.
    pub async fn check(&self) -> StoreResult<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Starts a streaming upload of one object: parts are sent as they fill, at most
    /// `concurrency` at a time, so memory stays bounded by `part_size * (concurrency + 1)`.
    pub fn writer(&self, key: String, part_size: usize, concurrency: usize) -> ObjectWriter {
        ObjectWriter {
            storage: self.clone(),
            key,
            part_size,
            concurrency,
            buffer: BytesMut::new(),
            upload_id: None,
            in_flight: JoinSet::new(),
            parts: Vec::new(),
            next_part: 1,
            written: 0,
        }
    }

    pub async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> StoreResult<()> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StoreError::File(std::io::Error::other(e)))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub async fn download_to(&self, key: &str, path: &Path) -> StoreResult<u64> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| {
                // A missing object is permanent; only an outage is worth another attempt.
                if err.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                    StoreError::NotFound(key.to_owned())
                } else {
                    unavailable(err)
                }
            })?;
        let mut reader = object.body.into_async_read();
        let mut file = tokio::fs::File::create(path).await?;
        // Reading the body fails with the connection, writing with the disk.
        let copied = tokio::io::copy(&mut reader, &mut file)
            .await
            .map_err(unavailable)?;
        file.flush().await?;
        Ok(copied)
    }

    /// A time-limited GET URL; `filename` becomes the download's suggested name.
    pub async fn presign_get(&self, key: &str, filename: &str) -> StoreResult<String> {
        let presigning = PresigningConfig::expires_in(self.presign_ttl)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{filename}\""))
            .presigned(presigning)
            .await
            .map_err(unavailable)?;
        Ok(request.uri().to_owned())
    }

    /// Deletes objects; missing ones are not an error.
    pub async fn delete(&self, keys: &[String]) -> StoreResult<()> {
        for key in keys {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Keys that start with `prefix` (at most 1 000).
    pub async fn keys_under(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let listing = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(listing
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect())
    }
}

/// One object being written in parts. Call [`ObjectWriter::finish`] to store it or
/// [`ObjectWriter::abort`] to leave nothing behind.
pub struct ObjectWriter {
    storage: Storage,
    key: String,
    part_size: usize,
    concurrency: usize,
    buffer: BytesMut,
    upload_id: Option<String>,
    in_flight: JoinSet<StoreResult<CompletedPart>>,
    parts: Vec<CompletedPart>,
    next_part: i32,
    written: u64,
}

impl ObjectWriter {
    pub fn written(&self) -> u64 {
        self.written
    }

    pub async fn write(&mut self, mut chunk: &[u8]) -> StoreResult<()> {
        self.written += chunk.len() as u64;
        while !chunk.is_empty() {
            if self.buffer.capacity() == 0 {
                // One exact-size allocation per part: growing a shared buffer instead would
                // double allocations while earlier parts are still in flight.
                self.buffer = BytesMut::with_capacity(self.part_size);
            }
            let take = chunk.len().min(self.part_size - self.buffer.len());
            self.buffer.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.buffer.len() == self.part_size {
                let part = std::mem::take(&mut self.buffer).freeze();
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn send_part(&mut self, body: Bytes) -> StoreResult<()> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = self
                    .storage
                    .client
                    .create_multipart_upload()
                    .bucket(&self.storage.bucket)
                    .key(&self.key)
                    .send()
                    .await
                    .map_err(unavailable)?;
                let id = created.upload_id.ok_or_else(|| {
                    StoreError::Unavailable("multipart upload without an id".into())
                })?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        while self.in_flight.len() >= self.concurrency {
            self.collect_one().await?;
        }
        let (client, bucket, key) = (
            self.storage.client.clone(),
            self.storage.bucket.clone(),
            self.key.clone(),
        );
        let number = self.next_part;
        self.next_part += 1;
        self.in_flight.spawn(async move {
            let uploaded = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(unavailable)?;
            Ok(CompletedPart::builder()
                .set_e_tag(uploaded.e_tag)
                .part_number(number)
                .build())
        });
        Ok(())
    }

    async fn collect_one(&mut self) -> StoreResult<()> {
        if let Some(joined) = self.in_flight.join_next().await {
            self.parts
                .push(joined.map_err(|e| StoreError::Invalid(e.to_string()))??);
        }
        Ok(())
    }

    /// Stores what was written; returns its size in bytes.
    pub async fn finish(mut self) -> StoreResult<u64> {
        let Some(upload_id) = self.upload_id.clone() else {
            // Small enough for one request.
            let body = std::mem::take(&mut self.buffer).freeze();
            self.storage
                .client
                .put_object()
                .bucket(&self.storage.bucket)
                .key(&self.key)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(unavailable)?;
            return Ok(self.written);
        };
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer).freeze();
            self.send_part(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        let mut parts = std::mem::take(&mut self.parts);
        parts.sort_by_key(|p| p.part_number);
        self.storage
            .join_parts(&self.key, &upload_id, parts)
            .await?;
        Ok(self.written)
    }

    /// Drops everything written so far.
    pub async fn abort(mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if let Some(upload_id) = &self.upload_id {
            let aborted = self
                .storage
                .client
                .abort_multipart_upload()
                .bucket(&self.storage.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(err) = aborted {
                tracing::warn!(key = %self.key, error = %DisplayErrorContext(err), "could not abort multipart upload");
            }
        }
    }
}
