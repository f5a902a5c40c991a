//! Whether a JSON Schema declares a path, for `doctor`'s check of a `format: json_schema`
//! block's rules against the topic's latest registered schema.
//!
//! "Declares", not "allows": JSON Schema lets an object hold any member unless
//! `additionalProperties: false`, so almost every path is *allowed* and that check would never
//! warn. A path is declared when `properties` (or a matching `patternProperties`, or an
//! `additionalProperties` that is a schema) names each step — a misspelt path in a rule is then
//! a warning. Followed: local `$ref`s (`#/definitions/…`, `#/$defs/…`), `allOf`/`anyOf`/
//! `oneOf` (any branch), `if`/`then`/`else`, `items`/`prefixItems` (arrays are transparent, as
//! in the rules' paths). A `$ref` to another document (a registry reference) cannot be followed
//! here and counts as declaring everything below it: no warning rather than a wrong one.

use serde_json::Value;

/// Whether `schema` declares `path` (member names from the root).
pub fn declares(schema: &Value, path: &[String]) -> bool {
    walk(schema, schema, path, 0)
}

fn walk(root: &Value, s: &Value, path: &[String], depth: usize) -> bool {
    if depth > 64 {
        return true; // a recursive schema followed far enough: do not warn
    }
    let o = match s {
        Value::Bool(b) => return *b && path.is_empty(),
        Value::Object(o) => o,
        _ => return false,
    };
    if let Some(Value::String(r)) = o.get("$ref") {
        match r.strip_prefix('#') {
            Some(pointer) => match root.pointer(pointer) {
                Some(target) if walk(root, target, path, depth + 1) => return true,
                Some(_) => {}
                None => return false,
            },
            None => return true, // another document: cannot be checked here
        }
    }
    let branches = ["allOf", "anyOf", "oneOf"]
        .iter()
        .filter_map(|k| o.get(*k).and_then(Value::as_array))
        .flatten()
        .chain(["if", "then", "else"].iter().filter_map(|k| o.get(*k)));
    for b in branches {
        if walk(root, b, path, depth + 1) {
            return true;
        }
    }
    // Arrays are transparent: `items[0].sku` is `items.sku`.
    let items = o
        .get("items")
        .into_iter()
        .flat_map(|i| match i {
            Value::Array(list) => list.iter().collect::<Vec<_>>(),
            one => vec![one],
        })
        .chain(
            o.get("prefixItems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for i in items {
        if walk(root, i, path, depth + 1) {
            return true;
        }
    }
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    if let Some(p) = o.get("properties").and_then(|p| p.get(first.as_str())) {
        if walk(root, p, rest, depth + 1) {
            return true;
        }
    }
    if let Some(Value::Object(patterns)) = o.get("patternProperties") {
        for (pattern, p) in patterns {
            let matches = regex::Regex::new(pattern).is_ok_and(|re| re.is_match(first));
            if matches && walk(root, p, rest, depth + 1) {
                return true;
            }
        }
    }
    match o.get("additionalProperties") {
        Some(extra @ Value::Object(_)) => walk(root, extra, rest, depth + 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn follows_properties_refs_combinators_arrays_and_maps() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "user": {"$ref": "#/$defs/User"},
                "items": {"type": "array", "items": {"$ref": "#/definitions/Item"}},
                "attrs": {"type": "object", "additionalProperties": {"type": "string"}},
                "ext": {"$ref": "other.json#/Thing"},
                "kind": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {"code": {}}}]}
            },
            "patternProperties": {"^x_": {"type": "string"}},
            "allOf": [{"properties": {"ts": {"type": "integer"}}}],
            "$defs": {"User": {"properties": {"id": {}, "email": {}}}},
            "definitions": {"Item": {"properties": {"sku": {}, "qty": {}}}}
        });
        for yes in [
            "id",
            "user.id",
            "user.email",
            "items.sku",
            "attrs.color",
            "ext.anything",
            "kind.code",
            "x_trace",
            "ts",
        ] {
            assert!(declares(&schema, &p(yes)), "{yes}");
        }
        for no in [
            "idd",
            "user.name",
            "items.price",
            "id.more",
            "kind.other",
            "y_trace",
            "ts.x",
        ] {
            assert!(!declares(&schema, &p(no)), "{no}");
        }
        // A dangling local $ref declares nothing; `true` declares only itself.
        let dangling = serde_json::json!({"properties": {"a": {"$ref": "#/$defs/Missing"}}});
        assert!(!declares(&dangling, &p("a.b")));
        assert!(declares(&serde_json::json!(true), &[]));
        // A recursive schema stops.
        let tree = serde_json::json!({"$ref": "#/$defs/N", "$defs": {"N": {"properties": {"child": {"$ref": "#/$defs/N"}}}}});
        assert!(declares(&tree, &p("child.child.child")));
        assert!(!declares(&tree, &p("child.name")));
    }
}
