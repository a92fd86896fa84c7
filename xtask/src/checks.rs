//! Mechanical checks of the project's rules: dependency layering, paired migrations and
//! cargo-deny.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{cargo, run};

/// STYLE.md's table: which internal crates each crate may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("tenantlink-vault", &[]),
    ("tenantlink-identity", &[]),
    ("tenantlink-graph", &[]),
    ("tenantlink-arm", &[]),
    ("tenantlink-store", &[]),
    ("tenantlink-emulator", &[]),
    (
        "tenantlink-sync",
        &[
            "tenantlink-vault",
            "tenantlink-identity",
            "tenantlink-graph",
            "tenantlink-arm",
            "tenantlink-store",
        ],
    ),
    ("tenantlink-server", &["*"]),
    ("xtask", &[]),
];

/// Any crate's tests may use the emulator.
const DEV_ALLOWED: &[&str] = &["tenantlink-emulator"];

/// External crates only some packages may name (STYLE.md: only store names diesel; only the
/// server and the emulator name actix-web).
const EXTERNAL_OWNERS: &[(&str, &[&str])] = &[
    ("diesel", &["tenantlink-store"]),
    ("diesel-async", &["tenantlink-store"]),
    ("diesel_migrations", &["tenantlink-store"]),
    ("actix-web", &["tenantlink-server", "tenantlink-emulator"]),
];

/// Reads `cargo metadata` and fails on an edge the tables above do not allow.
pub(crate) fn layering(root: &Path) -> Result<()> {
    let output = cargo(root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)?;
    let violations = layering_violations(&metadata)?;
    if !violations.is_empty() {
        bail!(
            "dependency layering broken (see STYLE.md section 1):\n  {}",
            violations.join("\n  ")
        );
    }
    eprintln!("    layering: every internal edge is allowed");
    Ok(())
}

fn layering_violations(metadata: &Value) -> Result<Vec<String>> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata has no packages")?;
    let internal: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut violations = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default();
        let Some(may) = allowed.get(name) else {
            violations.push(format!(
                "{name} is not in the layering table; add it to xtask/src/checks.rs and STYLE.md"
            ));
            continue;
        };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let is_dev = dep["kind"].as_str() == Some("dev");
            if internal.contains(dep_name) {
                let ok = may.contains(&"*") && dep_name != "xtask"
                    || may.contains(&dep_name)
                    || is_dev && DEV_ALLOWED.contains(&dep_name)
                    || dep_name == name;
                if !ok {
                    let kind = if is_dev {
                        "dev-dependency"
                    } else {
                        "dependency"
                    };
                    violations.push(format!("{name} -> {dep_name} ({kind}) is not allowed"));
                }
            }
            if let Some((_, owners)) = EXTERNAL_OWNERS.iter().find(|(n, _)| *n == dep_name)
                && !owners.contains(&name)
                && !is_dev
            {
                violations.push(format!(
                    "{name} names {dep_name}, which only {} may",
                    owners.join(" and ")
                ));
            }
        }
    }
    Ok(violations)
}

/// Migrations come in pairs: the same names in `migrations/postgres` and `migrations/sqlite`,
/// each named `YYYY-MM-DD-HHMMSS_verb_object` with an `up.sql` and a `down.sql`.
pub(crate) fn migrations(root: &Path) -> Result<()> {
    let list = |backend: &str| -> Result<BTreeSet<String>> {
        let dir = root.join("migrations").join(backend);
        let mut names = BTreeSet::new();
        if !dir.exists() {
            return Ok(names);
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                names.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    };
    let postgres = list("postgres")?;
    let sqlite = list("sqlite")?;
    let mut problems = Vec::new();
    for name in postgres.symmetric_difference(&sqlite) {
        let missing = if postgres.contains(name) {
            "sqlite"
        } else {
            "postgres"
        };
        problems.push(format!("{name} has no twin in migrations/{missing}"));
    }
    for (backend, names) in [("postgres", &postgres), ("sqlite", &sqlite)] {
        for name in names {
            if !migration_name_ok(name) {
                problems.push(format!(
                    "migrations/{backend}/{name}: name it YYYY-MM-DD-HHMMSS_verb_object"
                ));
            }
            for file in ["up.sql", "down.sql"] {
                if !root
                    .join("migrations")
                    .join(backend)
                    .join(name)
                    .join(file)
                    .exists()
                {
                    problems.push(format!("migrations/{backend}/{name} has no {file}"));
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("migrations are not paired:\n  {}", problems.join("\n  "));
    }
    eprintln!(
        "    migrations: {} pair(s), both backends agree",
        postgres.len()
    );
    Ok(())
}

fn migration_name_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10)
        && bytes.get(10) == Some(&b'-')
        && digits(11..17)
        && bytes.get(17) == Some(&b'_')
        && name.len() > 18
        && name[18..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// cargo-deny: licenses, bans and sources always; advisories against the RustSec database,
/// refreshed when the network allows and otherwise read from the local copy, whose age is
/// printed. With no copy at all, advisories are reported as not checked.
pub(crate) fn deny(root: &Path) -> Result<()> {
    ensure_cargo_deny(root)?;
    // cargo-deny reads the graph of every target platform; fetch it all first (crates.io is
    // reachable) so the checks themselves can run offline.
    run(cargo(root).args(["fetch", "--locked"]))?;
    run(cargo(root).args(["deny", "--offline", "check", "bans", "licenses", "sources"]))?;
    let fetched = cargo(root)
        .args(["deny", "fetch", "db"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match local_advisory_db() {
        Some((path, date)) => {
            let origin = if fetched {
                "updated from its git source just now"
            } else {
                "its git source is unreachable; using the local copy as it is"
            };
            eprintln!(
                "    advisories: RustSec database of {date} ({origin}) at {}",
                path.display()
            );
            run(cargo(root).args(["deny", "--offline", "check", "advisories"]))
        }
        None => {
            eprintln!(
                "    WARNING advisories NOT CHECKED: the RustSec advisory database could not be fetched and no local copy exists in ~/.cargo/advisory-dbs"
            );
            Ok(())
        }
    }
}

fn local_advisory_db() -> Option<(std::path::PathBuf, String)> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let dir = std::fs::read_dir(home.join("advisory-dbs")).ok()?;
    for entry in dir.flatten() {
        let path = entry.path();
        if path.join("crates").is_dir() {
            let date = Command::new("git")
                .arg("-C")
                .arg(&path)
                .args(["log", "-1", "--format=%cs"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "unknown date".into());
            return Some((path, date));
        }
    }
    None
}

fn ensure_cargo_deny(root: &Path) -> Result<()> {
    let present = cargo(root)
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!("    cargo-deny is missing: installing it (cargo install --locked cargo-deny)");
        run(cargo(root).args(["install", "--locked", "cargo-deny"]))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
        json!({
            "name": name,
            "dependencies": deps.iter().map(|(n, k)| json!({"name": n, "kind": k})).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn allowed_edges_pass_and_forbidden_ones_fail() {
        let metadata = json!({"packages": [
            package("tenantlink-vault", &[("fernet", None)]),
            package("tenantlink-emulator", &[("actix-web", None)]),
            package("tenantlink-graph", &[("tenantlink-emulator", Some("dev"))]),
            package("tenantlink-sync", &[("tenantlink-vault", None), ("tenantlink-store", None)]),
            package("tenantlink-server", &[("tenantlink-sync", None), ("actix-web", None)]),
        ]});
        assert!(layering_violations(&metadata).unwrap().is_empty());

        let metadata = json!({"packages": [
            package("tenantlink-vault", &[]),
            package("tenantlink-emulator", &[]),
            package("tenantlink-store", &[("tenantlink-vault", None)]),
            package("tenantlink-graph", &[("tenantlink-emulator", None), ("diesel", None)]),
            package("tenantlink-utils", &[]),
        ]});
        let violations = layering_violations(&metadata).unwrap();
        assert_eq!(violations.len(), 4, "{violations:#?}");
        assert!(violations[0].contains("tenantlink-store -> tenantlink-vault"));
    }

    #[test]
    fn migration_names() {
        assert!(migration_name_ok("2026-11-24-120000_create_organizations"));
        assert!(!migration_name_ok("2026-11-24_create"));
        assert!(!migration_name_ok("2026-11-24-120000_Create"));
        assert!(!migration_name_ok("2026-11-24-120000_"));
    }
}
