//! OData query options for collections (`$select`, `$top`, `$filter`, `$count`, `$search`,
//! `$skiptoken`) and paged answers with `@odata.nextLink`.
//!
//! A `$skiptoken` is opaque to clients: base64url of the position to resume from, the time
//! it was issued, the total for `$count`, and a check binding it to the tenant, the path and
//! the other query options. A page resumes at that position, so each page costs what it
//! serves, never a rescan from the start.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{GraphRequest, GraphResponse, graph_error};

/// What `$top` beyond the maximum does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverMax {
    /// 400 `Request_UnsupportedQuery` "Invalid page size specified" (directory objects).
    Reject,
    /// The page is capped at the maximum.
    Clamp,
}

/// A collection's type and paging rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resource {
    /// `microsoft.graph.user`, as error messages name it.
    pub(crate) type_name: &'static str,
    /// `User`, as filter errors name it.
    pub(crate) entity: &'static str,
    /// Every property that may be selected or filtered on (canonical casing).
    pub(crate) properties: &'static [&'static str],
    /// Page size without `$top`.
    pub(crate) default_top: usize,
    /// Largest `$top`.
    pub(crate) max_top: usize,
    /// What a larger `$top` does.
    pub(crate) over_max: OverMax,
    /// Navigation properties `$expand` accepts (users: manager).
    pub(crate) expandable: &'static [&'static str],
    /// Properties `$orderby` accepts (users and groups: displayName and a few more).
    pub(crate) orderable: &'static [&'static str],
    /// A directory object: `$count`, `$search`, `ne`, `not` and `endsWith` are advanced
    /// queries needing `ConsistencyLevel: eventual` (and `$count=true` but for `$search`).
    pub(crate) directory: bool,
}

/// The parsed query options of one collection request.
#[derive(Debug)]
pub(crate) struct Options {
    /// Selected properties in canonical casing, in the order asked.
    pub(crate) select: Option<Vec<String>>,
    /// The page size.
    pub(crate) top: usize,
    /// `$filter`.
    pub(crate) filter: Option<Expr>,
    /// `$search` clauses.
    pub(crate) search: Option<Search>,
    /// Whether `@odata.count` is answered.
    pub(crate) count: bool,
    /// `$expand`: the navigation property and the `$select` inside its parentheses.
    pub(crate) expand: Option<(String, Option<Vec<String>>)>,
    /// `$orderby`: the property and whether descending.
    pub(crate) order: Option<(String, bool)>,
    /// Where to resume (`$skiptoken`).
    pub(crate) cursor: Option<Cursor>,
    check_key: String,
}

/// A decoded `$skiptoken`.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// The raw position to resume from (meaning depends on the collection).
    pub(crate) pos: usize,
    /// The id of the object at `pos` when issued, to realign after inserts.
    pub(crate) anchor: String,
    /// `@odata.count` computed on the first page.
    pub(crate) count: Option<usize>,
}

fn bad_request(message: &str) -> GraphResponse {
    graph_error(400, "BadRequest", message)
}

fn no_property(res: &Resource, name: &str) -> GraphResponse {
    bad_request(&format!(
        "Could not find a property named '{name}' on type '{}'.",
        res.type_name
    ))
}

/// Whether the request carries `ConsistencyLevel: eventual`.
pub(crate) fn eventual(req: &GraphRequest) -> bool {
    req.header("consistencylevel")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
}

impl Resource {
    /// A property's canonical name, case-insensitively.
    fn canonical(&self, name: &str, extra: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        self.properties
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .map(|p| (*p).to_owned())
            .or_else(|| extra(name))
    }
}

/// Parses and checks the query options of a collection request. `extra` resolves property
/// names that are not in the resource's static list (properties set through the control
/// API); `scope` binds skiptokens to the tenant.
pub(crate) fn parse(
    req: &GraphRequest,
    res: &Resource,
    extra: &dyn Fn(&str) -> Option<String>,
    scope: &str,
    page_token_lifetime: std::time::Duration,
) -> Result<Options, GraphResponse> {
    let advanced = eventual(req);
    let select = match req.query("$select") {
        Some(list) => Some(parse_select(list, res, extra)?),
        None => None,
    };
    let top = match req.query("$top") {
        None => res.default_top,
        Some(raw) => {
            let invalid = || {
                graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    &format!(
                        "Invalid page size specified: '{raw}'. Must be between 1 and {} inclusive.",
                        res.max_top
                    ),
                )
            };
            let n: usize = raw.trim().parse().map_err(|_| invalid())?;
            if n == 0 || (n > res.max_top && res.over_max == OverMax::Reject) {
                return Err(invalid());
            }
            n.min(res.max_top)
        }
    };
    let count_asked = match req.query("$count") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(bad_request(&format!(
                "Invalid value '{v}' for $count; expected true or false."
            )));
        }
    };
    // Directory objects count only in advanced queries; without the header `$count=true`
    // is silently ignored (aad-advanced-queries, "Error handling for advanced queries").
    let count = count_asked && (!res.directory || advanced);
    let filter = match req.query("$filter") {
        Some(text) if !text.trim().is_empty() => {
            let expr = Parser::parse(text)
                .map_err(|e| bad_request(&format!("Invalid filter clause: {e} in '{text}'.")))?;
            let expr = resolve(expr, res, extra)?;
            if res.directory
                && let Some(prop) = expr.advanced_only()
                && !(advanced && count_asked)
            {
                return Err(unsupported_filter(res, &prop));
            }
            Some(expr)
        }
        _ => None,
    };
    let search = match req.query("$search") {
        Some(text) if !text.trim().is_empty() => {
            if res.directory && !advanced {
                return Err(graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                ));
            }
            Some(Search::parse(text, res, extra)?)
        }
        _ => None,
    };
    let expand = match req.query("$expand") {
        Some(text) if !text.trim().is_empty() => Some(parse_expand(text.trim(), res, extra)?),
        _ => None,
    };
    let order = match req.query("$orderby") {
        Some(text) if !text.trim().is_empty() => {
            let mut words = text.split_whitespace();
            let name = words.next().unwrap_or_default();
            let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(_) => {
                    return Err(bad_request(&format!(
                        "Invalid $orderby expression '{text}'."
                    )));
                }
            };
            if words.next().is_some() || text.contains(',') {
                return Err(graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    "Sorting by more than one property is not supported.",
                ));
            }
            let canonical = res
                .canonical(name, extra)
                .ok_or_else(|| no_property(res, name))?;
            if !res.orderable.contains(&canonical.as_str()) {
                return Err(graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    &format!("Sorting by '{canonical}' is not supported on this collection."),
                ));
            }
            // $filter with $orderby is an advanced query (aad-advanced-queries).
            if res.directory && filter.is_some() && !(advanced && count_asked) {
                return Err(graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    "Unsupported Query.",
                ));
            }
            Some((canonical, desc))
        }
        _ => None,
    };
    if req.query("$skip").is_some() {
        return Err(graph_error(
            400,
            "Request_BadRequest",
            "The query specified in the URI is not valid. Query option 'Skip' is not allowed.",
        ));
    }
    let check_key = check_key(req, scope);
    let cursor = match req.query("$skiptoken") {
        Some(token) => Some(decode_token(token, &check_key, page_token_lifetime)?),
        None => None,
    };
    Ok(Options {
        select,
        top,
        filter,
        search,
        count,
        expand,
        order,
        cursor,
        check_key,
    })
}

fn parse_select(
    list: &str,
    res: &Resource,
    extra: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, GraphResponse> {
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "*" {
            for p in res.properties {
                if !out.iter().any(|o| o == p) {
                    out.push((*p).to_owned());
                }
            }
            continue;
        }
        let canonical = res
            .canonical(name, extra)
            .ok_or_else(|| no_property(res, name))?;
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

/// `nav` or `nav($select=a,b)`, one navigation property the resource can expand.
fn parse_expand(
    text: &str,
    res: &Resource,
    extra: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Option<Vec<String>>), GraphResponse> {
    let failed = |name: &str| {
        bad_request(&format!(
            "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type '{}'.",
            res.type_name
        ))
    };
    let (name, options) = match text.split_once('(') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(|| failed(text))?;
            (name.trim(), Some(inner))
        }
        None => (text, None),
    };
    if name.contains(',') {
        return Err(graph_error(
            400,
            "Request_UnsupportedQuery",
            "Expanding more than one navigation property is not supported.",
        ));
    }
    let nav = res
        .expandable
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| failed(name))?;
    let select = match options {
        None => None,
        Some(inner) => {
            let list = inner
                .split_once('=')
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("$select"))
                .map(|(_, v)| v)
                .ok_or_else(|| failed(text))?;
            Some(parse_select(list, res, extra)?)
        }
    };
    Ok(((*nav).to_owned(), select))
}

fn unsupported_filter(res: &Resource, prop: &str) -> GraphResponse {
    graph_error(
        400,
        "Request_UnsupportedQuery",
        &format!(
            "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{}'.",
            res.entity
        ),
    )
}

impl Options {
    /// Whether `$select` names `property`.
    pub(crate) fn selects(&self, property: &str) -> bool {
        self.select
            .as_ref()
            .is_some_and(|s| s.iter().any(|p| p == property))
    }

    /// Raw positions `0..len` in `$orderby` order (case-insensitive, nulls first ascending,
    /// ties in position order), skipping positions whose `key` is `None` (invisible
    /// objects); `None` without `$orderby`. This sorts the collection on every page.
    pub(crate) fn ordered(
        &self,
        len: usize,
        key: impl Fn(usize, &str) -> Option<Option<String>>,
    ) -> Option<Vec<usize>> {
        let (property, desc) = self.order.as_ref()?;
        let mut keyed: Vec<(Option<String>, usize)> = (0..len)
            .filter_map(|i| key(i, property).map(|k| (k.map(|k| k.to_lowercase()), i)))
            .collect();
        keyed.sort();
        if *desc {
            keyed.reverse();
        }
        Some(keyed.into_iter().map(|(_, i)| i).collect())
    }

    /// Whether `$filter` refers to `property`.
    pub(crate) fn filters_on(&self, property: &str) -> bool {
        self.filter.as_ref().is_some_and(|f| f.mentions(property))
    }

    /// The selected properties, when they are all an answer reads of an object: `$select`
    /// given, and no `$filter`, `$search` or `$orderby`, which may read any other.
    pub(crate) fn only_selected(&self) -> Option<&[String]> {
        if self.filter.is_some() || self.search.is_some() || self.order.is_some() {
            return None;
        }
        self.select.as_deref()
    }

    /// Whether an object passes `$filter` and `$search`.
    pub(crate) fn matches(&self, object: &Map<String, Value>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.eval(object, None))
            && self.search.as_ref().is_none_or(|s| s.matches(object))
    }

    /// The object as answered: the selected properties, or `defaults`. Values are moved out.
    pub(crate) fn project(
        &self,
        mut object: Map<String, Value>,
        defaults: &[&str],
        odata_type: Option<&str>,
    ) -> Value {
        let mut out = Map::new();
        if let Some(t) = odata_type {
            out.insert("@odata.type".into(), Value::String(t.to_owned()));
        }
        let expanded = self
            .expand
            .as_ref()
            .and_then(|(nav, _)| Some((nav.clone(), object.remove(nav)?)));
        match &self.select {
            Some(names) => {
                for name in names {
                    let v = object.remove(name).unwrap_or(Value::Null);
                    out.insert(name.clone(), v);
                }
            }
            None if defaults.is_empty() => {
                out.extend(object);
            }
            None => {
                for name in defaults {
                    let v = object.remove(*name).unwrap_or(Value::Null);
                    out.insert((*name).to_owned(), v);
                }
            }
        }
        if let Some((nav, v)) = expanded {
            out.insert(nav, v);
        }
        Value::Object(out)
    }

    /// A fetched object as a page answers it: a stored object answered whole goes as it is,
    /// anything else is projected (see [`Self::project`]).
    fn answered<'a>(&self, f: Fetched<'a>) -> Answered<'a> {
        match f.object {
            Cow::Borrowed(stored)
                if self.select.is_none()
                    && self.expand.is_none()
                    && f.defaults.is_empty()
                    && f.odata_type.is_none() =>
            {
                Answered::Stored(stored)
            }
            object => Answered::Built(self.project(object.into_owned(), f.defaults, f.odata_type)),
        }
    }

    /// The `@odata.context` of the collection: `{base}/$metadata#{set}` with the selection.
    pub(crate) fn context(&self, req: &GraphRequest, set: &str) -> String {
        match &self.select {
            Some(names) => format!("{}/$metadata#{set}({})", req.base_url, names.join(",")),
            None => format!("{}/$metadata#{set}", req.base_url),
        }
    }

    /// A page of objects: `fetch(pos)` gives the object at each raw position of `positions`
    /// (in serving order, from the cursor) or `None` when it is not visible. Fills up to
    /// `$top` matching objects and finds the position of the next match, which becomes the
    /// next cursor.
    pub(crate) fn scan<'a>(
        &self,
        positions: impl Iterator<Item = usize>,
        mut fetch: impl FnMut(usize) -> Option<Fetched<'a>>,
    ) -> Scan<'a> {
        let mut items = Vec::with_capacity(self.top.min(1000));
        let mut next = None;
        for pos in positions {
            let Some(f) = fetch(pos) else {
                continue;
            };
            if !self.matches(&f.object) {
                continue;
            }
            if items.len() == self.top {
                next = Some((pos, f.id));
                break;
            }
            items.push(self.answered(f));
        }
        Scan { items, next }
    }

    /// Counts the matching objects (for `@odata.count` on a first page).
    pub(crate) fn count_matches<'a>(
        &self,
        positions: impl Iterator<Item = usize>,
        mut fetch: impl FnMut(usize) -> Option<Fetched<'a>>,
    ) -> usize {
        positions
            .filter_map(&mut fetch)
            .filter(|f| self.matches(&f.object))
            .count()
    }

    /// `@odata.count` for this page: carried by the skiptoken after the first page.
    pub(crate) fn total<'a>(
        &self,
        positions: impl Iterator<Item = usize>,
        fetch: impl FnMut(usize) -> Option<Fetched<'a>>,
    ) -> Option<usize> {
        if !self.count {
            return None;
        }
        match self.cursor.as_ref().and_then(|c| c.count) {
            Some(n) => Some(n),
            None => Some(self.count_matches(positions, fetch)),
        }
    }

    /// The collection answer: `@odata.context`, `@odata.count` when asked, `value`, and an
    /// `@odata.nextLink` unless this is the last page.
    pub(crate) fn answer(
        &self,
        req: &GraphRequest,
        context: String,
        scan: Scan<'_>,
        count: Option<usize>,
    ) -> GraphResponse {
        let next_link = scan.next.map(|(pos, anchor)| {
            next_link(req, &encode_token(pos, &anchor, count, &self.check_key))
        });
        GraphResponse::ok_written(&Collection {
            context,
            count,
            next_link,
            value: &scan.items,
        })
    }
}

/// One object as a collection sees it.
#[derive(Debug)]
pub(crate) struct Fetched<'a> {
    /// Every property: built for the request, or the stored object itself (audit records),
    /// which a page answers without a copy when it answers it whole.
    pub(crate) object: Cow<'a, Map<String, Value>>,
    /// Its id (the anchor of a skiptoken).
    pub(crate) id: String,
    /// Properties answered without `$select`; empty for all.
    pub(crate) defaults: &'static [&'static str],
    /// `@odata.type` to add (members of mixed collections).
    pub(crate) odata_type: Option<&'static str>,
}

/// An object as a page answers it.
#[derive(Debug)]
pub(crate) enum Answered<'a> {
    /// Projected for the request.
    Built(Value),
    /// Stored, answered whole.
    Stored(&'a Map<String, Value>),
}

impl Serialize for Answered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Built(value) => value.serialize(serializer),
            Self::Stored(object) => object.serialize(serializer),
        }
    }
}

/// A collection answer as it is written: the keys in the order a `Map` of them would
/// take (sorted), so the bytes are those of the same answer built as a `Value`.
#[derive(Serialize)]
struct Collection<'s, 'a> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.count", skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    value: &'s [Answered<'a>],
}

/// One page: the answered objects and where the next page starts (raw position and id).
#[derive(Debug)]
pub(crate) struct Scan<'a> {
    /// The objects as answered.
    pub(crate) items: Vec<Answered<'a>>,
    /// The next match, if any.
    pub(crate) next: Option<(usize, String)>,
}

/// Query-string characters escaped in nextLinks (OData keeps `$`, `,`, `(`, `)`, `'`, `:`).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'$')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b',')
    .remove(b'(')
    .remove(b')')
    .remove(b'\'')
    .remove(b':')
    .remove(b'/');

/// Path characters escaped in nextLinks.
const PATH: &AsciiSet = &QUERY.remove(b'@');

/// `base_url + path + ?original options&$skiptoken=token`.
pub(crate) fn next_link(req: &GraphRequest, token: &str) -> String {
    let path = utf8_percent_encode(&req.path, PATH).to_string();
    let mut link = format!("{}{path}?", req.base_url);
    for (k, v) in &req.query {
        if k.eq_ignore_ascii_case("$skiptoken") {
            continue;
        }
        link.push_str(&utf8_percent_encode(k, QUERY).to_string());
        link.push('=');
        link.push_str(&utf8_percent_encode(v, QUERY).to_string());
        link.push('&');
    }
    link.push_str("$skiptoken=");
    link.push_str(token);
    link
}

fn check_key(req: &GraphRequest, scope: &str) -> String {
    let mut key = format!("{scope}\n{}\n", req.path.to_ascii_lowercase());
    for (k, v) in &req.query {
        if !k.eq_ignore_ascii_case("$skiptoken") {
            key.push_str(&k.to_ascii_lowercase());
            key.push('=');
            key.push_str(v);
            key.push('\n');
        }
    }
    key
}

fn digest(payload: &str, key: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("tenantlink-skiptoken\n{payload}\n{key}").as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..12])
}

fn encode_token(pos: usize, anchor: &str, count: Option<usize>, key: &str) -> String {
    let payload = format!(
        "{pos}|{}|{}|{anchor}",
        Utc::now().timestamp(),
        count.map_or_else(String::new, |c| c.to_string())
    );
    let check = digest(&payload, key);
    URL_SAFE_NO_PAD.encode(format!("{payload}|{check}"))
}

fn invalid_token() -> GraphResponse {
    graph_error(400, "Request_BadRequest", "Invalid Skip Token")
}

fn decode_token(
    token: &str,
    key: &str,
    lifetime: std::time::Duration,
) -> Result<Cursor, GraphResponse> {
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid_token)?;
    let (payload, check) = raw.rsplit_once('|').ok_or_else(invalid_token)?;
    if digest(payload, key) != check {
        return Err(invalid_token());
    }
    let mut parts = payload.splitn(4, '|');
    let mut next = || parts.next().ok_or_else(invalid_token);
    let pos: usize = next()?.parse().map_err(|_| invalid_token())?;
    let issued: i64 = next()?.parse().map_err(|_| invalid_token())?;
    let count = match next()? {
        "" => None,
        c => Some(c.parse().map_err(|_| invalid_token())?),
    };
    let anchor = next()?.to_owned();
    let age = Utc::now().timestamp().saturating_sub(issued);
    if u64::try_from(age).unwrap_or(0) >= lifetime.as_secs() {
        return Err(graph_error(
            400,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your request.",
        ));
    }
    Ok(Cursor { pos, anchor, count })
}

// ---------------------------------------------------------------------------------------
// $filter

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

/// A literal in a filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number.
    Num(f64),
    /// A quoted string.
    Str(String),
    /// An unquoted date-time or date.
    Date(DateTime<Utc>),
}

/// A parsed `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `path op literal`
    Cmp(Vec<String>, Op, Lit),
    /// `path in (literals)`
    In(Vec<String>, Vec<Lit>),
    /// `startswith(path, 'x')`
    StartsWith(Vec<String>, String),
    /// `endswith(path, 'x')`
    EndsWith(Vec<String>, String),
    /// `path/any(v: expr)`
    Any(Vec<String>, String, Box<Expr>),
}

impl Expr {
    /// The property of the first clause that only advanced queries support (`ne`, `not`,
    /// `endsWith`), if any.
    fn advanced_only(&self) -> Option<String> {
        match self {
            Self::And(a, b) | Self::Or(a, b) => a.advanced_only().or_else(|| b.advanced_only()),
            Self::Not(a) => Some(a.first_property().unwrap_or_default()),
            Self::Cmp(p, Op::Ne, _) | Self::EndsWith(p, _) => Some(p.join("/")),
            Self::Any(_, _, inner) => inner.advanced_only(),
            _ => None,
        }
    }

    fn first_property(&self) -> Option<String> {
        match self {
            Self::And(a, _) | Self::Or(a, _) | Self::Not(a) => a.first_property(),
            Self::Cmp(p, ..)
            | Self::In(p, _)
            | Self::StartsWith(p, _)
            | Self::EndsWith(p, _)
            | Self::Any(p, ..) => Some(p.join("/")),
        }
    }

    /// Whether the filter names any property other than `property`.
    pub(crate) fn mentions_other_than(&self, property: &str) -> bool {
        match self {
            Self::And(a, b) | Self::Or(a, b) => {
                a.mentions_other_than(property) || b.mentions_other_than(property)
            }
            Self::Not(a) => a.mentions_other_than(property),
            Self::Cmp(p, ..)
            | Self::In(p, _)
            | Self::StartsWith(p, _)
            | Self::EndsWith(p, _)
            | Self::Any(p, ..) => p.first().is_none_or(|f| f != property),
        }
    }

    pub(crate) fn mentions(&self, property: &str) -> bool {
        match self {
            Self::And(a, b) | Self::Or(a, b) => a.mentions(property) || b.mentions(property),
            Self::Not(a) => a.mentions(property),
            Self::Cmp(p, ..)
            | Self::In(p, _)
            | Self::StartsWith(p, _)
            | Self::EndsWith(p, _)
            | Self::Any(p, ..) => p.first().is_some_and(|f| f == property),
        }
    }

    /// The bounds a top-level conjunction puts on a date-time property (inclusive lower,
    /// exclusive or inclusive upper), to start a scan at the right place.
    pub(crate) fn time_bounds(&self, property: &str) -> (Option<Bound>, Option<Bound>) {
        match self {
            Self::And(a, b) => {
                let (al, au) = a.time_bounds(property);
                let (bl, bu) = b.time_bounds(property);
                (tighter_lower(al, bl), tighter_upper(au, bu))
            }
            Self::Cmp(p, op, lit) if p.len() == 1 && p[0] == property => {
                let Some(t) = lit_time(lit) else {
                    return (None, None);
                };
                match op {
                    Op::Ge => (Some(Bound::Inclusive(t)), None),
                    Op::Gt => (Some(Bound::Exclusive(t)), None),
                    Op::Le => (None, Some(Bound::Inclusive(t))),
                    Op::Lt => (None, Some(Bound::Exclusive(t))),
                    Op::Eq => (Some(Bound::Inclusive(t)), Some(Bound::Inclusive(t))),
                    Op::Ne => (None, None),
                }
            }
            _ => (None, None),
        }
    }

    fn eval(&self, obj: &Map<String, Value>, var: Option<(&str, &Value)>) -> bool {
        match self {
            Self::And(a, b) => a.eval(obj, var) && b.eval(obj, var),
            Self::Or(a, b) => a.eval(obj, var) || b.eval(obj, var),
            Self::Not(a) => !a.eval(obj, var),
            Self::Cmp(path, op, lit) => compare(lookup(obj, path, var), *op, lit),
            Self::In(path, lits) => {
                let v = lookup(obj, path, var);
                lits.iter().any(|l| compare(v, Op::Eq, l))
            }
            Self::StartsWith(path, prefix) => lookup(obj, path, var)
                .and_then(Value::as_str)
                .is_some_and(|s| starts_with_ci(s, prefix)),
            Self::EndsWith(path, suffix) => lookup(obj, path, var)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().ends_with(&suffix.to_lowercase())),
            Self::Any(path, name, inner) => match lookup(obj, path, var) {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|item| inner.eval(obj, Some((name.as_str(), item)))),
                _ => false,
            },
        }
    }
}

/// One end of a time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The instant itself is in range.
    Inclusive(DateTime<Utc>),
    /// The instant itself is out of range.
    Exclusive(DateTime<Utc>),
}

fn tighter_lower(a: Option<Bound>, b: Option<Bound>) -> Option<Bound> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if bound_time(x) >= bound_time(y) { x } else { y }),
        (x, None) => x,
        (None, y) => y,
    }
}

fn tighter_upper(a: Option<Bound>, b: Option<Bound>) -> Option<Bound> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if bound_time(x) <= bound_time(y) { x } else { y }),
        (x, None) => x,
        (None, y) => y,
    }
}

fn bound_time(b: Bound) -> DateTime<Utc> {
    match b {
        Bound::Inclusive(t) | Bound::Exclusive(t) => t,
    }
}

fn lit_time(lit: &Lit) -> Option<DateTime<Utc>> {
    match lit {
        Lit::Date(t) => Some(*t),
        Lit::Str(s) => parse_time(s),
        _ => None,
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.to_lowercase().starts_with(&prefix.to_lowercase())
}

fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn lookup<'a>(
    obj: &'a Map<String, Value>,
    path: &[String],
    var: Option<(&str, &'a Value)>,
) -> Option<&'a Value> {
    let (mut current, rest) = match (var, path.first()) {
        (Some((name, value)), Some(first)) if first == name => (value, &path[1..]),
        (_, Some(first)) => (get_ci(obj, first)?, &path[1..]),
        (_, None) => return None,
    };
    for seg in rest {
        current = get_ci(current.as_object()?, seg)?;
    }
    Some(current)
}

fn compare(value: Option<&Value>, op: Op, lit: &Lit) -> bool {
    let value = value.unwrap_or(&Value::Null);
    let ordering = match (value, lit) {
        (_, Lit::Null) => {
            return match op {
                Op::Eq => value.is_null(),
                Op::Ne => !value.is_null(),
                _ => false,
            };
        }
        (Value::Null, _) => return op == Op::Ne,
        (Value::Bool(b), Lit::Bool(l)) => b.cmp(l),
        (Value::Number(n), Lit::Num(l)) => match n.as_f64().and_then(|n| n.partial_cmp(l)) {
            Some(o) => o,
            None => return false,
        },
        (Value::String(s), Lit::Date(t)) => match parse_time(s) {
            Some(v) => v.cmp(t),
            None => return false,
        },
        (Value::String(s), Lit::Str(l)) => match (op, parse_time(s), parse_time(l)) {
            (Op::Eq | Op::Ne, ..) => {
                let equal = s.eq_ignore_ascii_case(l) || s.to_lowercase() == l.to_lowercase();
                return (op == Op::Eq) == equal;
            }
            (_, Some(a), Some(b)) => a.cmp(&b),
            _ => s.to_lowercase().cmp(&l.to_lowercase()),
        },
        (Value::String(s), Lit::Num(l)) => {
            match s.parse::<f64>().ok().and_then(|n| n.partial_cmp(l)) {
                Some(o) => o,
                None => return op == Op::Ne,
            }
        }
        _ => return op == Op::Ne,
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        Op::Eq => ordering == Equal,
        Op::Ne => ordering != Equal,
        Op::Gt => ordering == Greater,
        Op::Ge => ordering != Less,
        Op::Lt => ordering == Less,
        Op::Le => ordering != Greater,
    }
}

/// Checks every property path of a filter against the resource and puts its first segment
/// in canonical casing; `contains` and other functions were refused by the parser.
fn resolve(
    expr: Expr,
    res: &Resource,
    extra: &dyn Fn(&str) -> Option<String>,
) -> Result<Expr, GraphResponse> {
    resolve_in(expr, res, extra, None)
}

fn resolve_in(
    expr: Expr,
    res: &Resource,
    extra: &dyn Fn(&str) -> Option<String>,
    var: Option<&str>,
) -> Result<Expr, GraphResponse> {
    let path = |mut p: Vec<String>| -> Result<Vec<String>, GraphResponse> {
        if var.is_some_and(|v| p.first().is_some_and(|f| f == v)) {
            return Ok(p);
        }
        let first = p.first().cloned().unwrap_or_default();
        p[0] = res
            .canonical(&first, extra)
            .ok_or_else(|| no_property(res, &first))?;
        Ok(p)
    };
    Ok(match expr {
        Expr::And(a, b) => Expr::And(
            Box::new(resolve_in(*a, res, extra, var)?),
            Box::new(resolve_in(*b, res, extra, var)?),
        ),
        Expr::Or(a, b) => Expr::Or(
            Box::new(resolve_in(*a, res, extra, var)?),
            Box::new(resolve_in(*b, res, extra, var)?),
        ),
        Expr::Not(a) => Expr::Not(Box::new(resolve_in(*a, res, extra, var)?)),
        Expr::Cmp(p, op, lit) => Expr::Cmp(path(p)?, op, lit),
        Expr::In(p, lits) => Expr::In(path(p)?, lits),
        Expr::StartsWith(p, s) => Expr::StartsWith(path(p)?, s),
        Expr::EndsWith(p, s) => Expr::EndsWith(path(p)?, s),
        Expr::Any(p, name, inner) => {
            let p = path(p)?;
            let inner = resolve_in(*inner, res, extra, Some(&name))?;
            Expr::Any(p, name, Box::new(inner))
        }
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
    Colon,
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' => {
                toks.push(Tok::Colon);
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated string literal at position {i}")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Str(s));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || matches!(chars[i], ':' | '.' | '-' | '+'))
                {
                    i += 1;
                }
                toks.push(Tok::Word(chars[start..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' || c == '@' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '/' | '.' | '@'))
                {
                    i += 1;
                }
                toks.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => return Err(format!("syntax error at position {i} ('{other}')")),
        }
    }
    Ok(toks)
}

impl Parser {
    fn parse(text: &str) -> Result<Expr, String> {
        let mut p = Self {
            toks: lex(text)?,
            at: 0,
        };
        let expr = p.or()?;
        if p.at != p.toks.len() {
            return Err(format!("syntax error at token {}", p.at + 1));
        }
        Ok(expr)
    }

    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.at) {
            Some(Tok::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), String> {
        if self.toks.get(self.at) == Some(tok) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {tok:?} at token {}", self.at + 1))
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word().as_deref() == Some("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_word().as_deref() == Some("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word().as_deref() == Some("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.at).cloned() {
            Some(Tok::Open) => {
                self.at += 1;
                let e = self.or()?;
                self.expect(&Tok::Close)?;
                Ok(e)
            }
            Some(Tok::Word(word)) => {
                self.at += 1;
                let lower = word.to_ascii_lowercase();
                if self.toks.get(self.at) == Some(&Tok::Open) {
                    if lower == "startswith" || lower == "endswith" {
                        self.at += 1;
                        let path = self.path()?;
                        self.expect(&Tok::Comma)?;
                        let Some(Tok::Str(s)) = self.toks.get(self.at).cloned() else {
                            return Err(format!("{word} needs a string literal"));
                        };
                        self.at += 1;
                        self.expect(&Tok::Close)?;
                        return Ok(if lower == "startswith" {
                            Expr::StartsWith(path, s)
                        } else {
                            Expr::EndsWith(path, s)
                        });
                    }
                    if let Some(base) = lower.strip_suffix("/any").map(|_| &word[..word.len() - 4])
                    {
                        self.at += 1;
                        let Some(Tok::Word(var)) = self.toks.get(self.at).cloned() else {
                            return Err("a lambda needs a variable".into());
                        };
                        self.at += 1;
                        self.expect(&Tok::Colon)?;
                        let inner = self.or()?;
                        self.expect(&Tok::Close)?;
                        return Ok(Expr::Any(split_path(base), var, Box::new(inner)));
                    }
                    return Err(format!("the function '{word}' is not supported"));
                }
                let path = split_path(&word);
                let op = self.peek_word().ok_or("expected an operator")?;
                self.at += 1;
                let op = match op.as_str() {
                    "eq" => Op::Eq,
                    "ne" => Op::Ne,
                    "gt" => Op::Gt,
                    "ge" => Op::Ge,
                    "lt" => Op::Lt,
                    "le" => Op::Le,
                    "in" => {
                        self.expect(&Tok::Open)?;
                        let mut lits = vec![self.literal()?];
                        while self.toks.get(self.at) == Some(&Tok::Comma) {
                            self.at += 1;
                            lits.push(self.literal()?);
                        }
                        self.expect(&Tok::Close)?;
                        return Ok(Expr::In(path, lits));
                    }
                    other => return Err(format!("the operator '{other}' is not supported")),
                };
                Ok(Expr::Cmp(path, op, self.literal()?))
            }
            _ => Err(format!("syntax error at token {}", self.at + 1)),
        }
    }

    fn path(&mut self) -> Result<Vec<String>, String> {
        match self.toks.get(self.at).cloned() {
            Some(Tok::Word(w)) => {
                self.at += 1;
                Ok(split_path(&w))
            }
            _ => Err("expected a property".into()),
        }
    }

    fn literal(&mut self) -> Result<Lit, String> {
        let tok = self.toks.get(self.at).cloned();
        self.at += 1;
        match tok {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "null" => Ok(Lit::Null),
                "true" => Ok(Lit::Bool(true)),
                "false" => Ok(Lit::Bool(false)),
                _ => {
                    if let Ok(n) = w.parse::<f64>() {
                        Ok(Lit::Num(n))
                    } else if let Some(t) = parse_time(&w) {
                        Ok(Lit::Date(t))
                    } else {
                        Err(format!("'{w}' is not a literal"))
                    }
                }
            },
            _ => Err("expected a literal".into()),
        }
    }
}

fn split_path(word: &str) -> Vec<String> {
    word.split('/').map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------
// $search

/// `$search="prop:term" OR "prop:term"`: token prefix matches, case-insensitive.
#[derive(Debug)]
pub(crate) struct Search {
    clauses: Vec<(String, String)>,
    all: bool,
}

impl Search {
    fn parse(
        text: &str,
        res: &Resource,
        extra: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, GraphResponse> {
        let invalid = || {
            graph_error(
                400,
                "Request_UnsupportedQuery",
                &format!("Syntax error: invalid $search expression '{text}'."),
            )
        };
        let mut clauses = Vec::new();
        let mut all = false;
        let mut rest = text.trim();
        loop {
            let inner = rest.strip_prefix('"').ok_or_else(invalid)?;
            let end = inner.find('"').ok_or_else(invalid)?;
            let clause = &inner[..end];
            let (prop, term) = clause.split_once(':').ok_or_else(invalid)?;
            let prop = res
                .canonical(prop.trim(), extra)
                .ok_or_else(|| no_property(res, prop.trim()))?;
            clauses.push((prop, term.trim().to_lowercase()));
            rest = inner[end + 1..].trim();
            if rest.is_empty() {
                break;
            }
            let (word, after) = rest.split_once(char::is_whitespace).ok_or_else(invalid)?;
            match word.to_ascii_uppercase().as_str() {
                "AND" => all = true,
                "OR" => {}
                _ => return Err(invalid()),
            }
            rest = after.trim();
        }
        Ok(Self { clauses, all })
    }

    fn matches(&self, obj: &Map<String, Value>) -> bool {
        let one = |(prop, term): &(String, String)| {
            obj.get(prop).and_then(Value::as_str).is_some_and(|v| {
                let v = v.to_lowercase();
                v.starts_with(term.as_str())
                    || v.split(|c: char| !c.is_alphanumeric())
                        .any(|w| !w.is_empty() && w.starts_with(term.as_str()))
            })
        };
        if self.all {
            self.clauses.iter().all(one)
        } else {
            self.clauses.iter().any(one)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_collection_is_written_as_the_same_answer_built_as_a_value() {
        let stored = obj(
            json!({"id": "b", "location": {"city": "Oslo"}, "createdDateTime": "2024-05-01T00:00:00Z"}),
        );
        let built = json!({"id": "a", "displayName": "Adele \"A\" Vance"});
        let items = [Answered::Built(built.clone()), Answered::Stored(&stored)];
        for (count, link) in [
            (None, None),
            (Some(7), Some("https://graph/v1.0/x?$skiptoken=t")),
        ] {
            let written = serde_json::to_vec(&Collection {
                context: "https://graph/v1.0/$metadata#x".into(),
                count,
                next_link: link.map(str::to_owned),
                value: &items,
            })
            .expect("written");
            let mut value = Map::new();
            value.insert(
                "@odata.context".into(),
                json!("https://graph/v1.0/$metadata#x"),
            );
            if let Some(n) = count {
                value.insert("@odata.count".into(), json!(n));
            }
            if let Some(link) = link {
                value.insert("@odata.nextLink".into(), json!(link));
            }
            value.insert("value".into(), json!([built, stored]));
            let as_value = serde_json::to_vec(&Value::Object(value)).expect("written");
            assert_eq!(String::from_utf8(written), String::from_utf8(as_value));
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn filters_parse_and_evaluate() {
        let o = obj(json!({
            "displayName": "O'Brien Adele", "mailEnabled": false, "groupTypes": ["Unified"],
            "status": {"errorCode": 0}, "createdDateTime": "2024-05-01T10:00:00Z", "mail": null
        }));
        let t = |f: &str| Parser::parse(f).unwrap().eval(&o, None);
        assert!(t("displayName eq 'o''brien adele'"));
        assert!(t("startswith(displayName,'O''B')"));
        assert!(t(
            "groupTypes/any(c:c eq 'Unified') and mailEnabled eq false"
        ));
        assert!(t("status/errorCode eq 0"));
        assert!(t(
            "createdDateTime ge 2024-05-01T00:00:00Z and createdDateTime lt 2024-05-02"
        ));
        assert!(t(
            "mail eq null and (mailEnabled eq true or not (status/errorCode ne 0))"
        ));
        assert!(!t("displayName ne 'O''Brien Adele'"));
        assert!(t("status/errorCode in (1, 0)"));
        assert!(Parser::parse("contains(displayName,'a')").is_err());
        assert!(Parser::parse("displayName eq").is_err());
        assert!(Parser::parse("(displayName eq 'a'").is_err());
        let bounds =
            Parser::parse("createdDateTime ge 2024-01-01 and createdDateTime lt 2024-02-01")
                .unwrap()
                .time_bounds("createdDateTime");
        assert!(matches!(
            bounds,
            (Some(Bound::Inclusive(_)), Some(Bound::Exclusive(_)))
        ));
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let token = encode_token(42, "abc", Some(7), "key");
        let c = decode_token(&token, "key", std::time::Duration::from_secs(60)).unwrap();
        assert_eq!((c.pos, c.anchor.as_str(), c.count), (42, "abc", Some(7)));
        assert!(decode_token(&token, "other", std::time::Duration::from_secs(60)).is_err());
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(raw.replacen("42", "43", 1));
        assert!(decode_token(&forged, "key", std::time::Duration::from_secs(60)).is_err());
        let expired = decode_token(&token, "key", std::time::Duration::ZERO).unwrap_err();
        assert_eq!(expired.status, 400);
    }
}
