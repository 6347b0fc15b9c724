//! Helpers shared by the examples.
#![forbid(unsafe_code)]

/// The backend an example runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Blocking, over ureq.
    Ureq,
    /// Async, over reqwest and tokio.
    Reqwest,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ureq" => Ok(Self::Ureq),
            "reqwest" => Ok(Self::Reqwest),
            other => Err(format!("unknown backend `{other}` (expected ureq or reqwest)")),
        }
    }
}

/// The README's code blocks, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
