//! National clouds: the authority host and the Graph and ARM endpoints and audiences.

use crate::error::Error;

/// A Microsoft cloud, or a custom one (the emulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cloud {
    /// The public cloud (`login.microsoftonline.com`).
    Public,
    /// Azure US Government (`login.microsoftonline.us`).
    UsGovernment,
    /// Azure operated by 21Vianet in China (`login.chinacloudapi.cn`).
    China,
    /// One HTTPS base URL for the authority, Graph and ARM (the tenantlink emulator), with the
    /// public cloud's audiences.
    Custom {
        /// E.g. `https://127.0.0.1:8443`.
        base_url: String,
    },
}

/// The endpoints and audiences of one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// Where Entra ID answers, e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub authority_host: String,
    /// Microsoft Graph's base URL, e.g. `https://graph.microsoft.com`.
    pub graph_endpoint: String,
    /// The audience (resource) of Graph tokens, e.g. `https://graph.microsoft.com`.
    pub graph_audience: String,
    /// Azure Resource Manager's base URL, e.g. `https://management.azure.com`.
    pub arm_endpoint: String,
    /// The audience of ARM tokens, e.g. `https://management.azure.com`.
    pub arm_audience: String,
}

impl Cloud {
    /// This cloud's endpoints.
    pub fn config(&self) -> CloudConfig {
        let (authority, graph, arm) = match self {
            Self::Public => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
                "https://management.azure.com",
            ),
            Self::UsGovernment => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
                "https://management.usgovcloudapi.net",
            ),
            Self::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "https://management.chinacloudapi.cn",
            ),
            Self::Custom { base_url } => {
                let base = base_url.trim_end_matches('/').to_owned();
                return CloudConfig {
                    authority_host: base.clone(),
                    graph_endpoint: base.clone(),
                    graph_audience: "https://graph.microsoft.com".to_owned(),
                    arm_endpoint: base,
                    arm_audience: "https://management.azure.com".to_owned(),
                };
            }
        };
        CloudConfig {
            authority_host: authority.to_owned(),
            graph_endpoint: graph.to_owned(),
            graph_audience: graph.to_owned(),
            arm_endpoint: arm.to_owned(),
            arm_audience: arm.to_owned(),
        }
    }
}

impl From<Cloud> for CloudConfig {
    fn from(cloud: Cloud) -> Self {
        cloud.config()
    }
}

impl Default for CloudConfig {
    fn default() -> Self {
        Cloud::Public.config()
    }
}

impl CloudConfig {
    /// Checks every URL is absolute `https` without a query.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, value) in [
            ("authority_host", &self.authority_host),
            ("graph_endpoint", &self.graph_endpoint),
            ("graph_audience", &self.graph_audience),
            ("arm_endpoint", &self.arm_endpoint),
            ("arm_audience", &self.arm_audience),
        ] {
            let url = reqwest::Url::parse(value)
                .map_err(|e| Error::Config(format!("{name} `{value}` is not a URL: {e}")))?;
            if url.scheme() != "https" {
                return Err(Error::Config(format!("{name} `{value}` must use https")));
            }
            if url.query().is_some() {
                return Err(Error::Config(format!(
                    "{name} `{value}` must have no query"
                )));
            }
        }
        Ok(())
    }

    /// The app-only scope for Graph, `<graph_audience>/.default`.
    pub fn graph_scope(&self) -> String {
        format!("{}/.default", self.graph_audience.trim_end_matches('/'))
    }

    /// The app-only scope for ARM, `<arm_audience>/.default`.
    pub fn arm_scope(&self) -> String {
        format!("{}/.default", self.arm_audience.trim_end_matches('/'))
    }

    /// The token endpoint of a tenant (id, domain, `organizations` or `common`).
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!(
            "{}/{tenant}/oauth2/v2.0/token",
            self.authority_host.trim_end_matches('/')
        )
    }

    /// The authorize endpoint of a tenant.
    pub fn authorize_endpoint(&self, tenant: &str) -> String {
        format!(
            "{}/{tenant}/oauth2/v2.0/authorize",
            self.authority_host.trim_end_matches('/')
        )
    }

    /// The admin consent endpoint of a tenant (`organizations`, `common` or a tenant).
    pub fn admin_consent_endpoint(&self, tenant: &str) -> String {
        format!(
            "{}/{tenant}/adminconsent",
            self.authority_host.trim_end_matches('/')
        )
    }
}

/// Checks a tenant id, domain, `organizations` or `common` is a single safe path segment:
/// ASCII letters, digits, `-` and `.` only (so no `/`, `?`, `#` or `%`), and not made only of
/// dots (`.`, `..`), which would climb the authority's path.
pub(crate) fn validate_tenant(tenant: &str) -> Result<(), Error> {
    if tenant.is_empty()
        || tenant.chars().all(|c| c == '.')
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(Error::Config(format!(
            "tenant `{tenant}` must be a tenant id, a domain, `organizations` or `common`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_clouds_have_their_hosts() {
        let gov = Cloud::UsGovernment.config();
        assert_eq!(gov.authority_host, "https://login.microsoftonline.us");
        assert_eq!(gov.graph_scope(), "https://graph.microsoft.us/.default");
        let cn = Cloud::China.config();
        assert_eq!(cn.arm_endpoint, "https://management.chinacloudapi.cn");
        assert_eq!(cn.graph_endpoint, "https://microsoftgraph.chinacloudapi.cn");
        let custom = Cloud::Custom {
            base_url: "https://127.0.0.1:8443/".into(),
        }
        .config();
        assert_eq!(
            custom.token_endpoint("t"),
            "https://127.0.0.1:8443/t/oauth2/v2.0/token"
        );
        custom.validate().unwrap();
        assert!(
            CloudConfig {
                authority_host: "http://x".into(),
                ..custom
            }
            .validate()
            .is_err()
        );
        assert!(validate_tenant("../x").is_err());
        validate_tenant("contoso.onmicrosoft.com").unwrap();
    }

    #[test]
    fn tenants_that_are_not_one_safe_segment_are_refused() {
        for bad in [
            "", ".", "..", "...", "a/b", "/", "a?b", "a#b", "a%2Fb", "%2e%2e", "a b", "a\\b",
        ] {
            assert!(
                matches!(validate_tenant(bad), Err(Error::Config(_))),
                "{bad:?} must be refused"
            );
        }
        for good in [
            "common",
            "organizations",
            "contoso.onmicrosoft.com",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        ] {
            validate_tenant(good).unwrap();
        }
    }
}
