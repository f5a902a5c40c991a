//! String templates: `"PRODUCT_DETAIL_PAGE:{{ product.id }}"` — literal text with `{{ path }}`
//! placeholders, parsed once at start-up into literal and pre-split path parts.

use super::doc::Node;
use super::error::MapError;
use super::path::Path;
use super::subject::Ctx;
use super::value::Val;
use crate::config::decode::ConfigError;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    Var(Path),
}

pub fn compile_template(s: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(Part::Lit(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            errors.push(ConfigError::new(
                path,
                format!("template {s:?}: `{{{{` without `}}}}`"),
            ));
            return None;
        };
        match Path::parse(after[..close].trim()) {
            Ok(p) => parts.push(Part::Var(p)),
            Err(e) => {
                errors.push(ConfigError::new(path, format!("template {s:?}: {e}")));
                return None;
            }
        }
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Some(parts)
}

/// Renders a template; if any placeholder is absent the whole value is absent (so `default:` or
/// `first:` can step in) rather than a half-filled id like `PRODUCT_DETAIL_PAGE:`.
pub fn render<'a>(
    parts: &'a [Part],
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
) -> Result<Option<Val<'a>>, MapError> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Lit(l) => out.push_str(l),
            Part::Var(path) => {
                let Some(v) = path.resolve(ctx.doc, scope).and_then(Val::from_node) else {
                    return Ok(None);
                };
                out.push_str(&v.text().map_err(|e| e.from_source(&format!("`{path}`")))?);
            }
        }
    }
    Ok(Some(Val::Str(Cow::Owned(out))))
}
