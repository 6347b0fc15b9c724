//! In-memory state of the emulated service.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde_json::Value as Json;

use crate::results::ResultSet;
use crate::sql::{ColType, Sql};
use crate::util::rfc3339;

/// Everything, behind one mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub api_keys: Vec<String>,
    pub organization_id: String,
    pub workspaces: BTreeMap<String, Workspace>,
    pub ids: IdGen,
}

/// Generates ids and tokens.
#[derive(Debug, Default)]
pub(crate) struct IdGen {
    counter: u64,
}

impl State {
    pub(crate) fn new(api_keys: Vec<String>, organization_id: String) -> State {
        State { api_keys, organization_id, workspaces: BTreeMap::new(), ids: IdGen::default() }
    }
}

impl IdGen {
    /// A fresh id `prefix_<12 digits>`; ids sort in creation order.
    pub(crate) fn id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{:012}", self.counter)
    }

    /// A random-looking secret token.
    pub(crate) fn token(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let n = self.counter.to_le_bytes();
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        format!("{prefix}_{}", crate::util::hex128(&[&n, &t]))
    }
}

/// A point in time, as both a monotonic instant and a wall-clock time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub at: Instant,
    pub wall: SystemTime,
}

impl Stamp {
    pub(crate) fn now() -> Stamp {
        Stamp { at: Instant::now(), wall: SystemTime::now() }
    }

    pub(crate) fn rfc3339(&self) -> String {
        rfc3339(self.wall)
    }

    pub(crate) fn plus(&self, d: Duration) -> Stamp {
        Stamp { at: self.at + d, wall: self.wall + d }
    }

    pub(crate) fn reached(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// A workspace with all of its resources.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub public_id: String,
    pub name: String,
    #[allow(dead_code)]
    pub organization_id: String,
    pub created: Stamp,
    pub databases: BTreeMap<String, Database>,
    /// Deleted databases, kept for lineage (`exists: false`).
    pub tombstones: BTreeMap<String, Database>,
    pub connections: BTreeMap<String, Connection>,
    pub batches: BTreeMap<String, Batch>,
    pub jobs: BTreeMap<String, Job>,
    pub providers: BTreeMap<String, Provider>,
    pub saved: BTreeMap<String, SavedQuery>,
    pub runs: BTreeMap<String, QueryRun>,
    pub results: BTreeMap<String, StoredResult>,
    pub uploads: BTreeMap<String, Upload>,
    pub sql: Sql,
    pub next_table: u64,
    pub query_count: i64,
    pub bytes_scanned: i64,
}

impl Workspace {
    pub(crate) fn new(public_id: String, name: String, organization_id: String) -> Workspace {
        Workspace {
            public_id,
            name,
            organization_id,
            created: Stamp::now(),
            databases: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            connections: BTreeMap::new(),
            batches: BTreeMap::new(),
            jobs: BTreeMap::new(),
            providers: BTreeMap::new(),
            saved: BTreeMap::new(),
            runs: BTreeMap::new(),
            results: BTreeMap::new(),
            uploads: BTreeMap::new(),
            sql: Sql::new(),
            next_table: 0,
            query_count: 0,
            bytes_scanned: 0,
        }
    }

    /// A fresh SQLite table name.
    pub(crate) fn storage_name(&mut self) -> String {
        self.next_table += 1;
        format!("t{}", self.next_table)
    }

    /// Bytes held by managed tables and uploads (approximate).
    pub(crate) fn storage_bytes(&self) -> i64 {
        let uploads: usize = self.uploads.values().map(|u| u.object.as_ref().map_or(0, Object::len)).sum();
        let tables: i64 = self
            .connections
            .values()
            .flat_map(|c| c.schemas.values())
            .flat_map(|s| s.values())
            .map(|t| t.row_count * 16 * t.columns.len().max(1) as i64)
            .sum();
        uploads as i64 + tables
    }
}

/// A database: a default managed catalog plus attached catalogs.
#[derive(Debug, Clone)]
pub(crate) struct Database {
    pub id: String,
    pub name: Option<String>,
    pub default_catalog: String,
    pub default_connection_id: String,
    pub default_schema: String,
    pub expires_at: Option<String>,
    pub created: Stamp,
    pub forked_from: Option<ForkedFrom>,
    #[allow(dead_code)]
    pub description: Option<String>,
    pub attachments: Vec<(String, Option<String>)>,
    pub batch_id: Option<String>,
    pub contexts: BTreeMap<String, (String, String)>, // name -> (content, updated_at)
}

/// Fork provenance.
#[derive(Debug, Clone)]
pub(crate) struct ForkedFrom {
    pub database_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub forked_at: String,
    pub snapshot_id: i64,
}

/// A connection (catalog). Managed ones hold tables.
#[derive(Debug)]
pub(crate) struct Connection {
    pub id: String,
    pub name: String,
    pub source_type: String,
    #[allow(dead_code)]
    pub config: Json,
    /// The database whose default catalog this is.
    pub database_id: Option<String>,
    pub schemas: BTreeMap<String, BTreeMap<String, Table>>,
}

impl Connection {
    pub(crate) fn is_managed(&self) -> bool {
        self.source_type == "managed"
    }
}

/// A managed table.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub name: String,
    pub storage: String,
    pub columns: Vec<(String, ColType)>,
    pub key: Vec<String>,
    pub partition_by: Vec<Json>,
    pub sorted_by: Vec<Json>,
    pub constant_per_key: Vec<String>,
    pub row_count: i64,
    pub last_sync: Option<String>,
    pub locked_until: Option<Stamp>,
    pub indexes: BTreeMap<String, Index>,
}

/// An index on a managed table.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub name: String,
    pub columns: Vec<String>,
    pub index_type: String,
    pub algorithm: Option<String>,
    pub metric: Option<String>,
    pub nlist: Option<i64>,
    pub probe_fraction: Option<f64>,
    pub source_column: Option<String>,
    pub vector_precision: Option<String>,
    pub created: Stamp,
    pub ready: Stamp,
}

/// A bulk database batch.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub id: String,
    pub count: i64,
    pub job_id: String,
    pub expires_at: Option<String>,
    pub idempotency_key: Option<String>,
    pub database_ids: Vec<String>,
}

/// A background job whose status advances with time.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub id: String,
    pub job_type: String,
    pub created: Stamp,
    pub running_at: Stamp,
    pub done_at: Stamp,
    pub outcome: Result<Json, String>,
}

impl Job {
    pub(crate) fn status(&self) -> &'static str {
        if self.done_at.reached() {
            if self.outcome.is_ok() { "succeeded" } else { "failed" }
        } else if self.running_at.reached() {
            "running"
        } else {
            "pending"
        }
    }
}

/// An embedding provider.
#[derive(Debug, Clone)]
pub(crate) struct Provider {
    pub id: String,
    pub name: String,
    pub provider_type: String,
    pub config: Json,
    pub has_secret: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A saved query and its versions.
#[derive(Debug, Clone)]
pub(crate) struct SavedQuery {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category: Option<String>,
    pub table_size: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub versions: Vec<(String, String)>, // (sql, created_at), version = index + 1
}

/// One execution of SQL.
#[derive(Debug, Clone)]
pub(crate) struct QueryRun {
    pub id: String,
    pub database_id: Option<String>,
    pub sql: String,
    pub created: Stamp,
    pub done: Stamp,
    pub ok: bool,
    pub error: Option<String>,
    pub result_id: Option<String>,
    pub row_count: Option<i64>,
    pub execution_time_ms: i64,
    pub saved_query_id: Option<String>,
    pub saved_query_version: Option<i64>,
    pub warning: Option<String>,
}

impl QueryRun {
    pub(crate) fn status(&self) -> &'static str {
        if !self.done.reached() {
            "running"
        } else if self.ok {
            "succeeded"
        } else {
            "failed"
        }
    }
}

/// A stored result.
#[derive(Debug, Clone)]
pub(crate) struct StoredResult {
    pub id: String,
    pub database_id: Option<String>,
    pub created: Stamp,
    pub ready: Stamp,
    pub outcome: Result<Arc<ResultSet>, String>,
}

impl StoredResult {
    pub(crate) fn status(&self) -> &'static str {
        if !self.ready.reached() {
            if Instant::now() + (self.ready.at - self.created.at) / 2 >= self.ready.at {
                "processing"
            } else {
                "pending"
            }
        } else if self.outcome.is_ok() {
            "ready"
        } else {
            "failed"
        }
    }
}

/// Upload modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UploadMode {
    Single,
    Multipart,
}

/// An upload session (or a legacy raw upload).
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub id: String,
    pub finalize_token: String,
    pub mode: UploadMode,
    pub declared: Option<u64>,
    pub part_size: u64,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub parts: BTreeMap<u32, (Bytes, String)>,
    pub object: Option<Object>,
    pub finalized: Option<String>,
    pub created_at: String,
}

impl Upload {
    /// Parts a known-size multipart upload has.
    pub(crate) fn expected_parts(&self) -> Option<u32> {
        self.declared.map(|d| d.div_ceil(self.part_size.max(1)).max(1) as u32)
    }
}

/// An uploaded object: a single PUT's body, or the parts of a multipart upload, joined only
/// when someone reads it (finalize, as in S3, does not copy the data).
#[derive(Debug, Clone)]
pub struct Object {
    parts: std::sync::Arc<Vec<Bytes>>,
    joined: std::sync::Arc<std::sync::OnceLock<Bytes>>,
}

impl Object {
    /// An object of these parts, in order.
    pub fn from_parts(parts: Vec<Bytes>) -> Object {
        Object { parts: std::sync::Arc::new(parts), joined: Default::default() }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Its bytes (joined once, on first read).
    pub fn bytes(&self) -> Bytes {
        self.joined
            .get_or_init(|| match self.parts.as_slice() {
                [one] => one.clone(),
                parts => {
                    let mut all = Vec::with_capacity(self.len());
                    for p in parts {
                        all.extend_from_slice(p);
                    }
                    Bytes::from(all)
                }
            })
            .clone()
    }
}
