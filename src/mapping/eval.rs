//! Evaluation of a rule's [`FieldsPlan`] against one decoded message: builds the [`McmEvent`].
//!
//! Pure and panic-free: every way the input can disagree with the rule becomes a [`MapError`]
//! naming the MCM field and the source. Absent optional fields are simply not sent; the MCM
//! validator (run by the caller) then judges the event as a whole, so "PURCHASE without items"
//! is reported once, with the validator's reason code, however the rule is written.

use super::doc::Node;
use super::error::{MapError, MapReason};
use super::fields::{DevicePlan, FieldsPlan, ItemPlan, ItemsPlan, MoneyPlan};
use super::source::{Ctx, Source};
use super::useragent;
use super::value::Val;
use crate::mcm::event::{
    ChannelType, DeviceOf, EventType, ItemOf, McmEventOf, MoneyOf, PersonalizationMode,
};
use std::borrow::Cow;

type R<T> = Result<T, MapError>;

/// The event as the mapping builds it: text borrowed from the message (or the plan) wherever no
/// transform made new text, so a field costs no allocation of its own.
pub type Event<'a> = McmEventOf<Cow<'a, str>>;

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

fn text<'a>(
    s: &'a Option<Source>,
    ctx: &Ctx<'a>,
    scope: &'a Node<'a>,
    field: &str,
) -> R<Option<Cow<'a, str>>> {
    get(s, ctx, scope, field, Val::into_text)
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

/// Builds the event. `id` is left `None` when unmapped or absent; the caller derives one.
pub fn build<'a>(p: &'a FieldsPlan, event_type: EventType, ctx: &Ctx<'a>) -> R<Event<'a>> {
    let root = ctx.root;
    let timestamp = required(&p.timestamp, ctx, "timestamp")?
        .integer()
        .map_err(|e| e.at_field("timestamp").from_source(label(&p.timestamp)))?;
    let channel = required(&p.channel_type, ctx, "channel_type")?;
    let channel_type = enum_value(&channel, ChannelType::parse, "channel_type")
        .map_err(|e| e.from_source(label(&p.channel_type)))?;
    let mut e = McmEventOf::new(event_type, timestamp, channel_type);
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
    e.device = device(&p.device, ctx)?;
    e.items = match &p.items {
        None => Vec::new(),
        Some(ItemsPlan::List(list)) => list
            .iter()
            .enumerate()
            .map(|(i, it)| item(it, ctx, root).map_err(|e| e.under(&format!("items[{i}]"))))
            .collect::<R<Vec<_>>>()?,
        Some(ItemsPlan::Each { path, item: plan }) => {
            match path.resolve(ctx.doc, root).map(|n| (n, ctx.doc.items(n))) {
                None => Vec::new(),
                Some((_, Some(els))) => els
                    .iter()
                    .enumerate()
                    .map(|(i, el)| item(plan, ctx, el).map_err(|e| e.under(&format!("items[{i}]"))))
                    .collect::<R<Vec<_>>>()?,
                Some((other, None)) => {
                    return Err(MapError::new(
                        MapReason::TypeMismatch,
                        format!("`each:` expects an array, found {}", other.kind()),
                    )
                    .at_field("items")
                    .from_source(&format!("`{path}`")))
                }
            }
        }
    };
    e.revenue = money(&p.revenue, ctx, root).map_err(|e| e.under("revenue"))?;
    e.shipping_charge =
        money(&p.shipping_charge, ctx, root).map_err(|e| e.under("shipping_charge"))?;
    Ok(e)
}

fn label(s: &Option<Source>) -> &str {
    s.as_ref().map_or("", Source::label)
}

/// Enum fields accept any case (`site` → `SITE`); anything else says what would be accepted.
fn enum_value<T>(v: &Val<'_>, parse: fn(&str) -> Option<T>, field: &str) -> R<T> {
    let t = v.text().map_err(|e| e.at_field(field))?;
    let trimmed = t.trim();
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
) -> R<Option<MoneyOf<Cow<'a, str>>>> {
    let Some(m) = m else { return Ok(None) };
    let amount = get(&m.amount, ctx, scope, "amount", |v| v.number())?;
    let currency = text(&m.currency, ctx, scope, "currency")?;
    // No amount means no money object at all (e.g. a product view without a price); a currency
    // alone carries nothing. An amount without a currency is kept so the validator reports it.
    Ok(amount.map(|a| MoneyOf {
        currency,
        amount: Some(a),
    }))
}

fn item<'a>(p: &'a ItemPlan, ctx: &Ctx<'a>, scope: &'a Node<'a>) -> R<ItemOf<Cow<'a, str>>> {
    Ok(ItemOf {
        id: text(&p.id, ctx, scope, "id")?,
        item_group_id: text(&p.item_group_id, ctx, scope, "item_group_id")?,
        quantity: get(&p.quantity, ctx, scope, "quantity", |v| v.integer())?,
        seller_id: text(&p.seller_id, ctx, scope, "seller_id")?,
        price: money(&p.price, ctx, scope).map_err(|e| e.under("price"))?,
        price_seller: money(&p.price_seller, ctx, scope).map_err(|e| e.under("price_seller"))?,
    })
}

fn device<'a>(p: &'a DevicePlan, ctx: &Ctx<'a>) -> R<Option<DeviceOf<Cow<'a, str>>>> {
    let root = ctx.root;
    let f = |s, name: &str| text(s, ctx, root, name).map_err(|e| e.under("device"));
    let mut d = DeviceOf {
        os: f(&p.os, "os")?,
        os_version: f(&p.os_version, "os_version")?,
        persistent_id: f(&p.persistent_id, "persistent_id")?,
        advertising_id: f(&p.advertising_id, "advertising_id")?,
        unique_device_id: f(&p.unique_device_id, "unique_device_id")?,
        model: f(&p.model, "model")?,
        ua: f(&p.ua, "ua")?,
        language: f(&p.language, "language")?,
        ip: f(&p.ip, "ip")?,
    };
    if let Some(ua) = f(&p.user_agent, "user_agent")? {
        let info = ctx.ua.get_or_init(|| useragent::parse(&ua));
        // Explicit mappings win over what the user agent suggests.
        d.os = d.os.or(info.os.as_deref().map(Cow::Borrowed));
        d.os_version = d
            .os_version
            .or(info.os_version.as_deref().map(Cow::Borrowed));
        d.model = d.model.or(info.model.as_deref().map(Cow::Borrowed));
        d.ua = d.ua.or(Some(ua));
    }
    Ok((!d.is_empty()).then_some(d))
}
