//! The `fields:` block: which MCM field comes from which source, compiled into a typed plan.
//!
//! The YAML mirrors the MCM event JSON (reference §2): `user_id`, `device.os`, `items[].price`,
//! `revenue.amount`, … so a user can hold the API page next to the config. Unknown field names are
//! start-up errors with a did-you-mean; constants (and lookup outputs and defaults) are checked
//! against the field's type there too, and [`missing_required`] names the fields an event type
//! cannot do without (reference §2.5–2.6).

use super::condition::Cond;
use super::need::Need;
use super::path::Path;
use super::source::{compile_path, each_scope, need_each, Source};
use super::useragent;
use super::value::Scalar;
use crate::config::decode::{index, kind, ConfigError, MapReader};
use crate::mcm::event::{is_known_currency, ChannelType, EventType, PersonalizationMode};
use serde_yaml_ng::Value as Yaml;

/// The type an MCM field expects, for start-up checks of constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Number,
    Channel,
    Personalization,
    Currency,
}

#[derive(Debug, Clone, Default)]
pub struct MoneyPlan {
    pub currency: Option<Source>,
    pub amount: Option<Source>,
}

#[derive(Debug, Clone, Default)]
pub struct ItemPlan {
    pub id: Option<Source>,
    pub item_group_id: Option<Source>,
    pub quantity: Option<Source>,
    pub seller_id: Option<Source>,
    pub price: Option<MoneyPlan>,
    pub price_seller: Option<MoneyPlan>,
}

#[derive(Debug, Clone)]
pub enum ItemsPlan {
    /// One item per element of the array at `path` (only those `filter` holds for, when
    /// given), fields relative to the element.
    Each {
        path: Path,
        filter: Option<Cond>,
        item: Box<ItemPlan>,
    },
    /// Fixed items built from the message's top-level fields (product detail events).
    List(Vec<ItemPlan>),
}

#[derive(Debug, Clone, Default)]
pub struct DevicePlan {
    pub os: Option<Source>,
    pub os_version: Option<Source>,
    pub persistent_id: Option<Source>,
    pub advertising_id: Option<Source>,
    pub unique_device_id: Option<Source>,
    pub model: Option<Source>,
    pub ua: Option<Source>,
    pub language: Option<Source>,
    pub ip: Option<Source>,
    /// A raw user agent parsed into `os`, `os_version`, `model` (and `ua`) where not set above.
    pub user_agent: Option<Source>,
}

#[derive(Debug, Clone, Default)]
pub struct FieldsPlan {
    pub id: Option<Source>,
    pub timestamp: Option<Source>,
    pub channel_type: Option<Source>,
    pub user_id: Option<Source>,
    pub custom_id: Option<Source>,
    pub session_id: Option<Source>,
    pub search_query: Option<Source>,
    pub page_id: Option<Source>,
    pub referrer_page_id: Option<Source>,
    pub decision_track_id: Option<Source>,
    pub domain: Option<Source>,
    pub personalization_mode: Option<Source>,
    pub device: DevicePlan,
    pub items: Option<ItemsPlan>,
    pub revenue: Option<MoneyPlan>,
    pub shipping_charge: Option<MoneyPlan>,
}

fn src(r: &mut MapReader<'_, '_>, key: &'static str, k: Kind) -> Option<Source> {
    let v = r.raw(key)?;
    let at = r.child_path(key);
    let s = Source::compile(v, &at, r.errors())?;
    check_kind(&s, k, &at, r.errors());
    Some(s)
}

/// Checks every constant a source can produce against the field's type.
fn check_kind(s: &Source, k: Kind, at: &str, errors: &mut Vec<ConfigError>) {
    for c in s.fixed_values() {
        if let Err(why) = fits(c, k) {
            errors.push(ConfigError::new(at, why));
        }
    }
}

fn fits(c: &Scalar, k: Kind) -> Result<(), String> {
    let v = c.val();
    let shown = v.text().map(|t| format!("{t:?}")).unwrap_or_default();
    match k {
        Kind::Text => Ok(()),
        Kind::Integer => v
            .integer()
            .map(drop)
            .map_err(|_| format!("constant {shown} is not a whole number")),
        Kind::Number => v
            .number()
            .map(drop)
            .map_err(|_| format!("constant {shown} is not a number")),
        Kind::Channel => match c {
            Scalar::Str(s) if ChannelType::parse(&s.to_ascii_uppercase()).is_some() => Ok(()),
            _ => Err(format!(
                "constant {shown} is not a channel_type (APP, SITE, DESKTOP_SITE, MOBILE_SITE)"
            )),
        },
        Kind::Personalization => match c {
            Scalar::Str(s) if PersonalizationMode::parse(&s.to_ascii_uppercase()).is_some() => {
                Ok(())
            }
            _ => Err(format!(
                "constant {shown} is not a personalization_mode (STANDARD, METRIC_ONLY, ID_LESS)"
            )),
        },
        Kind::Currency => match c {
            Scalar::Str(s) if is_known_currency(s) => Ok(()),
            _ => Err(format!(
                "constant {shown} is not an MCM currency code (upper-case, e.g. USD, EUR, KRW)"
            )),
        },
    }
}

/// Compiles a `fields:` mapping at `path`.
pub fn compile(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> FieldsPlan {
    let Some(mut r) = MapReader::new(v, path, errors) else {
        return FieldsPlan::default();
    };
    let mut p = FieldsPlan {
        id: src(&mut r, "id", Kind::Text),
        timestamp: src(&mut r, "timestamp", Kind::Integer),
        channel_type: src(&mut r, "channel_type", Kind::Channel),
        user_id: src(&mut r, "user_id", Kind::Text),
        custom_id: src(&mut r, "custom_id", Kind::Text),
        session_id: src(&mut r, "session_id", Kind::Text),
        search_query: src(&mut r, "search_query", Kind::Text),
        page_id: src(&mut r, "page_id", Kind::Text),
        referrer_page_id: src(&mut r, "referrer_page_id", Kind::Text),
        decision_track_id: src(&mut r, "decision_track_id", Kind::Text),
        domain: src(&mut r, "domain", Kind::Text),
        personalization_mode: src(&mut r, "personalization_mode", Kind::Personalization),
        ..FieldsPlan::default()
    };
    if let Some(d) = r.raw("device") {
        let at = r.child_path("device");
        p.device = compile_device(d, &at, r.errors());
    }
    if let Some(i) = r.raw("items") {
        let at = r.child_path("items");
        p.items = compile_items(i, &at, r.errors());
    }
    p.revenue = money(&mut r, "revenue");
    p.shipping_charge = money(&mut r, "shipping_charge");
    if r.has("event_type") {
        let _ = r.raw("event_type");
        r.error(
            "event_type",
            "set `event_type:` on the rule itself, next to `fields:`",
        );
    }
    r.finish();
    p
}

fn compile_device(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> DevicePlan {
    let Some(mut r) = MapReader::new(v, path, errors) else {
        return DevicePlan::default();
    };
    let d = DevicePlan {
        os: src(&mut r, "os", Kind::Text),
        os_version: src(&mut r, "os_version", Kind::Text),
        persistent_id: src(&mut r, "persistent_id", Kind::Text),
        advertising_id: src(&mut r, "advertising_id", Kind::Text),
        unique_device_id: src(&mut r, "unique_device_id", Kind::Text),
        model: src(&mut r, "model", Kind::Text),
        ua: src(&mut r, "ua", Kind::Text),
        language: src(&mut r, "language", Kind::Text),
        ip: src(&mut r, "ip", Kind::Text),
        user_agent: src(&mut r, "user_agent", Kind::Text),
    };
    if d.user_agent.is_some() {
        useragent::warm_up_in_background();
    }
    r.finish();
    d
}

fn money(r: &mut MapReader<'_, '_>, key: &'static str) -> Option<MoneyPlan> {
    let v = r.raw(key)?;
    let at = r.child_path(key);
    compile_money(v, &at, r.errors())
}

fn compile_money(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<MoneyPlan> {
    let mut r = MapReader::new(v, path, errors)?;
    let m = MoneyPlan {
        currency: src(&mut r, "currency", Kind::Currency),
        amount: src(&mut r, "amount", Kind::Number),
    };
    if !r.has("amount") {
        r.error(
            "amount",
            "required: money is `{amount: <source>, currency: <source>}`",
        );
    }
    if !r.has("currency") {
        r.error(
            "currency",
            "required: money is `{amount: <source>, currency: <source>}` (e.g. `currency: USD`)",
        );
    }
    r.finish();
    Some(m)
}

fn compile_item(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<ItemPlan> {
    let mut r = MapReader::new(v, path, errors)?;
    let mut item = ItemPlan {
        id: src(&mut r, "id", Kind::Text),
        item_group_id: src(&mut r, "item_group_id", Kind::Text),
        quantity: src(&mut r, "quantity", Kind::Integer),
        seller_id: src(&mut r, "seller_id", Kind::Text),
        ..ItemPlan::default()
    };
    item.price = money(&mut r, "price");
    item.price_seller = money(&mut r, "price_seller");
    if item.id.is_none() && item.item_group_id.is_none() {
        let p = r.path().to_string();
        r.error_at(p, "an item needs `id` or `item_group_id` (reference §2.4)");
    }
    r.finish();
    Some(item)
}

fn compile_items(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<ItemsPlan> {
    match v {
        Yaml::Sequence(list) if !list.is_empty() => {
            let items: Vec<ItemPlan> = list
                .iter()
                .enumerate()
                .filter_map(|(i, it)| compile_item(it, &index(path, i), errors))
                .collect();
            (items.len() == list.len()).then_some(ItemsPlan::List(items))
        }
        Yaml::Mapping(_) => {
            let mut r = MapReader::new(v, path, errors)?;
            let each = match r.raw("each") {
                Some(e) => {
                    let at = r.child_path("each");
                    compile_path(e, &at, r.errors())
                }
                None => {
                    r.error("each", "required: the array to build items from, e.g. `each: properties.products` (or write `items:` as a list of single items)");
                    None
                }
            };
            let filter = r.raw("where").map(|w| {
                let at = r.child_path("where");
                Cond::compile(w, &at, r.errors())
            });
            let item = match r.raw("fields") {
                Some(f) => {
                    let at = r.child_path("fields");
                    compile_item(f, &at, r.errors())
                }
                None => {
                    r.error("fields", "required: the item's fields, relative to each element, e.g. `{id: {path: product_id}}`");
                    None
                }
            };
            r.finish();
            let filter = match filter {
                Some(None) => return None,
                Some(Some(w)) => Some(w),
                None => None,
            };
            Some(ItemsPlan::Each {
                path: each?,
                filter,
                item: Box::new(item?),
            })
        }
        other => {
            errors.push(ConfigError::new(
                path,
                format!("`items` is a list of items or `{{each: <array path>, fields: {{…}}}}`, found {}", kind(other)),
            ));
            None
        }
    }
}

fn need_all(sources: &[&Option<Source>], need: &mut Need, scope: &[&str]) {
    for s in sources.iter().copied().flatten() {
        s.need(need, scope);
    }
}

/// Callback of `for_each_path`: a path and the key path of the `each:` element it is read at.
type PathVisitor<'f> = &'f mut dyn FnMut(&mut Path, &[String]);

impl MoneyPlan {
    fn need(&self, need: &mut Need, scope: &[&str]) {
        need_all(&[&self.currency, &self.amount], need, scope);
    }

    fn for_each_path(&mut self, scope: &[String], f: PathVisitor<'_>) {
        for s in [&mut self.currency, &mut self.amount].into_iter().flatten() {
            s.for_each_path(scope, f);
        }
    }
}

impl ItemPlan {
    fn need(&self, need: &mut Need, scope: &[&str]) {
        need_all(
            &[
                &self.id,
                &self.item_group_id,
                &self.quantity,
                &self.seller_id,
            ],
            need,
            scope,
        );
        for m in [&self.price, &self.price_seller].into_iter().flatten() {
            m.need(need, scope);
        }
    }
}

impl ItemPlan {
    fn for_each_path(&mut self, scope: &[String], f: PathVisitor<'_>) {
        for s in [
            &mut self.id,
            &mut self.item_group_id,
            &mut self.quantity,
            &mut self.seller_id,
        ]
        .into_iter()
        .flatten()
        {
            s.for_each_path(scope, f);
        }
        for m in [&mut self.price, &mut self.price_seller]
            .into_iter()
            .flatten()
        {
            m.for_each_path(scope, f);
        }
    }
}

impl FieldsPlan {
    /// Calls `f` with every message path the fields read and its `each:` scope, exactly the
    /// paths [`FieldsPlan::need`] records.
    pub fn for_each_path(&mut self, f: PathVisitor<'_>) {
        let d = &mut self.device;
        for s in [
            &mut self.id,
            &mut self.timestamp,
            &mut self.channel_type,
            &mut self.user_id,
            &mut self.custom_id,
            &mut self.session_id,
            &mut self.search_query,
            &mut self.page_id,
            &mut self.referrer_page_id,
            &mut self.decision_track_id,
            &mut self.domain,
            &mut self.personalization_mode,
            &mut d.os,
            &mut d.os_version,
            &mut d.persistent_id,
            &mut d.advertising_id,
            &mut d.unique_device_id,
            &mut d.model,
            &mut d.ua,
            &mut d.language,
            &mut d.ip,
            &mut d.user_agent,
        ]
        .into_iter()
        .flatten()
        {
            s.for_each_path(&[], f);
        }
        for m in [&mut self.revenue, &mut self.shipping_charge]
            .into_iter()
            .flatten()
        {
            m.for_each_path(&[], f);
        }
        match &mut self.items {
            None => {}
            Some(ItemsPlan::List(list)) => list.iter_mut().for_each(|i| i.for_each_path(&[], f)),
            Some(ItemsPlan::Each { path, filter, item }) => {
                f(path, &[]);
                if let Some(inner) = each_scope(path, &[]) {
                    if let Some(w) = filter {
                        w.for_each_path_in(&inner, f);
                    }
                    item.for_each_path(&inner, f);
                }
            }
        }
    }

    /// Records every message path the fields read (see [`super::need`]).
    pub fn need(&self, need: &mut Need) {
        let d = &self.device;
        need_all(
            &[
                &self.id,
                &self.timestamp,
                &self.channel_type,
                &self.user_id,
                &self.custom_id,
                &self.session_id,
                &self.search_query,
                &self.page_id,
                &self.referrer_page_id,
                &self.decision_track_id,
                &self.domain,
                &self.personalization_mode,
                &d.os,
                &d.os_version,
                &d.persistent_id,
                &d.advertising_id,
                &d.unique_device_id,
                &d.model,
                &d.ua,
                &d.language,
                &d.ip,
                &d.user_agent,
            ],
            need,
            &[],
        );
        for m in [&self.revenue, &self.shipping_charge].into_iter().flatten() {
            m.need(need, &[]);
        }
        match &self.items {
            None => {}
            Some(ItemsPlan::List(list)) => list.iter().for_each(|i| i.need(need, &[])),
            Some(ItemsPlan::Each { path, filter, item }) => {
                need_each(path, need, &[], |need, inner| {
                    if let Some(w) = filter {
                        w.need_in(need, inner);
                    }
                    item.need(need, inner)
                })
            }
        }
    }

    /// This rule's fields, falling back to the block's shared `fields:` key by key (the device
    /// object field by field; money and items objects as a whole).
    pub fn merged_over(self, base: &FieldsPlan) -> FieldsPlan {
        let b = base.clone();
        let d = self.device;
        let bd = b.device;
        FieldsPlan {
            id: self.id.or(b.id),
            timestamp: self.timestamp.or(b.timestamp),
            channel_type: self.channel_type.or(b.channel_type),
            user_id: self.user_id.or(b.user_id),
            custom_id: self.custom_id.or(b.custom_id),
            session_id: self.session_id.or(b.session_id),
            search_query: self.search_query.or(b.search_query),
            page_id: self.page_id.or(b.page_id),
            referrer_page_id: self.referrer_page_id.or(b.referrer_page_id),
            decision_track_id: self.decision_track_id.or(b.decision_track_id),
            domain: self.domain.or(b.domain),
            personalization_mode: self.personalization_mode.or(b.personalization_mode),
            device: DevicePlan {
                os: d.os.or(bd.os),
                os_version: d.os_version.or(bd.os_version),
                persistent_id: d.persistent_id.or(bd.persistent_id),
                advertising_id: d.advertising_id.or(bd.advertising_id),
                unique_device_id: d.unique_device_id.or(bd.unique_device_id),
                model: d.model.or(bd.model),
                ua: d.ua.or(bd.ua),
                language: d.language.or(bd.language),
                ip: d.ip.or(bd.ip),
                user_agent: d.user_agent.or(bd.user_agent),
            },
            items: self.items.or(b.items),
            revenue: self.revenue.or(b.revenue),
            shipping_charge: self.shipping_charge.or(b.shipping_charge),
        }
    }
}

/// Fields `event_type` needs that this plan does not map (hard rules of reference §2.5–2.6).
pub fn missing_required(p: &FieldsPlan, t: EventType) -> Vec<&'static str> {
    let mut out = Vec::new();
    if p.timestamp.is_none() {
        out.push("timestamp (e.g. `{path: ts, transform: epoch_seconds}` or `{kafka: timestamp}`)");
    }
    if p.channel_type.is_none() {
        out.push("channel_type (e.g. `channel_type: SITE`)");
    }
    if p.user_id.is_none() && p.device.persistent_id.is_none() && p.custom_id.is_none() {
        out.push("an identifier: user_id, device.persistent_id or custom_id");
    }
    if t.requires_items() && p.items.is_none() {
        out.push("items");
    }
    match t {
        EventType::Search if p.search_query.is_none() => out.push("search_query"),
        EventType::PageView if p.page_id.is_none() => out.push("page_id"),
        _ => {}
    }
    out
}
