//! Field sources: where a value comes from, then its transforms and default.
//!
//! In YAML a source is either a plain value (a constant; a string with `{{ … }}` is a template)
//! or a mapping with exactly one origin key — `path`, `pointer`, `const`, `template`, `first`,
//! `kafka` (key | topic | partition | offset | timestamp), `header`, `sum`, `if` — plus optional
//! `transform:`, `default:` and `when:`. Everything is parsed here once; evaluation only walks
//! pre-split paths and borrows from the message.
//!
//! Conditional values: `{if: <condition>, then: <source>, else: <source>}` picks a branch (no
//! `else`: absent); `when: <condition>` on any source is the one-branch form, and compiles to
//! exactly that `if` around the source with its transforms and default, so a source whose
//! condition does not hold is absent — its `default:` included — and the field is left out.

use super::condition::Cond;
use super::doc::Node;
use super::error::{MapError, MapReason};
use super::need::Need;
use super::path::Path;
use super::subject::{Ctx, Subject};
use super::template::{compile_template, render, Part};
use super::transform::{self, Transform};
use super::value::{mismatch, Scalar, Val};
use crate::config::decode::{index, kind, ConfigError, MapReader};
use serde_yaml_ng::Value as Yaml;

#[derive(Debug, Clone, PartialEq)]
enum Origin {
    Read(Subject),
    Const(Scalar),
    Template(Vec<Part>),
    First(Vec<Source>),
    /// `if`/`then`/`else`, and `when:` (an `If` without `otherwise`).
    If {
        cond: Box<Cond>,
        then: Box<Source>,
        otherwise: Option<Box<Source>>,
    },
    Sum {
        each: Path,
        /// `where:`: only the elements this holds for (paths relative to the element).
        filter: Option<Box<Cond>>,
        of: Box<Source>,
        times: Option<Box<Source>>,
    },
}

/// The shapes most sources in real rules have, which the field readers in `eval.rs` read
/// without the general evaluation (when the value is of the usual kind; anything else, errors
/// included, they leave to [`Source::eval`]).
pub enum Shape<'s> {
    /// `{path: …}`.
    Path(&'s Path),
    /// `first: [...]` without a transform or default (its members may have any shape).
    First(&'s [Source]),
    /// `{path: …, transform: currency}`, with no default or a text one.
    Currency {
        path: &'s Path,
        default: Option<&'s str>,
    },
    Other,
}

/// A compiled field source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    origin: Origin,
    transforms: Vec<Transform>,
    default: Option<Scalar>,
    label: String,
}

const ORIGINS: [&str; 9] = [
    "path", "pointer", "const", "template", "first", "kafka", "header", "sum", "if",
];

impl Source {
    /// A constant source (used for block defaults and tests).
    pub fn constant(s: Scalar) -> Source {
        Source {
            origin: Origin::Const(s),
            transforms: vec![],
            default: None,
            label: "a constant".into(),
        }
    }

    /// The constant this source always yields, if it is a plain constant (for type checks).
    pub fn as_constant(&self) -> Option<&Scalar> {
        match (&self.origin, self.transforms.is_empty()) {
            (Origin::Const(s), true) => Some(s),
            _ => None,
        }
    }

    /// How the source is shown in error messages (`\`order.total\``, `header \`x-user\``).
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn default(&self) -> Option<&Scalar> {
        self.default.as_ref()
    }

    /// Values a trailing `lookup` can produce (type-checked against the field like constants).
    pub fn lookup_outputs(&self) -> Vec<&Scalar> {
        match self.transforms.last() {
            // A `default: keep` passes source values through: those are checked per message.
            Some(Transform::Lookup(l)) => l.table.values().chain(l.default.value()).collect(),
            _ => vec![],
        }
    }

    /// Every fixed value this source can give as it is: its constant, its default, a trailing
    /// lookup's outputs, and those of the branches of an `if` (or `when:`) whose result is not
    /// transformed further. Fields check them against their type at start-up.
    pub fn fixed_values(&self) -> Vec<&Scalar> {
        let mut out: Vec<&Scalar> = self.as_constant().into_iter().collect();
        out.extend(self.default());
        out.extend(self.lookup_outputs());
        if let (
            Origin::If {
                then, otherwise, ..
            },
            [],
        ) = (&self.origin, self.transforms.as_slice())
        {
            out.extend(then.fixed_values());
            if let Some(o) = otherwise {
                out.extend(o.fixed_values());
            }
        }
        out
    }

    /// Compiles the source at `path`; returns `None` (with errors recorded) if it is unusable.
    pub fn compile(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<Source> {
        match v {
            Yaml::String(s) if s.contains("{{") => {
                let parts = compile_template(s, path, errors)?;
                Some(Source {
                    origin: Origin::Template(parts),
                    transforms: vec![],
                    default: None,
                    label: format!("template {s:?}"),
                })
            }
            Yaml::Mapping(_) => compile_mapping(v, path, errors),
            Yaml::Sequence(_) => {
                errors.push(ConfigError::new(
                    path,
                    "a list is not a source; for the first non-empty of several use `first: [...]`",
                ));
                None
            }
            Yaml::Null => {
                errors.push(ConfigError::new(
                    path,
                    "empty; give a constant or a mapping such as `{path: order.id}`",
                ));
                None
            }
            other => match Scalar::from_yaml(other) {
                Some(s) => Some(Source::constant(s)),
                None => {
                    errors.push(ConfigError::new(
                        path,
                        format!("unsupported value ({})", kind(other)),
                    ));
                    None
                }
            },
        }
    }

    /// Records every message path this source reads (see [`super::need`]).
    pub fn need(&self, need: &mut Need, scope: &[&str]) {
        match &self.origin {
            Origin::Read(Subject::Path(p)) => p.need_value(need, scope),
            Origin::Read(_) | Origin::Const(_) => {}
            Origin::Template(parts) => {
                for part in parts {
                    if let Part::Var(p) = part {
                        p.need_value(need, scope);
                    }
                }
            }
            Origin::First(list) => list.iter().for_each(|s| s.need(need, scope)),
            Origin::If {
                cond,
                then,
                otherwise,
            } => {
                cond.need_in(need, scope);
                then.need(need, scope);
                if let Some(o) = otherwise {
                    o.need(need, scope);
                }
            }
            Origin::Sum {
                each,
                filter,
                of,
                times,
            } => need_each(each, need, scope, |need, inner| {
                if let Some(w) = filter {
                    w.need_in(need, inner);
                }
                of.need(need, inner);
                if let Some(t) = times {
                    t.need(need, inner);
                }
            }),
        }
    }

    /// Calls `f` with every message path this source reads and the key path of the `each:`
    /// element it is read from (`scope`), as [`Source::need`] records them.
    pub fn for_each_path(&mut self, scope: &[String], f: &mut dyn FnMut(&mut Path, &[String])) {
        match &mut self.origin {
            Origin::Read(Subject::Path(p)) => f(p, scope),
            Origin::Read(_) | Origin::Const(_) => {}
            Origin::Template(parts) => {
                for part in parts {
                    if let Part::Var(p) = part {
                        f(p, scope);
                    }
                }
            }
            Origin::First(list) => list.iter_mut().for_each(|s| s.for_each_path(scope, f)),
            Origin::If {
                cond,
                then,
                otherwise,
            } => {
                cond.for_each_path_in(scope, f);
                then.for_each_path(scope, f);
                if let Some(o) = otherwise {
                    o.for_each_path(scope, f);
                }
            }
            Origin::Sum {
                each,
                filter,
                of,
                times,
            } => {
                f(each, scope);
                if let Some(inner) = each_scope(each, scope) {
                    if let Some(w) = filter {
                        w.for_each_path_in(&inner, f);
                    }
                    of.for_each_path(&inner, f);
                    if let Some(t) = times {
                        t.for_each_path(&inner, f);
                    }
                }
            }
        }
    }

    /// The path, when the source is nothing but a path (no transform, no default): most are,
    /// and what they give is exactly the node the path reads (blank text counting as absent).
    #[inline]
    pub fn bare_path(&self) -> Option<&Path> {
        match (&self.origin, self.transforms.as_slice(), &self.default) {
            (Origin::Read(Subject::Path(p)), [], None) => Some(p),
            _ => None,
        }
    }

    /// Which of the common shapes this source has (see [`Shape`]).
    #[inline]
    pub fn shape(&self) -> Shape<'_> {
        match (&self.origin, self.transforms.as_slice(), &self.default) {
            (Origin::Read(Subject::Path(p)), [], None) => Shape::Path(p),
            (Origin::First(list), [], None) => Shape::First(list),
            (Origin::Read(Subject::Path(p)), [Transform::Currency], None) => Shape::Currency {
                path: p,
                default: None,
            },
            (Origin::Read(Subject::Path(p)), [Transform::Currency], Some(Scalar::Str(d))) => {
                Shape::Currency {
                    path: p,
                    default: Some(d),
                }
            }
            _ => Shape::Other,
        }
    }

    /// Evaluates to a value, or `None` when the source is absent (and has no default).
    #[inline]
    pub fn eval<'a>(
        &'a self,
        ctx: &Ctx<'a>,
        scope: &'a Node<'a>,
    ) -> Result<Option<Val<'a>>, MapError> {
        // Most sources are a bare path: read it, no transforms, no default, no error possible
        // (inlined into the caller; the general case keeps its own frame).
        if let Some(p) = self.bare_path() {
            return Ok(p
                .resolve(ctx.doc, scope)
                .and_then(Val::from_node)
                .filter(|v| !v.is_empty()));
        }
        self.eval_general(ctx, scope)
    }

    #[inline(never)]
    fn eval_general<'a>(
        &'a self,
        ctx: &Ctx<'a>,
        scope: &'a Node<'a>,
    ) -> Result<Option<Val<'a>>, MapError> {
        self.eval_inner(ctx, scope)
            .map_err(|e| e.from_source(&self.label))
    }

    fn eval_inner<'a>(
        &'a self,
        ctx: &Ctx<'a>,
        scope: &'a Node<'a>,
    ) -> Result<Option<Val<'a>>, MapError> {
        let mut v = match &self.origin {
            // A path (with transforms or a default): read inline, as in `Subject::read`.
            Origin::Read(Subject::Path(p)) => p.resolve(ctx.doc, scope).and_then(Val::from_node),
            Origin::Read(s) => s.read(ctx, scope)?,
            Origin::Const(c) => Some(c.val()),
            Origin::Template(parts) => render(parts, ctx, scope)?,
            Origin::First(list) => {
                let mut found = None;
                for s in list {
                    if let Some(v) = s.eval(ctx, scope)? {
                        if !v.is_empty() {
                            found = Some(v);
                            break;
                        }
                    }
                }
                found
            }
            Origin::If {
                cond,
                then,
                otherwise,
            } => {
                let branch = match cond.eval_in(ctx, scope) {
                    true => Some(then),
                    false => otherwise.as_ref(),
                };
                match branch {
                    Some(b) => b.eval(ctx, scope)?,
                    None => None,
                }
            }
            Origin::Sum {
                each,
                filter,
                of,
                times,
            } => sum(each, filter.as_deref(), of, times.as_deref(), ctx, scope)?,
        };
        // A step that finds nothing (`split` past the end, a `regex` without a match) makes the
        // value absent: the later steps are skipped, as for a missing source, and `default:`
        // applies. Blank text counts as absent here as everywhere (a bare path gives nothing for
        // it): an empty `context.locale` leaves `device.language` out rather than failing
        // `language`, and an optional field never dead-letters a message for being blank.
        for t in &self.transforms {
            match v {
                Some(cur) if !cur.is_empty() => v = t.apply(cur)?,
                _ => break,
            }
        }
        match v {
            Some(v) if !v.is_empty() => Ok(Some(v)),
            _ => Ok(self.default.as_ref().map(Scalar::val)),
        }
    }
}

fn compile_mapping(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<Source> {
    let mut r = MapReader::new(v, path, errors)?;
    let present: Vec<&str> = ORIGINS.into_iter().filter(|k| r.has(k)).collect();
    let origin_key = match present.as_slice() {
        [one] => Some(*one),
        [] => {
            r.error_at(
                path,
                format!("a source needs one of: {}", ORIGINS.join(", ")),
            );
            None
        }
        many => {
            r.error_at(
                path,
                format!(
                    "a source takes exactly one of {}; found {}",
                    ORIGINS.join(", "),
                    many.join(", ")
                ),
            );
            None
        }
    };
    let mut origin = None;
    let mut label = String::new();
    for key in ORIGINS {
        let Some(raw) = r.raw(key) else { continue };
        if Some(key) != origin_key {
            continue;
        }
        let kp = r.child_path(key);
        let text = match raw {
            Yaml::String(s) => Some(s.as_str()),
            _ => None,
        };
        origin = match (key, text) {
            ("path", Some(s)) => parse_path(s, Path::parse, &kp, r.errors()).map(|p| {
                label = format!("`{s}`");
                Origin::Read(Subject::Path(p))
            }),
            ("pointer", Some(s)) => parse_path(s, Path::parse_pointer, &kp, r.errors()).map(|p| {
                label = format!("`{s}`");
                Origin::Read(Subject::Path(p))
            }),
            ("template", Some(s)) => {
                label = format!("template {s:?}");
                compile_template(s, &kp, r.errors()).map(Origin::Template)
            }
            ("kafka", Some(s)) => match Subject::parse_kafka(s) {
                Ok(f) => {
                    let subj = Subject::Kafka(f);
                    label = subj.label();
                    Some(Origin::Read(subj))
                }
                Err(e) => {
                    r.error_at(kp, e);
                    None
                }
            },
            ("header", Some(s)) => {
                label = format!("header `{s}`");
                Some(Origin::Read(Subject::Header(s.to_string())))
            }
            ("const", _) => match Scalar::from_yaml(raw) {
                Some(s) => {
                    label = "a constant".into();
                    Some(Origin::Const(s))
                }
                None => {
                    r.error_at(
                        kp,
                        format!("a constant is a single value, found {}", kind(raw)),
                    );
                    None
                }
            },
            ("first", _) => match raw {
                Yaml::Sequence(items) if !items.is_empty() => {
                    let list: Vec<Source> = items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, it)| Source::compile(it, &index(&kp, i), r.errors()))
                        .collect();
                    label = format!("first of {} sources", list.len());
                    (list.len() == items.len()).then_some(Origin::First(list))
                }
                _ => {
                    r.error_at(kp, "`first` takes a non-empty list of sources");
                    None
                }
            },
            ("sum", _) => compile_sum(raw, &kp, r.errors()).map(|(o, l)| {
                label = l;
                o
            }),
            ("if", _) => {
                label = "a conditional value (`if:`)".into();
                compile_if(raw, &mut r)
            }
            (_, None) => {
                r.error_at(kp, format!("expected a string, found {}", kind(raw)));
                None
            }
            _ => None,
        };
    }
    let transforms = match r.raw("transform") {
        Some(t) => {
            let tp = r.child_path("transform");
            transform::compile(t, &tp, r.errors())
        }
        None => vec![],
    };
    let default = r.raw("default").and_then(|d| {
        let s = Scalar::from_yaml(d);
        if s.is_none() {
            r.error(
                "default",
                format!("a default is a single value, found {}", kind(d)),
            );
        }
        s
    });
    if origin_key != Some("if") {
        for key in ["then", "else"] {
            if r.raw(key).is_some() {
                r.error(key, format!("`{key}` belongs to an `if:` source (`{{if: <condition>, then: <source>, else: <source>}}`)"));
            }
        }
    }
    let when = r.raw("when").map(|w| {
        let at = r.child_path("when");
        Cond::compile(w, &at, r.errors())
    });
    r.finish();
    let source = Source {
        origin: origin?,
        transforms,
        default,
        label,
    };
    match when {
        None => Some(source),
        Some(None) => None,
        // The one-branch `if`: the whole source (its transforms and default too) only when the
        // condition holds.
        Some(Some(cond)) => Some(Source {
            label: source.label.clone(),
            origin: Origin::If {
                cond: Box::new(cond),
                then: Box::new(source),
                otherwise: None,
            },
            transforms: vec![],
            default: None,
        }),
    }
}

/// The `if:` condition with the `then:` (required) and `else:` sources of the same mapping.
fn compile_if(cond: &Yaml, r: &mut MapReader<'_, '_>) -> Option<Origin> {
    let at = r.child_path("if");
    let cond = Cond::compile(cond, &at, r.errors());
    let then = match r.raw("then") {
        Some(t) => {
            let at = r.child_path("then");
            Source::compile(t, &at, r.errors())
        }
        None => {
            r.error(
                "then",
                "required: the source used when the condition holds (`else:` is optional; without it the value is absent)",
            );
            None
        }
    };
    let otherwise = match r.raw("else") {
        Some(e) => {
            let at = r.child_path("else");
            Some(Source::compile(e, &at, r.errors())?)
        }
        None => None,
    };
    Some(Origin::If {
        cond: Box::new(cond?),
        then: Box::new(then?),
        otherwise: otherwise.map(Box::new),
    })
}

/// Records an `each:` array: its elements need what `inner` records relative to them. A union in
/// the path gives several arrays it may be (`inner` records for each); what its tests read is
/// kept whole.
pub fn need_each(
    each: &Path,
    need: &mut Need,
    scope: &[&str],
    mut inner: impl FnMut(&mut Need, &[&str]),
) {
    let r = each.reach(scope);
    for keys in &r.tested {
        need.keep(keys);
    }
    for keys in &r.ends {
        if r.stopped {
            need.keep(keys);
        } else {
            need.at(keys);
        }
        // Also when the array is kept whole: paths relative to its elements are inside it, but
        // `$.` paths read there (a `where:` on the root, an item's `$.currency`) are not.
        inner(need, keys);
    }
}

/// The key path the elements of `each` are read at, as [`need_each`] records it; `None` when
/// the array is kept whole (a pointer token that may be an index) or may be one of several (a
/// union): paths read from its elements then get no slot hints and are read by name.
pub fn each_scope(each: &Path, scope: &[String]) -> Option<Vec<String>> {
    let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
    let r = each.reach(&scope);
    match r.ends.as_slice() {
        [one] if !r.stopped => Some(one.iter().map(|k| k.to_string()).collect()),
        _ => None,
    }
}

fn parse_path(
    s: &str,
    parse: fn(&str) -> Result<Path, String>,
    at: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Path> {
    parse(s)
        .map_err(|e| errors.push(ConfigError::new(at, e)))
        .ok()
}

fn compile_sum(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<(Origin, String)> {
    let mut r = MapReader::new(v, path, errors)?;
    let each = r.req::<String>("each", "the array to sum over, e.g. `properties.products`");
    let each = each.and_then(|s| {
        let at = r.child_path("each");
        parse_path(&s, Path::parse, &at, r.errors()).map(|p| (p, s))
    });
    let filter = r.raw("where").map(|w| {
        let at = r.child_path("where");
        Cond::compile(w, &at, r.errors())
    });
    let of = match r.raw("of") {
        Some(o) => {
            let at = r.child_path("of");
            Source::compile(o, &at, r.errors())
        }
        None => {
            r.error(
                "of",
                "required (the per-element amount, e.g. `{path: price}`)",
            );
            None
        }
    };
    let times = r.raw("times").map(|t| {
        let at = r.child_path("times");
        Source::compile(t, &at, r.errors())
    });
    r.finish();
    let (each, text) = each?;
    let times = match times {
        Some(None) => return None,
        Some(Some(t)) => Some(Box::new(t)),
        None => None,
    };
    let filter = match filter {
        Some(None) => return None,
        Some(Some(w)) => Some(Box::new(w)),
        None => None,
    };
    Some((
        Origin::Sum {
            each,
            filter,
            of: Box::new(of?),
            times,
        },
        format!("sum over `{text}`"),
    ))
}

fn sum<'a>(
    each: &'a Path,
    filter: Option<&'a Cond>,
    of: &'a Source,
    times: Option<&'a Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
) -> Result<Option<Val<'a>>, MapError> {
    let items = match each.resolve(ctx.doc, scope) {
        None => return Ok(None),
        Some(node) => match ctx.doc.items(node) {
            Some(items) => items,
            None => return Err(mismatch("an array", node.kind())),
        },
    };
    let mut total = 0.0;
    for (i, el) in items.iter().enumerate() {
        if filter.is_some_and(|w| !w.eval_in(ctx, el)) {
            continue;
        }
        let at = |mut e: MapError| {
            e.message = format!("element [{i}]: {}", e.message);
            e
        };
        let amount = match of.eval(ctx, el).map_err(at)? {
            Some(v) => v.number().map_err(at)?,
            None => {
                return Err(at(MapError::new(
                    MapReason::PathNotFound,
                    "no amount to sum",
                )))
            }
        };
        let k = match times
            .map(|t| t.eval(ctx, el))
            .transpose()
            .map_err(at)?
            .flatten()
        {
            Some(v) => v.number().map_err(at)?,
            None => 1.0, // a missing quantity counts as one unit
        };
        total += amount * k;
    }
    if total.is_finite() {
        Ok(Some(Val::Float(total)))
    } else {
        Err(MapError::new(
            MapReason::NumberOutOfRange,
            "the sum is not finite",
        ))
    }
}

/// A path string from YAML as used by `each:`/`field:` (shared with the field compiler).
pub fn compile_path(v: &Yaml, at: &str, errors: &mut Vec<ConfigError>) -> Option<Path> {
    match v {
        Yaml::String(s) => parse_path(s, Path::parse, at, errors),
        other => {
            errors.push(ConfigError::new(
                at,
                format!("expected a path string, found {}", kind(other)),
            ));
            None
        }
    }
}
