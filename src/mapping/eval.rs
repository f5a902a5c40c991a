//! Evaluation of a rule's [`FieldsPlan`] against one decoded message: builds the [`McmEvent`].
//!
//! Pure and panic-free: every way the input can disagree with the rule becomes a [`MapError`]
//! naming the MCM field and the source. Absent optional fields are simply not sent; the MCM
//! validator (run by the caller) then judges the event as a whole, so "PURCHASE without items"
//! is reported once, with the validator's reason code, however the rule is written.

use super::doc::Node;
use super::error::{MapError, MapReason};
use super::fields::{DevicePlan, FieldsPlan, ItemPlan, ItemsPlan, MoneyPlan};
use super::source::{Shape, Source};
use super::subject::Ctx;
use super::text::Text;
use super::transform::known_currency;
use super::useragent;
use super::value::{is_blank, trim, Scalar, Val};
use crate::mcm::event::{ChannelType, DeviceOf, ItemOf, McmEventOf, MoneyOf, PersonalizationMode};
use std::borrow::Cow;

type R<T> = Result<T, MapError>;

/// The event as the mapping builds it: text borrowed from the message (or the plan) wherever no
/// transform made new text, so a field costs no allocation of its own.
pub type Event<'a> = McmEventOf<Text<'a>>;

fn eval<'a>(
    s: &'a Option<Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    field: &str,
) -> R<Option<Val<'a>>> {
    get(s, ctx, scope, field, Ok)
}

/// Evaluates `s` and converts the value; any error names the field and the source.
fn get<'a, T>(
    s: &'a Option<Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    field: &str,
    convert: impl FnOnce(Val<'a>) -> R<T>,
) -> R<Option<T>> {
    let Some(s) = s else { return Ok(None) };
    s.eval(ctx, scope)
        .and_then(|v| v.map(convert).transpose())
        .map_err(|e| e.at_field(field).from_source(s.label()))
}

/// What a bare-path source reads ([`Source::bare_path`]): `Some(None)` when absent, `Some(node)`
/// otherwise; `None` for any other source.
#[inline]
fn bare<'a>(
    s: &'a Option<Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
) -> Option<Option<&'a Node<'a>>> {
    let p = s.as_ref()?.bare_path()?;
    Some(p.resolve(ctx.doc, scope))
}

// The field readers below take the common source shapes ([`Shape`]) and the usual kinds of value
// (text for text fields, numbers for number fields) straight from the message, exactly as the
// general evaluation and conversion (`get`) would; everything else, errors included, they leave
// to `get`. `fast_paths_read_as_the_general_evaluation` holds them to it.

/// A text field. Most fields of a plan have no source: that is answered inline, the rest out
/// of line.
#[inline(always)]
fn text<'a>(
    s: &'a Option<Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    field: &str,
) -> R<Option<Text<'a>>> {
    match s {
        None => Ok(None),
        Some(src) => source_text(src, s, ctx, scope, field),
    }
}

/// [`text`] of a field with a source (`s` is `Some(src)`).
#[inline(never)]
fn source_text<'a>(
    src: &'a Source,
    s: &'a Option<Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    field: &str,
) -> R<Option<Text<'a>>> {
    match fast_text(src, ctx, scope) {
        Some(v) => Ok(v),
        None => get(s, ctx, scope, field, |v| v.into_text().map(Text::new)),
    }
}

/// What a text field gets from `s` when the shortcut applies (`None`: it does not).
fn fast_text<'a>(s: &'a Source, ctx: &Ctx<'a>, scope: &'a Node<'a>) -> Option<Option<Text<'a>>> {
    // A path's value as text: absent, blank (absent too) or a string; `None` for other kinds.
    let text = |n: Option<&'a Node<'a>>| match n {
        None => Some(None),
        Some(Node::Str(v)) => Some((!is_blank(v)).then(|| Text::from_message(v))),
        Some(_) => None,
    };
    match s.shape() {
        Shape::Currency { path, default } => match path.resolve(ctx.doc, scope) {
            None => Some(default.map(|d| Text::new(Cow::Borrowed(d)))),
            Some(Node::Str(v)) => Some(Some(Text::currency_code(known_currency(trim(v))?))),
            Some(_) => None,
        },
        _ => fast_read(s, ctx, scope, text),
    }
}

/// A number field (a money amount).
fn number<'a>(
    s: &'a Option<Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    field: &str,
) -> R<Option<f64>> {
    let Some(src) = s else { return Ok(None) };
    match fast_number(src, ctx, scope) {
        Some(v) => Ok(v),
        None => get(s, ctx, scope, field, |v| v.number()),
    }
}

/// What a number field gets from `s` when the shortcut applies (`None`: it does not).
fn fast_number<'a>(s: &'a Source, ctx: &Ctx<'a>, scope: &'a Node<'a>) -> Option<Option<f64>> {
    // A path's value as a number: absent, or a number; `None` for other kinds (blank text, which
    // counts as absent, included: rare here, and `get` knows).
    let number = |n: Option<&'a Node<'a>>| match n {
        None => Some(None),
        Some(Node::Int(i)) => Some(Some(*i as f64)),
        Some(Node::Float(f)) if f.is_finite() => Some(Some(*f)),
        Some(_) => None,
    };
    fast_read(s, ctx, scope, number)
}

/// The shortcut for a bare path, or a `first:` of bare paths: `read` turns a path's value into
/// the field's (`Some(None)`: absent, go on to the next path; `None`: the shortcut does not
/// apply). Other shapes do not take it.
#[inline(always)]
fn fast_read<'a, T>(
    s: &'a Source,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    read: impl Fn(Option<&'a Node<'a>>) -> Option<Option<T>>,
) -> Option<Option<T>> {
    match s.shape() {
        Shape::Path(p) => read(p.resolve(ctx.doc, scope)),
        Shape::First(list) => {
            for member in list {
                if let Some(v) = read(member.bare_path()?.resolve(ctx.doc, scope))? {
                    return Some(Some(v));
                }
            }
            Some(None)
        }
        Shape::Currency { .. } | Shape::Other => None,
    }
}

/// A whole-number field (a quantity).
fn integer<'a>(
    s: &'a Option<Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    field: &str,
) -> R<Option<i64>> {
    match bare(s, ctx, scope) {
        Some(None) => Ok(None),
        Some(Some(Node::Int(i))) => Ok(Some(*i)),
        _ => get(s, ctx, scope, field, |v| v.integer()),
    }
}

/// A field the event cannot exist without: absence is a mapping error, not a silent default.
fn required<'a>(s: &'a Option<Source>, ctx: &Ctx<'a>, field: &str) -> R<Val<'a>> {
    eval(s, ctx, ctx.root, field)?.ok_or_else(|| {
        let from = s.as_ref().map(Source::label).unwrap_or("no source");
        MapError::new(
            MapReason::PathNotFound,
            "no value in the message and no default",
        )
        .at_field(field)
        .from_source(from)
    })
}

/// Builds the event into `e` (a fresh one, of the rule's type; its timestamp and channel are
/// set here). `id` is left `None` when unmapped or absent; the caller derives one.
///
/// The event (several hundred bytes) and its items and device are filled where they lie rather
/// than returned: moving them through `Result`s cost more copying than building them.
pub fn build<'a>(p: &'a FieldsPlan, ctx: &Ctx<'a>, e: &mut Event<'a>) -> R<()> {
    let root = ctx.root;
    e.timestamp = required(&p.timestamp, ctx, "timestamp")?
        .integer()
        .map_err(|e| e.at_field("timestamp").from_source(label(&p.timestamp)))?;
    // The usual channel is a constant written as the API spells it (`channel_type: SITE`):
    // that is the type's name, whatever the message. Anything else is read and judged.
    let constant = match p.channel_type.as_ref().and_then(Source::as_constant) {
        Some(Scalar::Str(s)) => ChannelType::parse(s),
        _ => None,
    };
    e.channel_type = match constant {
        Some(c) => c,
        None => {
            let channel = required(&p.channel_type, ctx, "channel_type")?;
            enum_value(&channel, ChannelType::parse, "channel_type")
                .map_err(|e| e.from_source(label(&p.channel_type)))?
        }
    };
    e.id = text(&p.id, ctx, root, "id")?;
    e.user_id = text(&p.user_id, ctx, root, "user_id")?;
    e.custom_id = text(&p.custom_id, ctx, root, "custom_id")?;
    e.session_id = text(&p.session_id, ctx, root, "session_id")?;
    e.search_query = text(&p.search_query, ctx, root, "search_query")?;
    e.page_id = text(&p.page_id, ctx, root, "page_id")?;
    e.referrer_page_id = text(&p.referrer_page_id, ctx, root, "referrer_page_id")?;
    e.decision_track_id = text(&p.decision_track_id, ctx, root, "decision_track_id")?;
    e.domain = text(&p.domain, ctx, root, "domain")?;
    e.personalization_mode = get(
        &p.personalization_mode,
        ctx,
        root,
        "personalization_mode",
        |v| enum_value(&v, PersonalizationMode::parse, "personalization_mode"),
    )?;
    device(&p.device, ctx, &mut e.device)?;
    match &p.items {
        None => {}
        Some(ItemsPlan::List(list)) => items(list.iter().map(|it| (it, root)), ctx, &mut e.items)?,
        Some(ItemsPlan::Each {
            path,
            filter,
            item: plan,
        }) => match path.resolve(ctx.doc, root).map(|n| (n, ctx.doc.items(n))) {
            None => {}
            Some((_, Some(els))) => match filter {
                None => items(els.iter().map(|el| (&**plan, el)), ctx, &mut e.items)?,
                Some(w) => items(
                    els.iter()
                        .filter(|el| w.eval_in(ctx, el))
                        .map(|el| (&**plan, el)),
                    ctx,
                    &mut e.items,
                )?,
            },
            Some((other, None)) => {
                return Err(MapError::new(
                    MapReason::TypeMismatch,
                    format!("`each:` expects an array, found {}", other.kind()),
                )
                .at_field("items")
                .from_source(&format!("`{path}`")))
            }
        },
    }
    e.revenue = money(&p.revenue, ctx, root).map_err(|e| e.under("revenue"))?;
    e.shipping_charge =
        money(&p.shipping_charge, ctx, root).map_err(|e| e.under("shipping_charge"))?;
    Ok(())
}

/// Appends one item per (plan, scope) to `out`, each built in place.
fn items<'a>(
    each: impl Iterator<Item = (&'a ItemPlan, &'a Node<'a>)>,
    ctx: &Ctx<'a>,
    out: &mut Vec<ItemOf<Text<'a>>>,
) -> R<()> {
    // Exact for a plain `each:` (or a fixed list); a `where:` filter's upper bound.
    out.reserve_exact(each.size_hint().1.unwrap_or(0));
    for (i, (plan, scope)) in each.enumerate() {
        out.push(ItemOf::default());
        if let Some(it) = out.last_mut() {
            item(plan, ctx, scope, it).map_err(|e| e.under(&format!("items[{i}]")))?;
        }
    }
    Ok(())
}

fn label(s: &Option<Source>) -> &str {
    s.as_ref().map_or("", Source::label)
}

/// Enum fields accept any case (`site` → `SITE`); anything else says what would be accepted.
fn enum_value<T>(v: &Val<'_>, parse: fn(&str) -> Option<T>, field: &str) -> R<T> {
    let t = v.text().map_err(|e| e.at_field(field))?;
    let trimmed = trim(&t);
    // Names are upper-case, so a value already written that way (`channel_type: SITE`, the usual
    // constant) parses as is, without allocating its upper-case copy.
    parse(trimmed)
        .or_else(|| parse(&trimmed.to_ascii_uppercase()))
        .ok_or_else(|| {
            MapError::new(
                MapReason::InvalidEnum,
                format!(
                    "{t:?} is not a valid {field} (map source values with a `lookup` transform)"
                ),
            )
            .at_field(field)
        })
}

fn money<'a>(
    m: &'a Option<MoneyPlan>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
) -> R<Option<MoneyOf<Text<'a>>>> {
    let Some(m) = m else { return Ok(None) };
    let amount = number(&m.amount, ctx, scope, "amount")?;
    let currency = text(&m.currency, ctx, scope, "currency")?;
    // No amount means no money object at all (e.g. a product view without a price); a currency
    // alone carries nothing. An amount without a currency is kept so the validator reports it.
    Ok(amount.map(|a| MoneyOf {
        currency,
        amount: Some(a),
    }))
}

/// Fills `it` (a default item) from `scope`.
fn item<'a>(
    p: &'a ItemPlan,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    it: &mut ItemOf<Text<'a>>,
) -> R<()> {
    it.id = text(&p.id, ctx, scope, "id")?;
    it.item_group_id = text(&p.item_group_id, ctx, scope, "item_group_id")?;
    it.quantity = integer(&p.quantity, ctx, scope, "quantity")?;
    it.seller_id = text(&p.seller_id, ctx, scope, "seller_id")?;
    it.price = money(&p.price, ctx, scope).map_err(|e| e.under("price"))?;
    it.price_seller = money(&p.price_seller, ctx, scope).map_err(|e| e.under("price_seller"))?;
    Ok(())
}

/// Sets `out` to the device, or `None` when no device field has a value.
fn device<'a>(p: &'a DevicePlan, ctx: &Ctx<'a>, out: &mut Option<DeviceOf<Text<'a>>>) -> R<()> {
    let root = ctx.root;
    let f = |s, name: &str| text(s, ctx, root, name).map_err(|e| e.under("device"));
    let d = out.insert(DeviceOf::default());
    d.os = f(&p.os, "os")?;
    d.os_version = f(&p.os_version, "os_version")?;
    d.persistent_id = f(&p.persistent_id, "persistent_id")?;
    d.advertising_id = f(&p.advertising_id, "advertising_id")?;
    d.unique_device_id = f(&p.unique_device_id, "unique_device_id")?;
    d.model = f(&p.model, "model")?;
    d.ua = f(&p.ua, "ua")?;
    d.language = f(&p.language, "language")?;
    d.ip = f(&p.ip, "ip")?;
    if let Some(ua) = f(&p.user_agent, "user_agent")? {
        let info = ctx.ua.get_or_init(|| useragent::parse(ua.as_ref()));
        // Explicit mappings win over what the user agent suggests.
        let from_ua = |s: &'a Option<String>| s.as_deref().map(|s| Text::new(Cow::Borrowed(s)));
        d.os = d.os.take().or(from_ua(&info.os));
        d.os_version = d.os_version.take().or(from_ua(&info.os_version));
        d.model = d.model.take().or(from_ua(&info.model));
        d.ua = d.ua.take().or(Some(ua));
    }
    if d.is_empty() {
        *out = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{doc, SourceMessage};
    use std::cell::OnceCell;

    /// The field readers' shortcuts give exactly what the general evaluation and conversion
    /// give, values and errors alike, for every shape they take and every kind of JSON value.
    #[test]
    fn fast_paths_read_as_the_general_evaluation() {
        let values = [
            r#""text""#,
            r#""  ""#,
            r#""""#,
            r#""esc\"aped""#,
            r#""12""#,
            r#""1.5""#,
            r#""usd""#,
            r#"" EUR ""#,
            r#""US""#,
            "7",
            "-3",
            "0",
            "2.5",
            "1e300",
            "3.0",
            "true",
            "null",
            "[1]",
            r#"{"a":1}"#,
        ];
        // Each source, and whether the shortcuts take it (on `{"v": "usd"}`).
        let sources = [
            ("{path: v}", true),
            ("{first: [{path: v}, {path: w}]}", true),
            ("{first: [{path: v}, {const: 4}]}", true),
            ("{first: [{const: 4}, {path: v}]}", false),
            ("{path: v, transform: currency}", true),
            ("{path: v, transform: currency, default: EUR}", true),
            ("{path: v, transform: currency, default: 5}", false),
        ];
        let msg = SourceMessage::BARE;
        for (yaml, fast) in sources {
            let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).expect("yaml");
            let mut errors = Vec::new();
            let source = Source::compile(&yaml, "f", &mut errors);
            assert!(errors.is_empty(), "{errors:?}");
            let usd = doc::decode(Some(br#"{"v":"usd"}"#)).expect("valid");
            let ua = OnceCell::new();
            let ctx = Ctx::at_root(&usd, &msg, &ua);
            let s = source.as_ref().expect("compiled");
            assert_eq!(fast_text(s, &ctx, ctx.root).is_some(), fast, "{yaml:?}");
            let absent = ["{}".to_string()];
            let pairs = values.iter().flat_map(|v| {
                values
                    .iter()
                    .map(move |w| format!(r#"{{"v":{v},"w":{w}}}"#))
                    .chain([format!(r#"{{"v":{v}}}"#), format!(r#"{{"w":{v}}}"#)])
            });
            for json in pairs.chain(absent) {
                let d = doc::decode(Some(json.as_bytes())).expect("valid");
                let ua = OnceCell::new();
                let ctx = Ctx::at_root(&d, &msg, &ua);
                let root = ctx.root;
                let at = || format!("{yaml:?} on {json}");
                let fast = text(&source, &ctx, root, "f");
                if let Ok(Some(t)) = &fast {
                    use crate::mcm::json::WireText;
                    let needs = t
                        .as_ref()
                        .bytes()
                        .any(|b| b < 0x20 || b == b'"' || b == b'\\');
                    assert!(!(t.is_plain() && needs), "{}", at());
                }
                assert_eq!(
                    fast.map(|t| t.map(String::from)),
                    get(&source, &ctx, root, "f", |v| v.into_string()),
                    "{}",
                    at()
                );
                assert_eq!(
                    number(&source, &ctx, root, "f"),
                    get(&source, &ctx, root, "f", |v| v.number()),
                    "{}",
                    at()
                );
                assert_eq!(
                    integer(&source, &ctx, root, "f"),
                    get(&source, &ctx, root, "f", |v| v.integer()),
                    "{}",
                    at()
                );
            }
        }
    }
}
