//! Delta query for users and groups: start, resume from a stored deltaLink, or start at
//! `$deltatoken=latest`; `@removed` and `members@delta` surfaced as typed changes; a lost
//! sync state surfaced as [`Error::ResyncRequired`].

use std::collections::HashMap;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::{GraphClient, redact_link};
use crate::error::Error;
use crate::http::Call;
use crate::list::{PageStream, encode};

/// Pages of a delta round, in order; an `Err` ends it.
pub type DeltaStream<T> = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<DeltaPage<T>, Error>> + Send + 'static>,
>;
use crate::models::{Group, ODataType, User};

/// Where a delta round starts. Its Debug shows a deltaLink without its query.
#[derive(Clone, PartialEq, Eq)]
pub enum DeltaStart {
    /// A full round: every object, then a deltaLink. `select` is tracked from now on.
    Initial {
        /// `$select` (Graph's default set when empty).
        select: Vec<String>,
    },
    /// Changes since a stored `@odata.deltaLink`, requested exactly as Graph gave it.
    Resume(String),
    /// No objects: only a deltaLink for changes from now on (`$deltatoken=latest`).
    Latest {
        /// `$select` to track.
        select: Vec<String>,
    },
}

impl std::fmt::Debug for DeltaStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Initial { select } => f.debug_struct("Initial").field("select", select).finish(),
            Self::Resume(link) => f.debug_tuple("Resume").field(&redact_link(link)).finish(),
            Self::Latest { select } => f.debug_struct("Latest").field("select", select).finish(),
        }
    }
}

/// Why `@removed` was sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RemovedReason {
    /// Soft-deleted (restorable) or out of scope.
    Changed,
    /// Deleted for good.
    Deleted,
    /// Another reason, as sent.
    Other(String),
}

impl RemovedReason {
    fn parse(s: &str) -> Self {
        match s {
            "changed" => Self::Changed,
            "deleted" => Self::Deleted,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Added to or removed from a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberChangeKind {
    /// Now a member.
    Added,
    /// No longer a member.
    Removed,
}

/// One entry of a group's `members@delta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChange {
    /// The member's object id.
    pub id: String,
    /// User, group, device...
    pub odata_type: Option<ODataType>,
    /// Added or removed.
    pub change: MemberChangeKind,
}

/// One change of a delta round.
#[derive(Debug, Clone, PartialEq)]
pub enum DeltaChange<T> {
    /// Created or updated: the object's (selected, changed) properties, and for groups the
    /// membership changes.
    Upserted {
        /// The object.
        item: T,
        /// `members@delta` (groups only; merged across pages when a group repeats).
        members: Vec<MemberChange>,
    },
    /// Gone from the set (`@removed`).
    Removed {
        /// Object id.
        id: String,
        /// Why.
        reason: RemovedReason,
    },
}

/// One page of a delta round. Its Debug shows the deltaLink without its query.
#[derive(Clone)]
pub struct DeltaPage<T> {
    /// Changes on this page.
    pub changes: Vec<DeltaChange<T>>,
    /// The `@odata.nextLink` of this page (already followed by the stream): where the round
    /// goes on, to store as a checkpoint and resume with [`DeltaStart::Resume`].
    pub next_link: Option<String>,
    /// On the last page: the link to store and resume from.
    pub delta_link: Option<String>,
    /// Size in bytes of the response body the page was read from (see
    /// [`Page::body_len`](crate::Page::body_len)).
    pub body_len: usize,
}

impl<T: std::fmt::Debug> std::fmt::Debug for DeltaPage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaPage")
            .field("changes", &self.changes)
            .field("next_link", &self.next_link.as_deref().map(redact_link))
            .field("delta_link", &self.delta_link.as_deref().map(redact_link))
            .field("body_len", &self.body_len)
            .finish()
    }
}

/// A whole delta round, changes merged per object. Its Debug shows the deltaLink without
/// its query.
#[derive(Clone)]
pub struct DeltaRound<T> {
    /// One change per object, in the order first seen.
    pub changes: Vec<DeltaChange<T>>,
    /// The deltaLink to store for the next round.
    pub delta_link: String,
}

impl<T: std::fmt::Debug> std::fmt::Debug for DeltaRound<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaRound")
            .field("changes", &self.changes)
            .field("delta_link", &redact_link(&self.delta_link))
            .finish()
    }
}

#[derive(Deserialize)]
struct Removed {
    #[serde(default)]
    reason: String,
}

/// One raw delta item: an upsert keeps its JSON (to merge with a repeat) and its
/// `members@delta`.
enum RawChange {
    Upserted {
        obj: Map<String, Value>,
        members: Vec<MemberChange>,
    },
    Removed {
        id: String,
        reason: RemovedReason,
    },
}

impl RawChange {
    fn id(&self) -> Option<&str> {
        match self {
            Self::Upserted { obj, .. } => obj.get("id").and_then(Value::as_str),
            Self::Removed { id, .. } => Some(id),
        }
    }

    fn typed<T: DeserializeOwned>(self) -> Result<DeltaChange<T>, Error> {
        Ok(match self {
            Self::Upserted { obj, members } => DeltaChange::Upserted {
                item: serde_json::from_value(Value::Object(obj))
                    .map_err(|e| Error::Decode(e.to_string()))?,
                members,
            },
            Self::Removed { id, reason } => DeltaChange::Removed { id, reason },
        })
    }
}

/// One delta item as received: `@removed` and `members@delta` read straight into their
/// types, every other property kept as JSON (to merge with a repeat of the object, then
/// decode). A group's members are most of a delta round: they never become JSON values.
#[derive(Default)]
struct RawItem {
    obj: Map<String, Value>,
    removed: Option<Removed>,
    members: Option<Vec<RawMember>>,
}

/// One `members@delta` entry as received.
#[derive(Deserialize)]
struct RawMember {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "@odata.type")]
    odata_type: Option<ODataType>,
    #[serde(default, rename = "@removed")]
    removed: Option<serde::de::IgnoredAny>,
}

impl<'de> Deserialize<'de> for RawItem {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawItem;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a delta item (a JSON object)")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawItem, A::Error> {
                let mut item = RawItem::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "@removed" => item.removed = Some(map.next_value()?),
                        "members@delta" => {
                            item.members = map.next_value::<Option<Vec<RawMember>>>()?;
                        }
                        _ => {
                            let value = map.next_value()?;
                            item.obj.insert(key, value);
                        }
                    }
                }
                Ok(item)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Turns one raw delta item into a change.
fn raw_change(item: RawItem) -> Result<RawChange, Error> {
    let RawItem {
        obj,
        removed,
        members,
    } = item;
    if let Some(removed) = removed {
        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Decode("a removed delta item has no id".into()))?
            .to_owned();
        return Ok(RawChange::Removed {
            id,
            reason: RemovedReason::parse(&removed.reason),
        });
    }
    let members = members
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            Ok(MemberChange {
                id: m
                    .id
                    .ok_or_else(|| Error::Decode("a members@delta entry has no id".into()))?,
                odata_type: m.odata_type,
                change: if m.removed.is_some() {
                    MemberChangeKind::Removed
                } else {
                    MemberChangeKind::Added
                },
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(RawChange::Upserted { obj, members })
}

#[cfg(test)]
fn change<T: DeserializeOwned>(obj: Map<String, Value>) -> Result<DeltaChange<T>, Error> {
    raw_change(
        serde_json::from_value(Value::Object(obj)).map_err(|e| Error::Decode(e.to_string()))?,
    )?
    .typed()
}

/// Merges a round's raw items into one change per object, in the order first seen. An
/// object repeated on a later page (Graph repeats a group with only `id` and the next slice
/// of `members@delta`) keeps its earlier properties: later non-null values win field by
/// field, and member changes accumulate. A removal replaces what came before; an upsert
/// after a removal starts afresh.
fn merge_round(items: Vec<RawItem>) -> Result<Vec<RawChange>, Error> {
    let mut changes: Vec<RawChange> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for obj in items {
        let c = raw_change(obj)?;
        let Some(id) = c.id().map(str::to_owned) else {
            // No id: nothing to merge with; kept as is (decoding decides).
            changes.push(c);
            continue;
        };
        let Some(&at) = index.get(&id) else {
            index.insert(id, changes.len());
            changes.push(c);
            continue;
        };
        match (&mut changes[at], c) {
            (
                RawChange::Upserted {
                    obj: earlier,
                    members: earlier_members,
                },
                RawChange::Upserted { obj, members },
            ) => {
                for (k, v) in obj {
                    if !v.is_null() || !earlier.contains_key(&k) {
                        earlier.insert(k, v);
                    }
                }
                earlier_members.extend(members);
            }
            (slot, c) => *slot = c,
        }
    }
    Ok(changes)
}

const USERS_PERMISSION: &str = "User.Read.All";
const GROUPS_PERMISSION: &str = "GroupMember.Read.All";

impl GraphClient {
    fn delta_call(&self, kind: &str, permission: &'static str, start: &DeltaStart) -> Call {
        let url = match start {
            DeltaStart::Resume(link) => link.clone(),
            DeltaStart::Initial { select } | DeltaStart::Latest { select } => {
                let mut params = Vec::new();
                if !select.is_empty() {
                    params.push(format!("$select={}", encode(&select.join(","))));
                }
                if matches!(start, DeltaStart::Latest { .. }) {
                    params.push("$deltatoken=latest".into());
                }
                let base = self.url(&format!("{kind}/delta"));
                if params.is_empty() {
                    base
                } else {
                    format!("{base}?{}", params.join("&"))
                }
            }
        };
        let mut call = Call::get(url, permission);
        // Graph's default delta page is 100 objects; ask for its largest (999) unless the
        // options say otherwise: a tenth of the requests for a large tenant.
        let size = self.inner.options.page_size.unwrap_or(999);
        call.headers.push((
            "Prefer",
            format!("odata.maxpagesize={}", size.clamp(1, 999)),
        ));
        call
    }

    fn delta_pages<T>(
        &self,
        kind: &str,
        permission: &'static str,
        start: &DeltaStart,
    ) -> DeltaStream<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let raw = self.pages::<RawItem>(self.delta_call(kind, permission, start));
        Box::pin(raw.map(|page| {
            let page = page?;
            let changes = page
                .items
                .into_iter()
                .map(|obj| raw_change(obj)?.typed::<T>())
                .collect::<Result<Vec<_>, _>>()?;
            Ok(DeltaPage {
                changes,
                next_link: page.next_link,
                delta_link: page.delta_link,
                body_len: page.body_len,
            })
        }))
    }

    /// `GET /users/delta`, page by page.
    pub fn users_delta_pages(&self, start: &DeltaStart) -> DeltaStream<User> {
        self.delta_pages("users", USERS_PERMISSION, start)
    }

    /// `GET /groups/delta`, page by page.
    pub fn groups_delta_pages(&self, start: &DeltaStart) -> DeltaStream<Group> {
        self.delta_pages("groups", GROUPS_PERMISSION, start)
    }

    /// A whole users delta round. Store [`DeltaRound::delta_link`] for the next one; on
    /// [`Error::ResyncRequired`] start again with [`DeltaStart::Initial`].
    pub async fn users_delta(&self, start: &DeltaStart) -> Result<DeltaRound<User>, Error> {
        round(self.pages(self.delta_call("users", USERS_PERMISSION, start))).await
    }

    /// A whole groups delta round, `members@delta` merged per group across pages.
    pub async fn groups_delta(&self, start: &DeltaStart) -> Result<DeltaRound<Group>, Error> {
        round(self.pages(self.delta_call("groups", GROUPS_PERMISSION, start))).await
    }
}

async fn round<T: DeserializeOwned>(
    mut pages: PageStream<RawItem>,
) -> Result<DeltaRound<T>, Error> {
    let mut items = Vec::new();
    let mut delta_link = None;
    while let Some(page) = pages.next().await {
        let page = page?;
        if page.delta_link.is_some() {
            delta_link = page.delta_link;
        }
        items.extend(page.items);
    }
    let delta_link = delta_link
        .ok_or_else(|| Error::Decode("the delta round ended without an @odata.deltaLink".into()))?;
    let changes = merge_round(items)?
        .into_iter()
        .map(RawChange::typed)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeltaRound {
        changes,
        delta_link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delta_debug_hides_delta_tokens() {
        let link = "https://g/v1.0/users/delta?$deltatoken=DELTA-SECRET&$skiptoken=SKIP-SECRET";
        let shown = [
            format!("{:?}", DeltaStart::Resume(link.into())),
            format!(
                "{:?}",
                DeltaPage::<User> {
                    changes: vec![],
                    next_link: Some(link.into()),
                    delta_link: Some(link.into()),
                    body_len: 0,
                }
            ),
            format!(
                "{:?}",
                DeltaRound::<User> {
                    changes: vec![],
                    delta_link: link.into(),
                }
            ),
        ];
        for s in shown {
            for secret in ["$deltatoken", "DELTA-SECRET", "$skiptoken", "SKIP-SECRET"] {
                assert!(!s.contains(secret), "{s}");
            }
            assert!(s.contains("https://g/v1.0/users/delta"), "{s}");
        }
    }

    #[test]
    fn a_group_repeated_on_a_later_page_keeps_its_properties() {
        let obj = |v: Value| serde_json::from_value::<RawItem>(v).expect("a delta item");
        let items = vec![
            obj(
                json!({"id": "g", "displayName": "Big", "description": "d", "members@delta": [
                    {"@odata.type": "#microsoft.graph.user", "id": "u1"}
                ]}),
            ),
            obj(json!({"id": "u", "displayName": "Other"})),
            // The repeat: only id (and a null Graph may pad a selected property with).
            obj(json!({"id": "g", "description": null, "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": "u2"},
                {"@odata.type": "#microsoft.graph.user", "id": "u3", "@removed": {"reason": "deleted"}}
            ]})),
            obj(json!({"id": "g", "displayName": "Bigger", "members@delta": []})),
        ];
        let changes: Vec<DeltaChange<Group>> = merge_round(items)
            .expect("merge")
            .into_iter()
            .map(RawChange::typed)
            .collect::<Result<_, _>>()
            .expect("typed");
        assert_eq!(changes.len(), 2);
        let DeltaChange::Upserted { item, members } = &changes[0] else {
            panic!("an upsert");
        };
        assert_eq!(item.id, "g");
        assert_eq!(item.display_name.as_deref(), Some("Bigger"));
        assert_eq!(item.description.as_deref(), Some("d"));
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["u1", "u2", "u3"]);
        assert_eq!(members[2].change, MemberChangeKind::Removed);

        // A removal after an upsert wins; an upsert after a removal starts afresh.
        let changes = merge_round(vec![
            obj(json!({"id": "g", "displayName": "G"})),
            obj(json!({"id": "g", "@removed": {"reason": "changed"}})),
        ])
        .expect("merge");
        assert!(matches!(changes[..], [RawChange::Removed { .. }]));
    }

    #[test]
    fn removed_and_member_changes_are_typed() {
        let c: DeltaChange<Group> = change(
            json!({"id": "g", "@removed": {"reason": "deleted"}})
                .as_object()
                .cloned()
                .expect("object"),
        )
        .expect("change");
        assert_eq!(
            c,
            DeltaChange::Removed {
                id: "g".into(),
                reason: RemovedReason::Deleted
            }
        );
        let c: DeltaChange<Group> = change(
            json!({"id": "g", "displayName": "G", "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": "u1"},
                {"@odata.type": "#microsoft.graph.group", "id": "g2", "@removed": {"reason": "deleted"}}
            ]})
            .as_object()
            .cloned()
            .expect("object"),
        )
        .expect("change");
        let DeltaChange::Upserted { item, members } = c else {
            panic!("an upsert");
        };
        assert_eq!(item.display_name.as_deref(), Some("G"));
        assert!(!item.extra.contains_key("members@delta"));
        assert_eq!(members[0].change, MemberChangeKind::Added);
        assert_eq!(members[1].change, MemberChangeKind::Removed);
        assert_eq!(members[1].odata_type, Some(ODataType::Group));

        // A member entry without an id, or a delta item that is not an object, is an error.
        let no_id = change::<Group>(
            json!({"id": "g", "members@delta": [{"@odata.type": "#microsoft.graph.user"}]})
                .as_object()
                .cloned()
                .expect("object"),
        );
        assert!(matches!(no_id, Err(Error::Decode(m)) if m.contains("no id")));
        assert!(serde_json::from_value::<RawItem>(json!(["g"])).is_err());
    }
}
