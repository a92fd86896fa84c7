//! Serde types as Microsoft Graph sends them: camelCase, `Option` where Graph may omit or
//! null a property, and every property not modelled kept in `extra`.

mod audit;
mod devices;
mod directory;
mod security;

pub use audit::{DirectoryAudit, SignIn, SignInStatus};
pub use devices::ManagedDevice;
pub use directory::{DirectoryObject, Group, GroupKind, ODataType, SignInActivity, User};
pub use security::Alert;

/// Properties Graph sent that the model does not name, kept as JSON.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// A record as Graph sent it: its JSON text, byte for byte, and the model read from it.
/// Lists of records kept whole (sign-ins, audits, alerts) store `json` as it came, with
/// nothing serialized again. Read from JSON text only (`serde_json::from_str`, a page
/// body): a `serde_json::Value` no longer holds the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw<T> {
    /// The model.
    pub value: T,
    /// The record's JSON text.
    pub json: String,
}

impl<'de, T: serde::de::DeserializeOwned> serde::Deserialize<'de> for Raw<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let value = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
        Ok(Self {
            value,
            json: Box::<str>::from(raw).into_string(),
        })
    }
}
