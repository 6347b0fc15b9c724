use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A tri-state request field: leave it out, send `null`, or send a value.
///
/// In an update, [`Patch::Omit`] leaves the server's value unchanged, [`Patch::Null`]
/// clears it, and [`Patch::Value`] sets it. Fields of this type are skipped when omitted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Patch<T> {
    /// Not sent: the server keeps its value.
    #[default]
    Omit,
    /// Sent as `null`: the server clears the value.
    Null,
    /// Sent as this value.
    Value(T),
}

impl<T> Patch<T> {
    /// True for [`Patch::Omit`] (used by serde to skip the field).
    pub fn is_omitted(&self) -> bool {
        matches!(self, Self::Omit)
    }

    /// The value, if one is set.
    pub fn as_value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<T> From<T> for Patch<T> {
    fn from(v: T) -> Self {
        Self::Value(v)
    }
}

impl<T> From<Option<T>> for Patch<T> {
    /// `Some(v)` sets the value, `None` sends `null`.
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Self::Value)
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => v.serialize(s),
            Self::Omit | Self::Null => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    /// A present field decodes as `Null` or `Value`; an absent one (with `#[serde(default)]`)
    /// stays `Omit`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.into())
    }
}
