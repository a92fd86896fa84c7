//! The OpenAPI 3 document, generated from the handlers' annotations (utoipa), and a plain
//! HTML rendering of it for people.

use std::fmt::Write as _;
use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};

/// The whole document.
pub(crate) fn document() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("tenantlink")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Connect a platform to its customers' Microsoft cloud tenants. Organization \
                     endpoints take an organization's API key (`Authorization: Bearer tlk_…`); \
                     admin endpoints take the platform admin key. Errors are \
                     `{\"error\": {\"code\", \"message\"}}`.",
                ))
                .build(),
        )
        .build();
    for part in crate::routes::openapi_parts() {
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    for name in ["api_key", "admin_key"] {
        components.add_security_scheme(
            name,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    doc
}

/// The document as JSON (built once).
pub(crate) fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_pretty_json().unwrap_or_else(|_| "{}".into()))
}

/// `text` safe inside HTML text and attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The document as one HTML page: each operation with its parameters and answers.
pub(crate) fn document_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| {
        let doc: serde_json::Value =
            serde_json::from_str(document_json()).unwrap_or(serde_json::Value::Null);
        let mut html = String::from(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tenantlink API</title>\
             <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
             h2{margin-top:2rem;border-bottom:1px solid #ddd}.op{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #36c;background:#f7f9fc}\
             .m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}code{background:#eef}td,th{text-align:left;padding:.1rem .6rem}</style>\
             </head><body><h1>tenantlink API</h1><p>",
        );
        let description = doc["info"]["description"].as_str().unwrap_or_default();
        let _ = write!(
            html,
            "{}</p><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {}).</p>",
            html_escape(description),
            html_escape(doc["openapi"].as_str().unwrap_or("3"))
        );
        let mut by_tag: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        if let Some(paths) = doc["paths"].as_object() {
            for (path, item) in paths {
                let Some(item) = item.as_object() else { continue };
                for (method, op) in item {
                    let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                    let mut block = format!(
                        "<div class=\"op\"><p><span class=\"m\">{}</span><code>{}</code></p><p>{}</p>",
                        html_escape(method),
                        html_escape(path),
                        html_escape(op["summary"].as_str().or(op["description"].as_str()).unwrap_or(""))
                    );
                    if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                        block.push_str("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>");
                        for p in params {
                            let _ = write!(
                                block,
                                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                                html_escape(p["name"].as_str().unwrap_or("")),
                                html_escape(p["in"].as_str().unwrap_or("")),
                                html_escape(p["description"].as_str().unwrap_or(""))
                            );
                        }
                        block.push_str("</table>");
                    }
                    if let Some(responses) = op["responses"].as_object() {
                        block.push_str("<p>");
                        for (status, r) in responses {
                            let _ = write!(
                                block,
                                "<code>{}</code> {} &nbsp; ",
                                html_escape(status),
                                html_escape(r["description"].as_str().unwrap_or(""))
                            );
                        }
                        block.push_str("</p>");
                    }
                    block.push_str("</div>");
                    by_tag.entry(tag).or_default().push(block);
                }
            }
        }
        for (tag, blocks) in by_tag {
            let _ = write!(html, "<h2>{}</h2>", html_escape(&tag));
            for b in blocks {
                html.push_str(&b);
            }
        }
        html.push_str("</body></html>");
        html
    })
}
