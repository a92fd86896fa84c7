//! Listing: a `Stream` of pages that follows `@odata.nextLink` exactly as Graph gives it,
//! asks for each endpoint's documented maximum page size, re-sends the headers the service
//! needs (`ConsistencyLevel: eventual`) on every page and gets a fresh token before each.
//! Each next page is requested as soon as a page is read. A listing ends with every page or
//! with an error: never short.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::client::{GraphClient, redact_link};
use crate::error::Error;
use crate::http::{Answer, Call};
use crate::models::{
    Alert, DirectoryAudit, DirectoryObject, Group, ManagedDevice, Raw, SignIn, User,
};

/// One page of a listing. Its Debug shows the links without their queries (which hold
/// `$skiptoken` and `$deltatoken`).
#[derive(Clone)]
pub struct Page<T> {
    /// The objects on this page.
    pub items: Vec<T>,
    /// The link to the next page, if any (already followed by the stream).
    pub next_link: Option<String>,
    /// On the last page of a delta round, the link to store for the next round.
    pub delta_link: Option<String>,
    /// `@odata.count`, when `$count=true` was asked.
    pub count: Option<u64>,
    /// Size in bytes of the response body the page was read from: what reading it held at
    /// once besides the objects, for callers that budget their memory by page.
    pub body_len: usize,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Page<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("items", &self.items)
            .field("next_link", &self.next_link.as_deref().map(redact_link))
            .field("delta_link", &self.delta_link.as_deref().map(redact_link))
            .field("count", &self.count)
            .field("body_len", &self.body_len)
            .finish()
    }
}

/// Pages of a listing, in order; an `Err` ends it.
pub type PageStream<T> = Pin<Box<dyn Stream<Item = Result<Page<T>, Error>> + Send + 'static>>;

/// OData query options of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `$select`: the properties to return (Graph's default set when empty).
    pub select: Vec<String>,
    /// `$filter`.
    pub filter: Option<String>,
    /// `$search` (directory objects; sent with `ConsistencyLevel: eventual`).
    pub search: Option<String>,
    /// `$orderby`.
    pub order_by: Option<String>,
    /// `$expand`, e.g. `manager`.
    pub expand: Option<String>,
    /// Use advanced queries: `ConsistencyLevel: eventual` and `$count=true` on every page
    /// (implied by `search`, `order_by`, and a `filter` with `ne`, `not` or `endsWith`).
    pub advanced: bool,
    /// Page size for this listing (clamped to the endpoint's maximum); else the client's
    /// option, else the maximum.
    pub page_size: Option<u32>,
}

impl ListQuery {
    /// A query selecting `properties`.
    pub fn select<I, S>(properties: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            select: properties.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Sets `$filter`.
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Whether Graph needs `ConsistencyLevel: eventual` and `$count=true` for this query on
    /// directory objects ("Advanced query capabilities on Microsoft Entra ID objects"):
    /// `$search`, `$orderby`, and `$filter` with `ne`, `not` or `endsWith`.
    fn needs_eventual(&self) -> bool {
        let filter = self
            .filter
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.advanced
            || self.search.is_some()
            || self.order_by.is_some()
            || filter.contains(" ne ")
            || filter.contains("not(")
            || filter.starts_with("not ")
            || filter.contains(" not ")
            || filter.contains("endswith(")
    }

    fn mentions(&self, property: &str) -> bool {
        self.select.iter().any(|s| s.eq_ignore_ascii_case(property))
            || self.filter.as_deref().is_some_and(|f| {
                f.to_ascii_lowercase()
                    .contains(&property.to_ascii_lowercase())
            })
    }
}

/// A listable endpoint: its path, largest page and the permission it needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint {
    pub(crate) path: &'static str,
    pub(crate) max_page: u32,
    pub(crate) permission: &'static str,
    /// Directory objects: advanced queries need `ConsistencyLevel: eventual`.
    pub(crate) directory: bool,
}

const USERS: Endpoint = Endpoint {
    path: "users",
    max_page: 999,
    permission: "User.Read.All",
    directory: true,
};
/// "List users": `$top` is at most 120 when `signInActivity` is selected or filtered.
const USERS_WITH_SIGN_IN_ACTIVITY: Endpoint = Endpoint {
    path: "users",
    max_page: 120,
    permission: "User.Read.All and AuditLog.Read.All",
    directory: true,
};
const GROUPS: Endpoint = Endpoint {
    path: "groups",
    max_page: 999,
    permission: "GroupMember.Read.All",
    directory: true,
};
/// "List a user's direct memberships": application least privileged `GroupMember.Read.All`
/// (`User.Read.All` is not enough).
const MEMBER_OF: Endpoint = Endpoint {
    path: "memberOf",
    max_page: 999,
    permission: "GroupMember.Read.All",
    directory: true,
};
const DEVICES: Endpoint = Endpoint {
    path: "deviceManagement/managedDevices",
    max_page: 1000,
    permission: "DeviceManagementManagedDevices.Read.All",
    directory: false,
};
const SIGN_INS: Endpoint = Endpoint {
    path: "auditLogs/signIns",
    max_page: 1000,
    permission: "AuditLog.Read.All",
    directory: false,
};
const DIRECTORY_AUDITS: Endpoint = Endpoint {
    path: "auditLogs/directoryAudits",
    max_page: 1000,
    permission: "AuditLog.Read.All",
    directory: false,
};
const ALERTS: Endpoint = Endpoint {
    path: "security/alerts_v2",
    max_page: 2000,
    permission: "SecurityAlert.Read.All",
    directory: false,
};

#[derive(Deserialize)]
struct RawPage<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
    #[serde(rename = "@odata.count", default)]
    count: Option<u64>,
}

/// Percent-encodes a query value (space as `%20`, never `+`).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'\''
            | b'('
            | b')'
            | b','
            | b'$'
            | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The next request of a listing.
enum Ahead {
    /// Not sent yet.
    Due(Call),
    /// Sent while the caller had the page before.
    Sent(Call, Request),
}

/// A request under way in a task of its own; dropped, it is cancelled.
struct Request(tokio::task::JoinHandle<Result<Answer, Error>>);

impl Request {
    async fn answer(mut self) -> Result<Answer, Error> {
        (&mut self.0)
            .await
            .unwrap_or_else(|e| Err(Error::Network(format!("the request did not finish: {e}"))))
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl GraphClient {
    fn page_size(&self, endpoint: &Endpoint, query: &ListQuery) -> u32 {
        query
            .page_size
            .or(self.inner.options.page_size)
            .unwrap_or(endpoint.max_page)
            .clamp(1, endpoint.max_page)
    }

    /// The first request of a listing.
    pub(crate) fn list_call(&self, path: &str, endpoint: &Endpoint, query: &ListQuery) -> Call {
        let mut params = vec![format!("$top={}", self.page_size(endpoint, query))];
        if !query.select.is_empty() {
            params.push(format!("$select={}", encode(&query.select.join(","))));
        }
        if let Some(f) = &query.filter {
            params.push(format!("$filter={}", encode(f)));
        }
        if let Some(s) = &query.search {
            params.push(format!("$search={}", encode(s)));
        }
        if let Some(o) = &query.order_by {
            params.push(format!("$orderby={}", encode(o)));
        }
        if let Some(e) = &query.expand {
            params.push(format!("$expand={}", encode(e)));
        }
        let eventual = endpoint.directory && query.needs_eventual();
        if eventual {
            params.push("$count=true".into());
        }
        let mut call = Call::get(
            format!("{}?{}", self.url(path), params.join("&")),
            endpoint.permission,
        );
        if eventual {
            call.headers.push(("ConsistencyLevel", "eventual".into()));
        }
        call
    }

    /// Pages starting at `first`, following `@odata.nextLink` as given, re-sending
    /// `first`'s headers on every page. The next page is requested as soon as a page is
    /// read, while the caller works on that page: the round trip to Graph and the caller's
    /// work overlap instead of adding up (Graph's links are a chain, so it is the most a
    /// listing can ask ahead). Dropping the stream cancels that request.
    pub(crate) fn pages<T>(&self, first: Call) -> PageStream<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let client = self.clone();
        let stream = futures_util::stream::unfold(Some(Ahead::Due(first)), move |state| {
            let client = client.clone();
            async move {
                let (call, answer) = match state? {
                    Ahead::Due(call) => {
                        // Every link followed (nextLink, a stored deltaLink) must stay under
                        // the base URL: the bearer token goes with the request.
                        if let Err(e) = client.check_link(&call.url) {
                            return Some((Err(e), None));
                        }
                        let answer = client.execute(&call).await;
                        (call, answer)
                    }
                    Ahead::Sent(call, request) => (call, request.answer().await),
                };
                match answer.and_then(|a| {
                    let body_len = a.body.len();
                    a.json::<RawPage<T>>().map(|raw| (raw, body_len))
                }) {
                    Ok((raw, body_len)) => {
                        let next = raw.next_link.clone().map(|url| {
                            let next = Call {
                                url,
                                ..call.clone()
                            };
                            if client.check_link(&next.url).is_err() {
                                // Refused when its turn comes, after this page.
                                return Ahead::Due(next);
                            }
                            let (client, sent) = (client.clone(), next.clone());
                            let request =
                                Request(tokio::spawn(async move { client.execute(&sent).await }));
                            Ahead::Sent(next, request)
                        });
                        let page = Page {
                            items: raw.value,
                            next_link: raw.next_link,
                            delta_link: raw.delta_link,
                            count: raw.count,
                            body_len,
                        };
                        Some((Ok(page), next))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            }
        });
        Box::pin(stream)
    }

    /// Lists any collection under the base URL (e.g. `groups/{id}/transitiveMembers`),
    /// asking for `max_page` objects per page; `permission` is named in
    /// [`Error::Forbidden`].
    pub fn list<T>(
        &self,
        path: &str,
        max_page: u32,
        permission: &'static str,
        query: &ListQuery,
    ) -> PageStream<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let endpoint = Endpoint {
            path: "",
            max_page: max_page.max(1),
            permission,
            directory: true,
        };
        self.pages(self.list_call(path, &endpoint, query))
    }

    /// Goes on with a listing from a stored `@odata.nextLink` (a checkpoint), following the
    /// next links from there. The link must stay under the base URL (else
    /// [`Error::UntrustedLink`], and nothing is sent); `permission` is named in
    /// [`Error::Forbidden`]. Advanced-query headers are re-sent when the link asks for
    /// `$count` or `$search`.
    pub fn resume_pages<T>(&self, link: &str, permission: &'static str) -> PageStream<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let mut call = Call::get(link.to_owned(), permission);
        if link.contains("$count=true") || link.contains("$search=") {
            call.headers.push(("ConsistencyLevel", "eventual".into()));
        }
        self.pages(call)
    }

    /// `GET /users` (page size 999, or 120 when `signInActivity` is selected or filtered).
    pub fn list_users(&self, query: &ListQuery) -> PageStream<User> {
        let endpoint = if query.mentions("signInActivity") {
            USERS_WITH_SIGN_IN_ACTIVITY
        } else {
            USERS
        };
        self.pages(self.list_call(endpoint.path, &endpoint, query))
    }

    /// `GET /groups`.
    pub fn list_groups(&self, query: &ListQuery) -> PageStream<Group> {
        self.pages(self.list_call(GROUPS.path, &GROUPS, query))
    }

    /// `GET /groups/{id}/members` (direct members with their `@odata.type`).
    pub fn list_group_members(
        &self,
        group_id: &str,
        query: &ListQuery,
    ) -> PageStream<DirectoryObject> {
        let path = format!("groups/{}/members", encode(group_id));
        self.pages(self.list_call(&path, &GROUPS, query))
    }

    /// `GET /groups/{id}/transitiveMembers`.
    pub fn list_group_transitive_members(
        &self,
        group_id: &str,
        query: &ListQuery,
    ) -> PageStream<DirectoryObject> {
        let path = format!("groups/{}/transitiveMembers", encode(group_id));
        self.pages(self.list_call(&path, &GROUPS, query))
    }

    /// `GET /users/{id}/memberOf`.
    pub fn list_user_member_of(
        &self,
        user_id: &str,
        query: &ListQuery,
    ) -> PageStream<DirectoryObject> {
        let path = format!("users/{}/memberOf", encode(user_id));
        self.pages(self.list_call(&path, &MEMBER_OF, query))
    }

    /// `GET /deviceManagement/managedDevices` (Intune).
    pub fn list_managed_devices(&self, query: &ListQuery) -> PageStream<ManagedDevice> {
        self.pages(self.list_call(DEVICES.path, &DEVICES, query))
    }

    /// `GET /auditLogs/signIns` (page size 1000; filter on `createdDateTime`).
    pub fn list_sign_ins(&self, query: &ListQuery) -> PageStream<SignIn> {
        self.pages(self.list_call(SIGN_INS.path, &SIGN_INS, query))
    }

    /// `GET /auditLogs/directoryAudits` (page size 1000).
    pub fn list_directory_audits(&self, query: &ListQuery) -> PageStream<DirectoryAudit> {
        self.pages(self.list_call(DIRECTORY_AUDITS.path, &DIRECTORY_AUDITS, query))
    }

    /// `GET /security/alerts_v2`.
    pub fn list_alerts(&self, query: &ListQuery) -> PageStream<Alert> {
        self.pages(self.list_call(ALERTS.path, &ALERTS, query))
    }

    /// [`list_sign_ins`](Self::list_sign_ins), each record with its JSON as sent, read into
    /// `T`: [`SignIn`], or a leaner model of only the properties the caller reads (serde
    /// skips the others instead of keeping each record's rest in an [`Extra`] map).
    ///
    /// [`Extra`]: crate::models::Extra
    pub fn list_sign_ins_raw<T>(&self, query: &ListQuery) -> PageStream<Raw<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.pages(self.list_call(SIGN_INS.path, &SIGN_INS, query))
    }

    /// [`list_directory_audits`](Self::list_directory_audits), each record with its JSON
    /// as sent, read into `T` ([`DirectoryAudit`] or a leaner model, as for
    /// [`list_sign_ins_raw`](Self::list_sign_ins_raw)).
    pub fn list_directory_audits_raw<T>(&self, query: &ListQuery) -> PageStream<Raw<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.pages(self.list_call(DIRECTORY_AUDITS.path, &DIRECTORY_AUDITS, query))
    }

    /// [`list_alerts`](Self::list_alerts), each record with its JSON as sent, read into `T`
    /// ([`Alert`] or a leaner model, as for [`list_sign_ins_raw`](Self::list_sign_ins_raw)).
    pub fn list_alerts_raw<T>(&self, query: &ListQuery) -> PageStream<Raw<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.pages(self.list_call(ALERTS.path, &ALERTS, query))
    }

    /// `GET /users/{id | userPrincipalName}`.
    pub async fn get_user(&self, id: &str, query: &ListQuery) -> Result<User, Error> {
        let mut url = self.url(&format!("users/{}", encode(id)));
        if !query.select.is_empty() {
            url.push_str(&format!("?$select={}", encode(&query.select.join(","))));
        }
        self.execute(&Call::get(url, USERS.permission))
            .await?
            .json()
    }
}

/// Every object of a listing, or its error: never a short list.
pub async fn collect<T>(mut pages: PageStream<T>) -> Result<Vec<T>, Error> {
    let mut all = Vec::new();
    while let Some(page) = pages.next().await {
        all.extend(page?.items);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_odata_punctuation_and_escapes_spaces() {
        assert_eq!(
            encode("startswith(displayName,'A b')"),
            "startswith(displayName,'A%20b')"
        );
        assert_eq!(encode("a+b&c"), "a%2Bb%26c");
    }

    #[test]
    fn page_debug_hides_link_tokens() {
        let page = Page::<u8> {
            items: vec![1],
            next_link: Some("https://g/v1.0/users?$top=5&$skiptoken=SKIP-SECRET".into()),
            delta_link: Some("https://g/v1.0/users/delta?$deltatoken=DELTA-SECRET".into()),
            count: Some(1),
            body_len: 3,
        };
        let shown = format!("{page:?}");
        for secret in ["$skiptoken", "SKIP-SECRET", "$deltatoken", "DELTA-SECRET"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("https://g/v1.0/users/delta"), "{shown}");
    }

    #[test]
    fn advanced_queries_are_recognised() {
        assert!(
            !ListQuery::default()
                .filter("accountEnabled eq true")
                .needs_eventual()
        );
        assert!(
            ListQuery::default()
                .filter("userType ne 'Guest'")
                .needs_eventual()
        );
        assert!(
            ListQuery::default()
                .filter("endsWith(mail,'@contoso.com')")
                .needs_eventual()
        );
        assert!(
            ListQuery::default()
                .filter("not(accountEnabled eq true)")
                .needs_eventual()
        );
        let ordered = ListQuery {
            order_by: Some("displayName".into()),
            ..ListQuery::default()
        };
        assert!(ordered.needs_eventual());
    }
}
