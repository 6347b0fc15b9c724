//! The legacy `POST /v1/files` upload (feature `legacy`), for servers that cannot presign
//! storage URLs (`501 PRESIGN_UNSUPPORTED` at session creation): the source goes to the API
//! in one streamed request, read while it is sent and never buffered whole. It is sent once,
//! with no retry (a streamed body cannot be replayed).
#![allow(deprecated)]

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;

use super::source::{AsyncRangeSource, AsyncUploadSource, Opened, read_range};
use super::{UploadError, UploadErrorKind, UploadOptions, UploadSource};
use crate::body::{RequestBody, StreamingBody};
use crate::client::{Async, Blocking, Client};
use crate::endpoint::{Endpoint, HeaderWriter, Operation, RawResponse, decode_json};
use crate::legacy::{UPLOAD_FILE, UploadResponse};
use crate::models::{FinalizeUploadResponse, UploadStatus};
use crate::retry::RetryPolicy;

/// `POST /v1/files` with a streamed body and, when known, its `Content-Length`.
#[derive(Debug, Clone)]
struct LegacyUpload {
    /// The body, read while it is sent.
    body: RequestBody,
    /// Its length, when known (`None`: sent chunked).
    len: Option<u64>,
    /// The caller's content type (`application/octet-stream` when none).
    content_type: Option<String>,
}

impl Endpoint for LegacyUpload {
    type Output = UploadResponse;

    fn operation(&self) -> &'static Operation {
        &UPLOAD_FILE
    }

    fn path(&self) -> String {
        "/v1/files".to_owned()
    }

    fn headers(&self, headers: &mut HeaderWriter) {
        if let Some(n) = self.len {
            headers.push("Content-Length", &n.to_string());
        }
        if let Some(t) = &self.content_type {
            headers.push("Content-Type", t);
        }
    }

    fn body(&self) -> Result<Option<(&'static str, RequestBody)>, crate::Error> {
        Ok(Some(("application/octet-stream", self.body.clone())))
    }

    fn parse(&self, response: &RawResponse) -> Result<Self::Output, crate::Error> {
        match response.status.as_u16() {
            201 => decode_json(response),
            _ => Err(crate::Error::from_response(response)),
        }
    }
}

/// A failed legacy upload as an [`UploadErrorKind::Legacy`] error.
fn legacy_error(e: crate::Error) -> UploadError {
    UploadError::from_api(UploadErrorKind::Legacy, "the legacy upload (POST /v1/files) failed", e)
}

/// The legacy answer in the shape of a finalized upload.
pub(crate) fn as_finalized(r: UploadResponse) -> FinalizeUploadResponse {
    FinalizeUploadResponse {
        content_type: r.content_type,
        created_at: r.created_at,
        size_bytes: r.size_bytes,
        status: UploadStatus::from(r.status.as_str()),
        upload_id: r.id,
    }
}

/// The reader and length of an opened blocking source, from where the upload starts.
fn reader_of(opened: Opened) -> Result<(Box<dyn Read + Send>, Option<u64>), UploadError> {
    let seek_error =
        |e: std::io::Error| UploadError::new(UploadErrorKind::SourceIo, format!("seeking the source: {e}"));
    Ok(match opened {
        Opened::File(mut f) => {
            let len = f.metadata().map(|m| m.len()).ok();
            f.seek(SeekFrom::Start(0)).map_err(seek_error)?;
            (Box::new(f), len)
        }
        Opened::Bytes(b) => {
            let len = b.len() as u64;
            (Box::new(Cursor::new(b)), Some(len))
        }
        Opened::Seekable { mut reader, base } => {
            let end = reader.seek(SeekFrom::End(0)).map_err(seek_error)?;
            reader.seek(SeekFrom::Start(base)).map_err(seek_error)?;
            (Box::new(reader), Some(end.saturating_sub(base)))
        }
        Opened::Reader(r) => (r, None),
        Opened::Ranged(_) | Opened::Stream { .. } => {
            return Err(UploadError::new(
                UploadErrorKind::SourceIo,
                "an async source sent by the blocking client",
            ));
        }
    })
}

impl Client<Blocking> {
    /// Sends `source` to the legacy `POST /v1/files` in one streamed request (a reader of
    /// unknown length is sent chunked). For servers answering `501 PRESIGN_UNSUPPORTED`;
    /// [`UploadOptions::legacy_fallback`] makes [`Client::upload_file`] do this itself.
    /// A path is sent with the content type its extension implies
    /// ([`content_type_for`](super::content_type_for)).
    pub fn upload_stream(&self, source: impl Into<UploadSource>) -> Result<UploadResponse, UploadError> {
        let (opened, spec) = Opened::blocking(source.into())?;
        self.upload_stream_opened(opened, spec.content_type)
    }

    /// [`upload_stream`](Self::upload_stream) of a source already opened (the fallback of
    /// [`upload_file`](Self::upload_file), which opened it), sent as `content_type` when
    /// given.
    pub(crate) fn upload_stream_opened(
        &self,
        opened: Opened,
        content_type: Option<String>,
    ) -> Result<UploadResponse, UploadError> {
        if !self.blocking_parts().0.supports_streaming_bodies() {
            return Err(no_streaming());
        }
        let (reader, len) = reader_of(opened)?;
        let body = RequestBody::Streaming(StreamingBody::from_reader(reader, len));
        let upload = LegacyUpload { body, len, content_type };
        self.call(upload).retry(RetryPolicy::none()).send().map_err(legacy_error)
    }
}

impl Client<Async> {
    /// Sends `source` to the legacy `POST /v1/files` in one streamed request (a stream of
    /// unknown length is sent chunked). For servers answering `501 PRESIGN_UNSUPPORTED`;
    /// [`UploadOptions::legacy_fallback`] makes [`Client::upload_file`] do this itself.
    /// A path (or a source read by range that has a file name or type, such as a browser
    /// `File`) is sent with its content type.
    pub async fn upload_stream(
        &self,
        source: impl Into<AsyncUploadSource>,
    ) -> Result<UploadResponse, UploadError> {
        let (opened, spec) = Opened::nonblocking(source.into(), &self.async_parts().1).await?;
        self.upload_stream_opened_async(opened, spec.content_type).await
    }

    /// [`upload_stream`](Self::upload_stream) of a source already opened (the fallback of
    /// [`upload_file`](Self::upload_file), which opened it), sent as `content_type` when
    /// given.
    pub(crate) async fn upload_stream_opened_async(
        &self,
        opened: Opened,
        content_type: Option<String>,
    ) -> Result<UploadResponse, UploadError> {
        if !self.async_parts().0.supports_streaming_bodies() {
            return Err(no_streaming());
        }
        let (stream, len): (crate::body::BodyChunkStream, Option<u64>) = match opened {
            Opened::Bytes(b) => {
                let len = b.len() as u64;
                (Box::pin(OneChunk(Some(b))), Some(len))
            }
            Opened::Ranged(r) => {
                let len = r.len();
                (Box::pin(RangeChunks { source: r, offset: 0, len, pending: None }), Some(len))
            }
            // Nothing was read ahead of a stream before its first part.
            Opened::Stream { stream, .. } => (stream, None),
            Opened::File(_) | Opened::Seekable { .. } | Opened::Reader(_) => {
                return Err(UploadError::new(
                    UploadErrorKind::SourceIo,
                    "a blocking source sent by the async client",
                ));
            }
        };
        let body = RequestBody::Streaming(StreamingBody::from_stream(stream, len));
        let upload = LegacyUpload { body, len, content_type };
        self.call(upload).retry(RetryPolicy::none()).send().await.map_err(legacy_error)
    }
}

/// Whether a failed upload should go to the legacy endpoint instead.
pub(crate) fn wants_fallback(e: &UploadError, options: &UploadOptions) -> bool {
    options.legacy_fallback && e.is_presign_unsupported() && e.upload_id().is_none()
}

/// Bytes in memory as a stream of one chunk.
struct OneChunk(Option<Bytes>);

impl futures_core::Stream for OneChunk {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.take().map(Ok))
    }
}

/// A ranged source read front to back in 1 MiB ranges, one at a time.
struct RangeChunks {
    /// The source.
    source: Arc<dyn AsyncRangeSource>,
    /// Where the next range starts.
    offset: u64,
    /// The source's length.
    len: u64,
    /// The read of the current range, while it runs.
    pending: Option<crate::transport::BoxFuture<'static, std::io::Result<Bytes>>>,
}

impl futures_core::Stream for RangeChunks {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        const CHUNK: u64 = 1024 * 1024;
        if self.pending.is_none() {
            if self.offset >= self.len {
                return Poll::Ready(None);
            }
            let (source, offset, n) = (self.source.clone(), self.offset, CHUNK.min(self.len - self.offset));
            self.pending = Some(Box::pin(async move { read_range(&*source, offset, n).await }));
        }
        let Some(pending) = self.pending.as_mut() else { return Poll::Ready(None) };
        let Poll::Ready(r) = pending.as_mut().poll(cx) else { return Poll::Pending };
        self.pending = None;
        let item = match r {
            Ok(b) if b.is_empty() => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the source ended at byte {} of {}", self.offset, self.len),
            )),
            Ok(b) => {
                self.offset += b.len() as u64;
                Ok(b)
            }
            Err(e) => Err(e),
        };
        if item.is_err() {
            self.offset = self.len;
        }
        Poll::Ready(Some(item))
    }
}

/// The legacy upload on a transport that cannot stream request bodies.
fn no_streaming() -> UploadError {
    UploadError::new(
        UploadErrorKind::Legacy,
        "this transport cannot stream request bodies (`supports_streaming_bodies` is false, as for \
         the browser's fetch), and the legacy upload streams the whole source in one request",
    )
}
