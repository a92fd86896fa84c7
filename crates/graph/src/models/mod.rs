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
