use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// One cell of a JSON result row, kept as the exact JSON text the server sent.
///
/// `DECIMAL(38,x)` values and integers beyond 2^53 survive intact: nothing is parsed into
/// `f64` unless asked for. Read it as text ([`Cell::as_json`]), as a string
/// ([`Cell::as_str`]), or decode it into any type ([`Cell::decode`]).
#[derive(Clone)]
pub struct Cell(Box<RawValue>);

/// The JSON kind of a [`Cell`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl Cell {
    /// A cell from JSON text; `None` if it is not valid JSON.
    pub fn from_json(json: &str) -> Option<Self> {
        RawValue::from_string(json.trim().to_owned()).ok().map(Self)
    }

    /// The cell's JSON text, exactly as received (`12345678901234567890.12`, `"abc"`, `null`).
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// The JSON kind.
    pub fn kind(&self) -> CellKind {
        match self.as_json().as_bytes().first() {
            Some(b'n') => CellKind::Null,
            Some(b't' | b'f') => CellKind::Bool,
            Some(b'"') => CellKind::String,
            Some(b'[') => CellKind::Array,
            Some(b'{') => CellKind::Object,
            _ => CellKind::Number,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        self.kind() == CellKind::Null
    }

    /// The string value of a string cell (unescaped).
    pub fn as_str(&self) -> Option<String> {
        (self.kind() == CellKind::String).then(|| serde_json::from_str(self.as_json()).ok()).flatten()
    }

    /// The text of a number cell, unrounded (`"12345678901234567890.12"`).
    pub fn as_number_text(&self) -> Option<&str> {
        (self.kind() == CellKind::Number).then(|| self.as_json())
    }

    /// Decodes the cell into `T` (`i64`, `f64`, `String`, `Option<_>`, a `serde_json::Value`...).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.as_json())
    }
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl fmt::Debug for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl fmt::Display for Cell {
    /// Strings without quotes, everything else as JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(&s),
            None => f.write_str(self.as_json()),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(Self)
    }
}
