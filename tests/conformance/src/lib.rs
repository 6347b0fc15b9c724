//! Shared harness of the conformance suite: a local HTTP server on 127.0.0.1 whose answers
//! a test scripts, and both native clients pointed at it; real network failures made on
//! 127.0.0.1 for the transport classifier tests ([`faults`]).
#![forbid(unsafe_code)]

pub mod examples;
pub mod faults;
pub mod flows;
pub mod prism;
pub mod scenarios;
pub mod server;
