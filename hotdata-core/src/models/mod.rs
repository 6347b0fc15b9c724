//! The API's data types: one per schema of the spec, generated, plus the few whose JSON
//! shape needs hand-written code ([`ColumnDefinition`], [`ColumnProfileDetail`],
//! [`JobResult`], [`JobStatusResponse`]).
//!
//! Conventions that keep them readable and forward-compatible:
//! - Unknown fields in responses are ignored; response structs are `#[non_exhaustive]`.
//! - Every enum is open: known values plus `Other(String)`, so a new server value decodes.
//! - Optional and nullable response fields are plain `Option<T>`.
//! - Nullable optional fields of requests are [`Patch<T>`]: omitted, `null`, or a value.
//! - Result-row cells are [`Cell`]s holding the raw JSON text, so numbers are never rounded.

mod cell;
mod custom;
mod open_enum;
mod patch;
mod rows;

pub use self::cell::{Cell, CellKind};
pub use self::custom::*;
pub use self::patch::Patch;
pub use self::rows::rows_as;
pub use crate::generated::models::*;
