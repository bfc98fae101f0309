//! The spec reference of docs/pipeline-spec.md, generated from the registered config structs
//! (their doc comments and defaults), so the documentation cannot drift from the code: a test
//! compares the file with [`markdown`].

use serde_json::Value;

use ldae_datasets::format::format_kinds;
use ldae_pipeline::registry::{operator_kinds, schema_of, sink_kinds};

use crate::source::SourceSpec;

/// The line that opens the generated part of docs/pipeline-spec.md.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: ldae_jobs::reference::markdown -->";
/// The line that closes it.
pub const END: &str = "<!-- END GENERATED -->";

/// One line of text (doc comments wrap over several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A default value as a spec would write it: floats at f32 precision (most settings are f32,
/// whose f64 widening would read 0.3499999940395355 instead of 0.35).
fn show(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or_default();
            let short = (x as f32).to_string();
            if short.contains('.') || short.contains('e') {
                short
            } else {
                format!("{short}.0")
            }
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// The values or type a schema node accepts, in words.
fn type_of(node: &Value, defs: &Value) -> String {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return match defs.get(name) {
            Some(def) => type_of(def, defs),
            None => name.to_string(),
        };
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if let Some(c) = node.get("const") {
        return format!("`{c}`");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = node.get(key).and_then(Value::as_array) {
            return options
                .iter()
                .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                .map(|o| type_of(o, defs))
                .collect::<Vec<_>>()
                .join(" \\| ");
        }
    }
    let item = |node: &Value| match node.get("items") {
        Some(Value::Array(items)) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| type_of(i, defs))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(items) => format!("list of {}", type_of(items, defs)),
        None => "list".to_string(),
    };
    match node.get("type") {
        Some(Value::String(t)) if t == "array" => item(node),
        Some(Value::String(t)) if t == "object" => "table".to_string(),
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(|t| {
                if t == "array" {
                    item(node)
                } else {
                    t.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" \\| "),
        _ => "any".to_string(),
    }
}

/// The definition of a table-valued key (a struct, possibly optional), if it is one.
fn table_of<'a>(node: &'a Value, defs: &'a Value) -> Option<&'a Value> {
    let resolve = |n: &'a Value| -> Option<&'a Value> {
        let r = n.get("$ref")?.as_str()?;
        defs.get(r.rsplit('/').next()?)
    };
    let def = resolve(node).or_else(|| node.get("anyOf")?.as_array()?.iter().find_map(resolve))?;
    def.get("properties").map(|_| def)
}

/// The section of one component kind (or format): its title, its description and its keys
/// (`none` when it has none).
fn section(title: &str, schema: &Value, none: &str) -> String {
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let mut out = format!("### {title}\n\n");
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        out.push_str(&one_line(d));
        out.push_str("\n\n");
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        out.push_str(none);
        out.push_str("\n\n");
        return out;
    };
    out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
    for (key, node) in props {
        let default = match node.get("default") {
            Some(Value::Null) => "unset".to_string(),
            Some(v) => format!("`{}`", show(v)),
            None if required.contains(&key.as_str()) => "required".to_string(),
            None => "unset".to_string(),
        };
        let meaning = node
            .get("description")
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default();
        out.push_str(&format!(
            "| `{key}` | {} | {default} | {meaning} |\n",
            type_of(node, &defs)
        ));
        // A nested table's own keys, as `key.sub` rows.
        if let Some(sub) = table_of(node, &defs).and_then(|t| t.get("properties")) {
            for (name, n) in sub.as_object().into_iter().flatten() {
                let default = n
                    .get("default")
                    .map(|v| format!("`{}`", show(v)))
                    .unwrap_or_else(|| "unset".into());
                let meaning = n
                    .get("description")
                    .and_then(Value::as_str)
                    .map(one_line)
                    .unwrap_or_default();
                out.push_str(&format!(
                    "| `{key}.{name}` | {} | {default} | {meaning} |\n",
                    type_of(n, &defs)
                ));
            }
        }
    }
    out.push('\n');
    out
}

/// The generated reference: the `[source]` keys, every registered dataset format, operator
/// and sink kind with its keys.
pub fn markdown() -> String {
    let mut out = String::from("## Sources (`[source]`)\n\n");
    out.push_str(&section("`[source]`", &schema_of::<SourceSpec>(), ""));
    out.push_str(
        "A format's own settings go in a table named after it (`[source.synthetic]`); the \
         format that reads the input uses its table or its defaults.\n\n",
    );
    for k in format_kinds() {
        let aliases: String = k.aliases.iter().map(|a| format!(" or `{a}`")).collect();
        out.push_str(&section(
            &format!("`{}`{aliases} (`[source.{}]`)", k.name, k.name),
            &(k.schema)(),
            "No settings.",
        ));
    }
    out.push_str("## Operators (`[[operator]]`)\n\n");
    for k in operator_kinds() {
        out.push_str(&section(
            &format!("`{}`", k.kind),
            &(k.schema)(),
            "No keys besides `kind`.",
        ));
    }
    out.push_str("## Sinks (`[sink]`)\n\n");
    for k in sink_kinds() {
        out.push_str(&section(
            &format!("`{}`", k.kind),
            &(k.schema)(),
            "No keys besides `kind`.",
        ));
    }
    out
}
