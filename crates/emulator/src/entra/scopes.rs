//! The v2.0 `scope` parameter: OpenID Connect scopes and resource permissions
//! (`https://graph.microsoft.com/User.Read`, bare `User.Read` meaning Graph, `/.default`).

use std::collections::{BTreeMap, BTreeSet};

use super::error::{AadError, invalid_scope};
use crate::model::resources;

/// The OpenID Connect scopes, which any resource's token request may add.
pub(crate) const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// A parsed `scope`: OIDC scopes and, per resource, the permissions asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scopes {
    /// `openid`, `profile`, `email`, `offline_access` among the requested.
    pub(crate) oidc: BTreeSet<String>,
    /// Resource (canonical audience) to permissions, `.default` included as asked.
    pub(crate) resources: BTreeMap<&'static str, BTreeSet<String>>,
}

/// The canonical resource for an application id URI (or Graph's application id).
pub(crate) fn resource_of(prefix: &str) -> Option<&'static str> {
    let trimmed = prefix.trim_end_matches('/');
    match trimmed.to_ascii_lowercase().as_str() {
        "https://graph.microsoft.com" | resources::GRAPH_APP_ID => Some(resources::GRAPH),
        "https://management.azure.com" | "https://management.core.windows.net" => {
            Some(resources::ARM)
        }
        "https://storage.azure.com" => Some(resources::STORAGE),
        _ => None,
    }
}

/// Parses a space-separated `scope` value; an unknown resource or malformed item is 70011.
pub(crate) fn parse(scope: &str) -> Result<Scopes, AadError> {
    let mut out = Scopes::default();
    for item in scope.split([' ', '+']).filter(|s| !s.is_empty()) {
        let lower = item.to_ascii_lowercase();
        if OIDC_SCOPES.contains(&lower.as_str()) {
            out.oidc.insert(lower);
            continue;
        }
        let (resource, permission) = match item.rfind('/') {
            Some(pos) => (
                resource_of(&item[..pos]).ok_or_else(|| invalid_scope(item))?,
                &item[pos + 1..],
            ),
            None => (resources::GRAPH, item),
        };
        let valid = !permission.is_empty()
            && permission
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(invalid_scope(item));
        }
        out.resources
            .entry(resource)
            .or_default()
            .insert(permission.to_owned());
    }
    Ok(out)
}

/// AADSTS700022: the scopes name more than one resource.
pub(crate) fn multiple_resources(scope: &str) -> AadError {
    AadError::new(
        "invalid_scope",
        700_022,
        format!(
            "The provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
        ),
    )
}

impl Scopes {
    /// The single resource of a token request, if the scopes name at most one.
    pub(crate) fn single_resource(&self, scope: &str) -> Result<Option<&'static str>, AadError> {
        let mut keys = self.resources.keys();
        match (keys.next(), keys.next()) {
            (None, _) => Ok(None),
            (Some(r), None) => Ok(Some(r)),
            _ => Err(multiple_resources(scope)),
        }
    }

    /// Every resource permission in its fully qualified form, then the OIDC scopes.
    pub(crate) fn to_qualified(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .resources
            .iter()
            .flat_map(|(r, perms)| perms.iter().map(move |p| format!("{r}/{p}")))
            .collect();
        out.extend(self.oidc.iter().cloned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_qualified_and_app_id_forms_name_graph() {
        let s = parse("User.Read https://graph.microsoft.com/Group.Read.All 00000003-0000-0000-c000-000000000000/Device.Read.All openid offline_access").unwrap();
        assert_eq!(s.resources.len(), 1);
        assert_eq!(s.resources[resources::GRAPH].len(), 3);
        assert_eq!(s.oidc.len(), 2);
        assert_eq!(s.single_resource("x").unwrap(), Some(resources::GRAPH));
    }

    #[test]
    fn arm_forms_and_errors() {
        let s = parse("https://management.core.windows.net//.default").unwrap();
        assert!(s.resources[resources::ARM].contains(".default"));
        let two = parse("https://graph.microsoft.com/.default https://storage.azure.com/.default")
            .unwrap();
        assert_eq!(two.single_resource("x").unwrap_err().code, 700_022);
        assert_eq!(parse("https://example.com/x").unwrap_err().code, 70011);
        assert_eq!(
            parse("https://graph.microsoft.com/").unwrap_err().code,
            70011
        );
    }
}
