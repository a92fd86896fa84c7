//! The deterministic generator of realistic tenants: departments, job titles, a manager
//! hierarchy, nested groups of every kind, devices with owners across OS and compliance
//! states, disabled accounts, guests, sign-ins and directory audits over the last 30 days and
//! a few security alerts. The same seed and anchor time give the same tenant.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::config::TenantSize;
use crate::model::{
    AppGrant, AppRegistration, AuditRecord, ClientSecret, Directory, GRAPH_APP_PERMISSIONS, Group,
    ManagedDevice, Member, MemberKind, ObjState, SignInActivity, Tenant, User,
};
use crate::rng::Rng;

const COMPANIES: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Tailspin",
    "Woodgrove",
    "Litware",
    "Adatum",
    "Proseware",
];
const FIRST: &[&str] = &[
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mia", "Lucas", "Amelia", "Ethan", "Sofia", "Mason",
    "Isla", "Leo", "Chloe", "Aria", "Omar", "Priya", "Kenji", "Fatima", "Mateo", "Zoe", "Ivan",
    "Nina", "Hugo", "Lena", "Arjun", "Yuki", "Sara", "Diego", "Hana", "Malik", "Elena", "Tomas",
    "Ingrid", "Kwame", "Lucia", "Rafael", "Anika", "Felix", "Maya",
];
const LAST: &[&str] = &[
    "Smith", "Johnson", "Garcia", "Muller", "Rossi", "Kowalski", "Nguyen", "Tanaka", "Okafor",
    "Silva", "Patel", "Khan", "Larsen", "Dubois", "Novak", "Jensen", "Costa", "Ivanova", "Haddad",
    "Kim", "Lopez", "Schmidt", "Moreau", "Berg", "Sato", "Adeyemi", "Fischer", "Romano", "Chen",
    "Walsh",
];
const DEPARTMENTS: &[(&str, &[&str])] = &[
    (
        "Engineering",
        &[
            "Software Engineer",
            "Senior Software Engineer",
            "Engineering Manager",
            "Site Reliability Engineer",
            "QA Engineer",
        ],
    ),
    (
        "Sales",
        &[
            "Account Executive",
            "Sales Manager",
            "Sales Development Representative",
            "Solutions Consultant",
        ],
    ),
    (
        "Marketing",
        &[
            "Marketing Specialist",
            "Content Strategist",
            "Marketing Manager",
            "Brand Designer",
        ],
    ),
    (
        "Finance",
        &[
            "Accountant",
            "Financial Analyst",
            "Controller",
            "Payroll Specialist",
        ],
    ),
    (
        "Human Resources",
        &["HR Generalist", "Recruiter", "HR Business Partner"],
    ),
    (
        "IT",
        &[
            "Systems Administrator",
            "IT Support Specialist",
            "Security Analyst",
            "Network Engineer",
        ],
    ),
    (
        "Operations",
        &[
            "Operations Analyst",
            "Operations Manager",
            "Logistics Coordinator",
        ],
    ),
    ("Legal", &["Counsel", "Paralegal", "Compliance Officer"]),
    (
        "Customer Success",
        &[
            "Customer Success Manager",
            "Support Engineer",
            "Support Lead",
        ],
    ),
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Seattle", "United States", "US"),
    ("London", "United Kingdom", "GB"),
    ("Berlin", "Germany", "DE"),
    ("Paris", "France", "FR"),
    ("Toronto", "Canada", "CA"),
    ("Sydney", "Australia", "AU"),
    ("Tokyo", "Japan", "JP"),
    ("Sao Paulo", "Brazil", "BR"),
];
const APPS: &[(&str, &str)] = &[
    (
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
    ),
    ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams"),
    (
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
    ),
    ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal"),
    ("27922004-5251-4030-b22d-91ecd9a37ea4", "Outlook Mobile"),
];

/// The app credentials of one seeded tenant, as printed at start.
#[derive(Debug, Clone)]
pub struct SeededApps {
    /// The connector app: every Graph permission granted.
    pub connector: String,
    /// An app with only `User.Read.All`, to see what a missing permission does.
    pub limited: String,
}

/// Everything the generator produced: tenants and app registrations by client id.
#[derive(Debug)]
pub struct World {
    /// The tenants.
    pub tenants: Vec<Tenant>,
    /// App registrations by client id.
    pub apps: HashMap<String, AppRegistration>,
    /// Per tenant (same order), its seeded apps.
    pub seeded_apps: Vec<SeededApps>,
    /// The multi-tenant app (registered in the first tenant, consented only there).
    pub multi_tenant_app: String,
}

/// Redirect URIs every seeded app accepts.
pub const REDIRECT_URIS: &[&str] = &[
    "http://localhost/callback",
    "http://localhost:8400/callback",
    "http://127.0.0.1/callback",
    "https://localhost/callback",
];

/// Delegated scopes granted to the seeded apps.
pub const DELEGATED_SCOPES: &[&str] = &[
    "User.Read",
    "User.Read.All",
    "Group.Read.All",
    "GroupMember.Read.All",
    "Directory.Read.All",
    "Device.Read.All",
    "DeviceManagementManagedDevices.Read.All",
    "AuditLog.Read.All",
    "offline_access",
    "openid",
    "profile",
    "email",
];

/// Generates `count` tenants of `size` from `seed`, with times relative to `anchor`.
pub fn world(seed: u64, count: usize, size: TenantSize, anchor: DateTime<Utc>) -> World {
    let mut apps = HashMap::new();
    let mut tenants = Vec::with_capacity(count);
    let mut seeded_apps = Vec::with_capacity(count);
    let mut multi_tenant_app = String::new();
    for t in 0..count {
        let mut rng = Rng::fork(seed, &format!("tenant-{t}"));
        let company = COMPANIES[t % COMPANIES.len()];
        let suffix = if t < COMPANIES.len() {
            String::new()
        } else {
            (t / COMPANIES.len()).to_string()
        };
        let id = rng.guid();
        let domain = format!("{}{suffix}.onmicrosoft.com", company.to_ascii_lowercase());
        let mut tenant = Tenant {
            id: id.clone(),
            display_name: format!("{company}{suffix} Ltd"),
            domain: domain.clone(),
            grants: HashMap::new(),
            dir: directory(
                &mut Rng::fork(seed, &format!("dir-{t}")),
                size,
                &domain,
                &id,
                anchor,
            ),
        };
        let all_roles: BTreeSet<String> = GRAPH_APP_PERMISSIONS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let scopes: BTreeSet<String> = DELEGATED_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        let connector = app(
            &mut rng,
            "tenantlink connector",
            &id,
            false,
            &all_roles,
            anchor,
        );
        let limited_roles = BTreeSet::from(["User.Read.All".to_owned()]);
        let limited = app(
            &mut rng,
            "tenantlink limited",
            &id,
            false,
            &limited_roles,
            anchor,
        );
        tenant.grants.insert(
            connector.client_id.clone(),
            AppGrant {
                roles: all_roles.clone(),
                scopes: scopes.clone(),
            },
        );
        tenant.grants.insert(
            limited.client_id.clone(),
            AppGrant {
                roles: limited_roles,
                scopes: BTreeSet::from(["User.Read".to_owned(), "openid".to_owned()]),
            },
        );
        if t == 0 {
            let multi = app(
                &mut rng,
                "tenantlink platform (multi-tenant)",
                &id,
                true,
                &all_roles,
                anchor,
            );
            tenant.grants.insert(
                multi.client_id.clone(),
                AppGrant {
                    roles: all_roles.clone(),
                    scopes,
                },
            );
            multi_tenant_app = multi.client_id.clone();
            apps.insert(multi.client_id.clone(), multi);
        }
        seeded_apps.push(SeededApps {
            connector: connector.client_id.clone(),
            limited: limited.client_id.clone(),
        });
        apps.insert(connector.client_id.clone(), connector);
        apps.insert(limited.client_id.clone(), limited);
        tenants.push(tenant);
    }
    World {
        tenants,
        apps,
        seeded_apps,
        multi_tenant_app,
    }
}

fn app(
    rng: &mut Rng,
    name: &str,
    tenant: &str,
    multi_tenant: bool,
    roles: &BTreeSet<String>,
    anchor: DateTime<Utc>,
) -> AppRegistration {
    let client_id = rng.guid();
    let secret = |rng: &mut Rng, expires| ClientSecret {
        key_id: rng.guid(),
        value: secret_value(rng),
        expires,
    };
    AppRegistration {
        client_id,
        display_name: name.to_owned(),
        home_tenant: tenant.to_owned(),
        multi_tenant,
        secrets: vec![
            secret(rng, anchor + Duration::days(365)),
            secret(rng, anchor - Duration::days(30)),
        ],
        certificates: Vec::new(),
        redirect_uris: REDIRECT_URIS.iter().map(|s| (*s).to_owned()).collect(),
        requested_roles: roles.clone(),
    }
}

/// A secret shaped like Entra ID's (40 characters, `Q~` after the first three).
fn secret_value(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
    let mut s = String::with_capacity(40);
    for i in 0..40 {
        if i == 3 {
            s.push_str("Q~");
            continue;
        }
        if i == 4 {
            continue;
        }
        s.push(char::from(*rng.pick(ALPHABET)));
    }
    s
}

fn at(anchor: DateTime<Utc>, rng: &mut Rng, max_days_ago: i64) -> DateTime<Utc> {
    let secs = rng.below(usize::try_from(max_days_ago * 86_400).unwrap_or(1).max(1));
    anchor - Duration::seconds(i64::try_from(secs).unwrap_or(0))
}

fn directory(
    rng: &mut Rng,
    size: TenantSize,
    domain: &str,
    tenant_id: &str,
    anchor: DateTime<Utc>,
) -> Directory {
    let mut dir = Directory::default();
    users(rng, &mut dir, size.users, domain, anchor);
    groups(rng, &mut dir, size, domain, anchor);
    devices(rng, &mut dir, size.devices, anchor);
    sign_ins(rng, &mut dir, size.sign_ins, anchor);
    audits(rng, &mut dir, size.directory_audits, anchor);
    alerts(rng, &mut dir, size.alerts, tenant_id, anchor);
    dir.delta_floor = 0;
    dir
}

fn users(rng: &mut Rng, dir: &mut Directory, count: usize, domain: &str, anchor: DateTime<Utc>) {
    let mut taken: HashMap<String, u32> = HashMap::with_capacity(count);
    let mut heads: Vec<Option<u32>> = vec![None; DEPARTMENTS.len()];
    let mut by_department: Vec<Vec<u32>> = vec![Vec::new(); DEPARTMENTS.len()];
    for i in 0..count {
        let first = *rng.pick(FIRST);
        let last = *rng.pick(LAST);
        let base = format!(
            "{}.{}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase()
        );
        let n = taken.entry(base.clone()).or_insert(0);
        *n += 1;
        let nickname = if *n == 1 { base } else { format!("{base}{n}") };
        let guest = i > 0 && rng.chance(0.03);
        let (upn, mail, user_type) = if guest {
            let external = format!("{nickname}@partner-mail.example");
            (
                format!("{}#EXT#@{domain}", external.replace('@', "_")),
                Some(external),
                "Guest",
            )
        } else {
            let upn = format!("{nickname}@{domain}");
            (upn.clone(), Some(upn), "Member")
        };
        let d = if i == 0 {
            5
        } else {
            rng.below(DEPARTMENTS.len())
        };
        let (department, titles) = DEPARTMENTS[d];
        let (city, country, usage) = *rng.pick(CITIES);
        let idx = u32::try_from(i).expect("fewer than 2^32 users");
        let (job_title, manager) = if i == 0 {
            ("Chief Executive Officer".to_owned(), None)
        } else if heads[d].is_none() && !guest {
            heads[d] = Some(idx);
            (format!("Head of {department}"), Some(0))
        } else {
            let peers = &by_department[d];
            let manager = if peers.is_empty() {
                heads[d].or(Some(0))
            } else {
                Some(peers[rng.below(peers.len())])
            };
            ((*rng.pick(titles)).to_owned(), manager)
        };
        if !guest {
            by_department[d].push(idx);
        }
        let created = at(anchor, rng, 5 * 365);
        let never_signed_in = rng.chance(0.04);
        let last_sign_in = (!never_signed_in).then(|| at(anchor, rng, 30));
        let activity = SignInActivity {
            last_sign_in,
            last_non_interactive_sign_in: (!never_signed_in).then(|| at(anchor, rng, 7)),
            last_successful_sign_in: last_sign_in,
            last_sign_in_request_id: last_sign_in.map(|_| rng.guid()),
        };
        let user = User {
            id: rng.guid(),
            display_name: format!("{first} {last}"),
            given_name: Some(first.to_owned()),
            surname: Some(last.to_owned()),
            user_principal_name: upn,
            mail,
            mail_nickname: nickname,
            job_title: (!guest).then_some(job_title),
            department: (!guest).then(|| department.to_owned()),
            office_location: (!guest).then(|| format!("{city} {}", 1 + rng.below(4))),
            company_name: None,
            city: Some(city.to_owned()),
            country: Some(country.to_owned()),
            usage_location: Some(usage.to_owned()),
            mobile_phone: rng
                .chance(0.6)
                .then(|| format!("+1 555 01{:02}", rng.below(100))),
            business_phones: if rng.chance(0.7) {
                vec![format!("+1 425 555 {:04}", rng.below(10_000))]
            } else {
                Vec::new()
            },
            employee_id: (!guest).then(|| format!("E{:06}", i + 1)),
            preferred_language: Some("en-US".to_owned()),
            account_enabled: i == 0 || !rng.chance(0.05),
            user_type: user_type.to_owned(),
            created_date_time: created,
            manager: if guest { None } else { manager },
            sign_in_activity: activity,
            extra: serde_json::Map::new(),
            state: ObjState::Active,
            deleted_date_time: None,
            memberships_before_delete: Vec::new(),
            version: 0,
        };
        dir.push_user(user);
    }
}

fn groups(
    rng: &mut Rng,
    dir: &mut Directory,
    size: TenantSize,
    domain: &str,
    anchor: DateTime<Utc>,
) {
    let users = dir.users.len();
    for g in 0..size.groups {
        let department = DEPARTMENTS[g % DEPARTMENTS.len()].0;
        let roll = rng.below(100);
        // 40% security, 25% Microsoft 365, 20% distribution, 15% mail-enabled security.
        let (kind, mail_enabled, security_enabled, unified) = match (g, roll) {
            (0, _) => ("All Company", true, false, true),
            (_, 0..40) => ("SG", false, true, false),
            (_, 40..65) => ("Team", true, false, true),
            (_, 65..85) => ("DL", true, false, false),
            _ => ("MESG", true, true, false),
        };
        let name = match kind {
            "All Company" => "All Company".to_owned(),
            "SG" => format!(
                "SG-{department}-{}-{g}",
                rng.pick(&["Readers", "Admins", "Contributors", "VPN", "Licensing"])
            ),
            "Team" => format!("{department} Team {g}"),
            "DL" => format!("DL {department} Announcements {g}"),
            _ => format!("MESG {department} Security {g}"),
        };
        let nickname: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let group = Group {
            id: rng.guid(),
            display_name: name.clone(),
            description: Some(format!("{name} ({department})")),
            mail: mail_enabled.then(|| format!("{nickname}@{domain}")),
            mail_enabled,
            mail_nickname: nickname,
            security_enabled,
            group_types: if unified {
                vec!["Unified".to_owned()]
            } else {
                Vec::new()
            },
            visibility: unified
                .then(|| if rng.chance(0.8) { "Private" } else { "Public" }.to_owned()),
            created_date_time: at(anchor, rng, 4 * 365),
            members: Vec::new(),
            extra: serde_json::Map::new(),
            state: ObjState::Active,
            deleted_date_time: None,
            version: 0,
        };
        let idx = dir.push_group(group);
        let wanted = if g == 0 {
            users
        } else {
            let spread = size.members_per_group.max(1);
            (spread / 5 + rng.below(spread * 8 / 5 + 1)).min(users)
        };
        let mut chosen: Vec<u32> = if wanted == users {
            (0..users).map(|u| u32::try_from(u).expect("u32")).collect()
        } else {
            let mut picked: Vec<u32> = (0..wanted)
                .map(|_| u32::try_from(rng.below(users)).expect("u32"))
                .collect();
            picked.sort_unstable();
            picked.dedup();
            picked
        };
        if g != 0 {
            // Shuffle lightly so member order is not sorted by index.
            for i in (1..chosen.len()).rev() {
                let j = rng.below(i + 1);
                chosen.swap(i, j);
            }
        }
        dir.groups[idx as usize].members = chosen
            .into_iter()
            .map(|u| Member {
                kind: MemberKind::User,
                idx: u,
            })
            .collect();
    }
    // Nesting: about 10% of groups contain one or two groups created after them, so
    // membership is nested but never circular.
    let count = dir.groups.len();
    for g in 1..count {
        if rng.chance(0.10) && g + 1 < count {
            for _ in 0..1 + rng.below(2) {
                let child = g + 1 + rng.below(count - g - 1);
                let member = Member {
                    kind: MemberKind::Group,
                    idx: u32::try_from(child).expect("u32"),
                };
                if !dir.groups[g].members.contains(&member) {
                    dir.groups[g].members.push(member);
                }
            }
        }
    }
}

fn devices(rng: &mut Rng, dir: &mut Directory, count: usize, anchor: DateTime<Utc>) {
    let users = dir.users.len();
    for i in 0..count {
        let owner = (!rng.chance(0.06)).then(|| rng.below(users));
        let (os, version, maker, model) = match rng.below(100) {
            0..55 => (
                "Windows",
                format!(
                    "10.0.{}.{}",
                    rng.pick(&[19045, 22631, 26100]),
                    1000 + rng.below(4000)
                ),
                *rng.pick(&["Dell Inc.", "HP", "Lenovo", "Microsoft Corporation"]),
                *rng.pick(&[
                    "Latitude 7440",
                    "EliteBook 840 G10",
                    "ThinkPad T14",
                    "Surface Laptop 5",
                ]),
            ),
            55..75 => (
                "iOS",
                format!("17.{}.{}", rng.below(7), rng.below(3)),
                "Apple",
                *rng.pick(&["iPhone 14", "iPhone 15", "iPad Air"]),
            ),
            75..90 => (
                "Android",
                format!("{}", 12 + rng.below(3)),
                *rng.pick(&["Samsung", "Google"]),
                *rng.pick(&["Galaxy S23", "Pixel 8"]),
            ),
            _ => (
                "macOS",
                format!("14.{}.{}", rng.below(6), rng.below(2)),
                "Apple",
                *rng.pick(&["MacBook Pro", "MacBook Air"]),
            ),
        };
        let compliance = match rng.below(100) {
            0..80 => "compliant",
            80..92 => "noncompliant",
            92..95 => "inGracePeriod",
            95..98 => "unknown",
            98 => "error",
            _ => "conflict",
        };
        let owner_user = owner.map(|o| &dir.users[o]);
        let device_name = match owner_user {
            Some(user) => format!(
                "{}-{}-{:04}",
                user.mail_nickname.split('.').next().unwrap_or("dev"),
                os.to_ascii_uppercase().chars().take(3).collect::<String>(),
                i % 10_000
            ),
            None => format!("KIOSK-{:05}", i),
        };
        let stale = rng.chance(0.07);
        let device = ManagedDevice {
            id: rng.guid(),
            device_name,
            user_id: owner_user.map(|u| u.id.clone()),
            user_principal_name: owner_user.map(|u| u.user_principal_name.clone()),
            user_display_name: owner_user.map(|u| u.display_name.clone()),
            email_address: owner_user.and_then(|u| u.mail.clone()),
            operating_system: os.to_owned(),
            os_version: version,
            compliance_state: compliance.to_owned(),
            managed_device_owner_type: if rng.chance(0.85) {
                "company"
            } else {
                "personal"
            }
            .to_owned(),
            management_agent: "mdm".to_owned(),
            enrolled_date_time: at(anchor, rng, 3 * 365),
            last_sync_date_time: if stale {
                at(anchor, rng, 90)
            } else {
                at(anchor, rng, 14)
            },
            azure_ad_device_id: rng.guid(),
            azure_ad_registered: true,
            device_enrollment_type: if os == "Windows" {
                "windowsAzureADJoin"
            } else {
                "userEnrollment"
            }
            .to_owned(),
            manufacturer: maker.to_owned(),
            model: model.to_owned(),
            serial_number: format!("SN{:010}", rng.next_u64() % 10_000_000_000),
            is_encrypted: rng.chance(0.9),
            is_supervised: os == "iOS" && rng.chance(0.5),
            jail_broken: "False".to_owned(),
            total_storage_space_in_bytes: 256 * 1024 * 1024 * 1024,
            free_storage_space_in_bytes: i64::try_from(rng.below(200)).unwrap_or(0)
                * 1024
                * 1024
                * 1024,
            extra: serde_json::Map::new(),
            deleted: false,
        };
        dir.push_device(device);
    }
}

fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn sign_ins(rng: &mut Rng, dir: &mut Directory, count: usize, anchor: DateTime<Utc>) {
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let user = &dir.users[rng.below(dir.users.len())];
        let (app_id, app_name) = *rng.pick(APPS);
        let (city, country, _) = *rng.pick(CITIES);
        let (code, reason) = match rng.below(100) {
            0..88 => (0, None),
            88..94 => (
                50126,
                Some("Error validating credentials due to invalid username or password."),
            ),
            94..98 => (50074, Some("Strong Authentication is required.")),
            _ => (
                53003,
                Some("Access has been blocked by Conditional Access policies."),
            ),
        };
        let time = at(anchor, rng, 30);
        let id = rng.guid();
        let interactive = rng.chance(0.6);
        let body = json!({
            "id": id,
            "createdDateTime": iso(time),
            "userDisplayName": user.display_name,
            "userPrincipalName": user.user_principal_name,
            "userId": user.id,
            "appId": app_id,
            "appDisplayName": app_name,
            "ipAddress": format!("203.0.113.{}", rng.below(255)),
            "clientAppUsed": if interactive { "Browser" } else { "Mobile Apps and Desktop clients" },
            "correlationId": rng.guid(),
            "conditionalAccessStatus": if code == 53003 { "failure" } else if rng.chance(0.7) { "success" } else { "notApplied" },
            "isInteractive": interactive,
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes_v2": [],
            "resourceDisplayName": app_name,
            "resourceId": app_id,
            "status": {
                "errorCode": code,
                "failureReason": reason.unwrap_or("Other."),
                "additionalDetails": Value::Null,
            },
            "deviceDetail": {
                "deviceId": "",
                "displayName": "",
                "operatingSystem": rng.pick(&["Windows10", "iOS 17", "Android", "MacOs"]),
                "browser": rng.pick(&["Edge 120.0.0", "Chrome 121.0.0", "Safari", "Rich Client 4.0"]),
                "isCompliant": rng.chance(0.8),
                "isManaged": rng.chance(0.8),
                "trustType": "",
            },
            "location": {
                "city": city,
                "state": "",
                "countryOrRegion": country,
                "geoCoordinates": Value::Null,
            },
            "appliedConditionalAccessPolicies": [],
        });
        records.push(AuditRecord { id, time, body });
    }
    records.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    dir.sign_ins = records;
}

fn audits(rng: &mut Rng, dir: &mut Directory, count: usize, anchor: DateTime<Utc>) {
    const ACTIVITIES: &[(&str, &str, &str)] = &[
        ("Add user", "UserManagement", "Add"),
        ("Update user", "UserManagement", "Update"),
        ("Delete user", "UserManagement", "Delete"),
        ("Reset user password", "UserManagement", "Update"),
        ("Add member to group", "GroupManagement", "Assign"),
        ("Remove member from group", "GroupManagement", "Unassign"),
        ("Add group", "GroupManagement", "Add"),
        ("Consent to application", "ApplicationManagement", "Assign"),
        (
            "Add app role assignment to service principal",
            "ApplicationManagement",
            "Assign",
        ),
    ];
    let admins: Vec<usize> = (0..dir.users.len().min(5)).collect();
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let (activity, category, operation) = *rng.pick(ACTIVITIES);
        let actor = &dir.users[*rng.pick(&admins)];
        let target = &dir.users[rng.below(dir.users.len())];
        let time = at(anchor, rng, 30);
        let id = format!("Directory_{}", rng.guid());
        let ok = rng.chance(0.97);
        let body = json!({
            "id": id,
            "category": category,
            "correlationId": rng.guid(),
            "result": if ok { "success" } else { "failure" },
            "resultReason": if ok { "" } else { "Insufficient privileges" },
            "activityDisplayName": activity,
            "activityDateTime": iso(time),
            "loggedByService": "Core Directory",
            "operationType": operation,
            "initiatedBy": {
                "app": Value::Null,
                "user": {
                    "id": actor.id,
                    "displayName": Value::Null,
                    "userPrincipalName": actor.user_principal_name,
                    "ipAddress": format!("198.51.100.{}", rng.below(255)),
                },
            },
            "targetResources": [{
                "id": target.id,
                "displayName": Value::Null,
                "type": "User",
                "userPrincipalName": target.user_principal_name,
                "groupType": Value::Null,
                "modifiedProperties": [],
            }],
            "additionalDetails": [],
        });
        records.push(AuditRecord { id, time, body });
    }
    records.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    dir.directory_audits = records;
}

fn alerts(
    rng: &mut Rng,
    dir: &mut Directory,
    count: usize,
    tenant_id: &str,
    anchor: DateTime<Utc>,
) {
    const KINDS: &[(&str, &str, &str, &str)] = &[
        (
            "Suspicious sign-in activity",
            "InitialAccess",
            "azureAdIdentityProtection",
            "microsoftEntraIdProtection",
        ),
        (
            "Malware detected on device",
            "Malware",
            "microsoftDefenderForEndpoint",
            "antivirus",
        ),
        (
            "Impossible travel activity",
            "InitialAccess",
            "microsoftDefenderForCloudApps",
            "microsoftDefenderForCloudApps",
        ),
        (
            "Mass download by a single user",
            "Exfiltration",
            "microsoftDefenderForCloudApps",
            "microsoftDefenderForCloudApps",
        ),
        (
            "Phishing email delivered",
            "InitialAccess",
            "microsoftDefenderForOffice365",
            "microsoftDefenderForOffice365",
        ),
    ];
    let mut records = Vec::with_capacity(count);
    for i in 0..count {
        let (title, category, service, detection) = *rng.pick(KINDS);
        let user = &dir.users[rng.below(dir.users.len())];
        let created = at(anchor, rng, 30);
        let id = format!("da{}", rng.guid().replace('-', "")[..30].to_owned());
        let body = json!({
            "id": id,
            "providerAlertId": rng.guid(),
            "incidentId": format!("{}", 1000 + i),
            "status": rng.pick(&["new", "inProgress", "resolved"]),
            "severity": rng.pick(&["low", "medium", "high", "informational"]),
            "classification": Value::Null,
            "determination": Value::Null,
            "serviceSource": service,
            "detectionSource": detection,
            "detectorId": rng.guid(),
            "tenantId": tenant_id,
            "title": title,
            "description": format!("{title} involving {}", user.user_principal_name),
            "recommendedActions": "Investigate the user's recent activity and reset credentials if needed.",
            "category": category,
            "assignedTo": Value::Null,
            "alertWebUrl": format!("https://security.microsoft.com/alerts/{id}"),
            "incidentWebUrl": format!("https://security.microsoft.com/incidents/{}", 1000 + i),
            "actorDisplayName": Value::Null,
            "threatDisplayName": Value::Null,
            "threatFamilyName": Value::Null,
            "mitreTechniques": [],
            "createdDateTime": iso(created),
            "lastUpdateDateTime": iso(created + Duration::minutes(i64::try_from(rng.below(600)).unwrap_or(0))),
            "resolvedDateTime": Value::Null,
            "firstActivityDateTime": iso(created - Duration::minutes(5)),
            "lastActivityDateTime": iso(created),
            "comments": [],
            "evidence": [{
                "@odata.type": "#microsoft.graph.security.userEvidence",
                "createdDateTime": iso(created),
                "verdict": "suspicious",
                "remediationStatus": "none",
                "roles": [],
                "userAccount": {
                    "accountName": user.mail_nickname,
                    "domainName": user.user_principal_name.split('@').nth(1).unwrap_or_default(),
                    "userSid": Value::Null,
                    "azureAdUserId": user.id,
                    "userPrincipalName": user.user_principal_name,
                    "displayName": user.display_name,
                },
            }],
            "systemTags": [],
        });
        records.push(AuditRecord {
            id,
            time: created,
            body,
        });
    }
    records.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    dir.alerts = records;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GroupKind;

    fn anchor() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z")
            .unwrap()
            .into()
    }

    #[test]
    fn same_seed_same_world() {
        let a = world(9, 2, TenantSize::SMALL, anchor());
        let b = world(9, 2, TenantSize::SMALL, anchor());
        let c = world(10, 2, TenantSize::SMALL, anchor());
        assert_eq!(a.tenants[0].id, b.tenants[0].id);
        assert_eq!(
            a.tenants[1].dir.users[7].user_principal_name,
            b.tenants[1].dir.users[7].user_principal_name
        );
        assert_eq!(
            a.tenants[0].dir.sign_ins[5].body,
            b.tenants[0].dir.sign_ins[5].body
        );
        assert_ne!(a.tenants[0].id, c.tenants[0].id);
        assert_ne!(a.tenants[0].id, a.tenants[1].id);
    }

    #[test]
    fn tenants_are_realistic() {
        let world = world(3, 1, TenantSize::MEDIUM, anchor());
        let dir = &world.tenants[0].dir;
        assert_eq!(dir.users.len(), 2_000);
        let guests = dir.users.iter().filter(|u| u.user_type == "Guest").count();
        let disabled = dir.users.iter().filter(|u| !u.account_enabled).count();
        assert!((20..150).contains(&guests), "{guests}");
        assert!((40..200).contains(&disabled), "{disabled}");
        // Every manager chain ends at the CEO, with no cycle.
        for (i, _) in dir.users.iter().enumerate() {
            let mut cur = i;
            let mut steps = 0;
            while let Some(m) = dir.users[cur].manager {
                cur = m as usize;
                steps += 1;
                assert!(steps < 2_000);
            }
            assert!(cur == 0 || dir.users[i].user_type == "Guest" || i == 0);
        }
        let kinds: BTreeSet<String> = dir
            .groups
            .iter()
            .map(|g| format!("{:?}", g.kind()))
            .collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert!(
            dir.groups
                .iter()
                .any(|g| g.members.iter().any(|m| m.kind == MemberKind::Group))
        );
        assert_eq!(dir.groups[0].kind(), GroupKind::Microsoft365);
        assert_eq!(dir.groups[0].members.len(), 2_000);
        let oses: BTreeSet<&str> = dir
            .devices
            .iter()
            .map(|d| d.operating_system.as_str())
            .collect();
        assert_eq!(oses.len(), 4);
        let states: BTreeSet<&str> = dir
            .devices
            .iter()
            .map(|d| d.compliance_state.as_str())
            .collect();
        assert!(states.len() >= 5, "{states:?}");
        assert!(dir.sign_ins.windows(2).all(|w| w[0].time <= w[1].time));
        assert!(
            dir.sign_ins
                .iter()
                .all(|s| s.time > anchor() - Duration::days(30))
        );
        let apps = &world.apps[&world.seeded_apps[0].connector];
        assert!(apps.secrets[0].expires > anchor());
        assert!(apps.secrets[1].expires < anchor());
    }
}
