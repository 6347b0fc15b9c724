//! The everyday types in one `use`: clients, configuration, errors, the one-call query,
//! request models, upload options and sources, result types and, with the `arrow` feature,
//! the Arrow types and the arrow crates themselves (so naming a `RecordBatch` needs no second
//! dependency pinned to the same arrow version).
//!
//! Each backend crate re-exports this at its root (`hotdata_ureq::Config`,
//! `hotdata_reqwest::QueryRequest`, `hotdata_ureq::arrow_array::RecordBatch`), so one
//! dependency line is enough:
//!
//! ```
//! use hotdata_core::prelude::*;
//!
//! let config = Config::new("key").with_workspace_id("ws_1");
//! let request = QueryRequest::new("select 1");
//! let options = UploadOptions::new().filename("events.csv");
//! # let _ = (config, request, options);
//! ```

pub use crate::client::{AsyncClient, BlockingClient};
pub use crate::config::{Config, FetchLimits};
pub use crate::error::{Error, ErrorKind};
pub use crate::lifecycle::PollPolicy;
pub use crate::models::{Cell, Patch, QueryOutcome, QueryRequest, QueryResponse};
pub use crate::results::{NotReady, ResultFetch, ResultMeta};
pub use crate::retry::RetryPolicy;
pub use crate::sql::{QueryRows, RowSource, Sql};
pub use crate::upload::{
    AsyncUploadSource, CancelToken, ProgressHandle, ResumeState, UploadError, UploadErrorKind, UploadEvent,
    UploadOptions, UploadSource,
};

#[cfg(feature = "arrow-minimal")]
pub use crate::arrow::{ArrowBatchStream, ArrowBatches, ArrowResult};
#[cfg(feature = "arrow-minimal")]
pub use arrow_array::{self, RecordBatch};
#[cfg(feature = "arrow-minimal")]
pub use arrow_schema::{self, SchemaRef};
