//! Code generated from the OpenAPI spec by `hotdata-core/codegen/generate.py`.
//! CI regenerates it and fails on any difference.

pub(crate) mod models;
pub(crate) mod operations;
pub(crate) mod resources;

#[cfg(feature = "legacy")]
pub(crate) mod legacy;
