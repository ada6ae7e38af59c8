//! `api/web/contract.js`: the wire enums the web app uses (statuses, stages, styles, formats,
//! error codes, the `type` of each `/ws` message), generated from the OpenAPI document so the app never retypes them. A test
//! fails when the file drifts from the document; `UPDATE_WEB_CONTRACT=1 cargo test -p api
//! --lib web_contract` writes it again.

use serde_json::Value;

/// The document's enums the app needs, by schema name.
const ENUMS: &[&str] = &[
    "ErrorCode",
    "JobStatus",
    "Stage",
    "FailureCode",
    "Style",
    "OutputFormat",
    "ClipStatus",
    "SyncStatus",
    "PostStatus",
    "WeeklyOutcome",
];

/// The module's text: one frozen object per enum, each wire name under its upper-case key.
pub fn render(document: &Value) -> String {
    let mut module =
        String::from("// Generated from /openapi.json by api/src/web_contract.rs; do not edit.\n");
    for name in ENUMS {
        let values = document["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("the document has the enum {name}"));
        let entries: Vec<String> = values
            .iter()
            .filter_map(Value::as_str)
            .map(|value| format!("  {}: '{value}',", value.to_uppercase()))
            .collect();
        module.push_str(&format!(
            "\nexport const {name} = Object.freeze({{\n{}\n}});\n",
            entries.join("\n")
        ));
    }
    module.push_str(&format!(
        "\nexport const LiveType = Object.freeze({{\n{}\n}});\n",
        live_types(document).join("\n")
    ));
    module
}

/// The `type` each variant of `LiveMessage` carries.
fn live_types(document: &Value) -> Vec<String> {
    let variants = document["components"]["schemas"]["LiveMessage"]["oneOf"]
        .as_array()
        .expect("the document has LiveMessage");
    variants
        .iter()
        .map(|variant| {
            let parts = variant["allOf"].as_array().map_or(&[][..], Vec::as_slice);
            std::iter::once(variant)
                .chain(parts)
                .find_map(|part| part["properties"]["type"]["enum"][0].as_str())
                .expect("every LiveMessage variant names its type")
        })
        .map(|value| format!("  {}: '{value}',", value.to_uppercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::routes::{docs::ApiDocument, table};

    #[test]
    fn the_web_contract_is_the_documents() {
        let document = ApiDocument::new(&table(&Default::default()));
        let document: serde_json::Value = serde_json::from_slice(&document.0).unwrap();
        let generated = render(&document);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/web/contract.js");
        if std::env::var_os("UPDATE_WEB_CONTRACT").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            kept == generated,
            "api/web/contract.js differs from the document: run \
             UPDATE_WEB_CONTRACT=1 cargo test -p api --lib web_contract"
        );
    }
}
