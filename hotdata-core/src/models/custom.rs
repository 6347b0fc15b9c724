//! Models whose JSON shape is not a plain struct.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::generated::models::{
    BooleanProfileDetail, BulkCreateDatabasesResult, CategoricalProfileDetail, ColumnTypeSpec,
    IndexInfoResponse, JobStatus, JobType, LoadManagedTableResponse, NumericProfileDetail,
    TemporalProfileDetail, TextProfileDetail,
};

/// A column's type in a load request: a type name (`"BIGINT"`), or a spec with precision
/// and scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ColumnDefinition {
    /// A type name.
    Name(String),
    /// A type with options.
    Spec(ColumnTypeSpec),
}

impl From<&str> for ColumnDefinition {
    fn from(s: &str) -> Self {
        Self::Name(s.to_owned())
    }
}

impl From<String> for ColumnDefinition {
    fn from(s: String) -> Self {
        Self::Name(s)
    }
}

impl From<ColumnTypeSpec> for ColumnDefinition {
    fn from(s: ColumnTypeSpec) -> Self {
        Self::Spec(s)
    }
}

/// The profile of one column, chosen by its `type` field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ColumnProfileDetail {
    /// `"type": "categorical"`
    Categorical(CategoricalProfileDetail),
    /// `"type": "text"`
    Text(TextProfileDetail),
    /// `"type": "numeric"`
    Numeric(NumericProfileDetail),
    /// `"type": "temporal"`
    Temporal(TemporalProfileDetail),
    /// `"type": "boolean"`
    Boolean(BooleanProfileDetail),
    /// A profile type this version of the SDK does not know, kept as JSON.
    Other(serde_json::Value),
}

impl ColumnProfileDetail {
    /// The `type` tag.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Categorical(_) => "categorical",
            Self::Text(_) => "text",
            Self::Numeric(_) => "numeric",
            Self::Temporal(_) => "temporal",
            Self::Boolean(_) => "boolean",
            Self::Other(v) => v.get("type").and_then(|t| t.as_str()).unwrap_or(""),
        }
    }
}

fn tagged<T: Serialize, S: Serializer>(tag: &str, value: &T, s: S) -> Result<S::Ok, S::Error> {
    let mut v = serde_json::to_value(value).map_err(serde::ser::Error::custom)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("type".into(), tag.into());
    }
    v.serialize(s)
}

impl Serialize for ColumnProfileDetail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Categorical(v) => tagged("categorical", v, s),
            Self::Text(v) => tagged("text", v, s),
            Self::Numeric(v) => tagged("numeric", v, s),
            Self::Temporal(v) => tagged("temporal", v, s),
            Self::Boolean(v) => tagged("boolean", v, s),
            Self::Other(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ColumnProfileDetail {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        let tag = v.get("type").and_then(|t| t.as_str()).unwrap_or("").to_owned();
        let f = |e: serde_json::Error| D::Error::custom(format!("{tag} profile: {e}"));
        Ok(match tag.as_str() {
            "categorical" => Self::Categorical(serde_json::from_value(v).map_err(f)?),
            "text" => Self::Text(serde_json::from_value(v).map_err(f)?),
            "numeric" => Self::Numeric(serde_json::from_value(v).map_err(f)?),
            "temporal" => Self::Temporal(serde_json::from_value(v).map_err(f)?),
            "boolean" => Self::Boolean(serde_json::from_value(v).map_err(f)?),
            _ => Self::Other(v),
        })
    }
}

/// The result of a finished job; which variant depends on the job's `job_type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobResult {
    /// `create_index`
    Index(IndexInfoResponse),
    /// `managed_load`
    Load(LoadManagedTableResponse),
    /// `bulk_create_databases`
    BulkCreateDatabases(BulkCreateDatabasesResult),
    /// Any other job type, or a result that does not fit its type's model, kept as JSON.
    Other(serde_json::Value),
}

impl JobResult {
    /// Decodes `value` according to `job_type`. A result that does not fit the model of its
    /// job type is kept as [`JobResult::Other`] rather than failing the whole response.
    pub fn from_json(job_type: &JobType, value: serde_json::Value) -> Self {
        fn typed<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Option<T> {
            serde_json::from_value(v.clone()).ok()
        }
        let decoded = match job_type {
            JobType::CreateIndex => typed(&value).map(Self::Index),
            JobType::ManagedLoad => typed(&value).map(Self::Load),
            JobType::BulkCreateDatabases => typed(&value).map(Self::BulkCreateDatabases),
            _ => None,
        };
        decoded.unwrap_or(Self::Other(value))
    }
}

impl Serialize for JobResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Index(v) => v.serialize(s),
            Self::Load(v) => v.serialize(s),
            Self::BulkCreateDatabases(v) => v.serialize(s),
            Self::Other(v) => v.serialize(s),
        }
    }
}

/// A background job and, once it finished, its result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobStatusResponse {
    /// The job id.
    pub id: String,
    /// What the job does.
    pub job_type: JobType,
    /// Where it is.
    pub status: JobStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it completed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Its result, decoded by `job_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
}

impl<'de> Deserialize<'de> for JobStatusResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            id: String,
            job_type: JobType,
            status: JobStatus,
            attempts: i32,
            created_at: String,
            #[serde(default)]
            completed_at: Option<String>,
            #[serde(default)]
            error_message: Option<String>,
            #[serde(default)]
            result: Option<serde_json::Value>,
        }
        let r = Raw::deserialize(d)?;
        let result = r.result.filter(|v| !v.is_null()).map(|v| JobResult::from_json(&r.job_type, v));
        Ok(Self {
            id: r.id,
            job_type: r.job_type,
            status: r.status,
            attempts: r.attempts,
            created_at: r.created_at,
            completed_at: r.completed_at,
            error_message: r.error_message,
            result,
        })
    }
}
