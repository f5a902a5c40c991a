//! What rules read: the evaluation context ([`Ctx`]: the decoded message and its Kafka
//! metadata) and the subjects a condition or a source reads from it ([`Subject`]: a message
//! path, a Kafka metadata field, a header). Reading borrows from the message; keys and headers
//! must be UTF-8 text, anything else is an `invalid_utf8` mapping error.

use super::doc::{Doc, Node};
use super::error::{MapError, MapReason};
use super::path::Path;
use super::useragent::UaInfo;
use super::value::Val;
use super::SourceMessage;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::rc::Rc;
use strum::IntoEnumIterator;

/// What evaluation needs besides the plan: the decoded message and its Kafka metadata.
pub struct Ctx<'a> {
    pub doc: &'a Doc<'a>,
    /// `doc`'s root: the scope of everything outside an `each:`.
    pub root: &'a Node<'a>,
    pub msg: &'a SourceMessage<'a>,
    /// The parsed `device.user_agent`, held for as long as the event that borrows its text.
    pub ua: &'a OnceCell<Rc<UaInfo>>,
}

impl<'a> Ctx<'a> {
    /// The context for a whole message: every path starts at the document's root.
    pub fn at_root(
        doc: &'a Doc<'a>,
        msg: &'a SourceMessage<'a>,
        ua: &'a OnceCell<Rc<UaInfo>>,
    ) -> Self {
        Ctx {
            doc,
            root: doc.root(),
            msg,
            ua,
        }
    }
}

/// A Kafka metadata field, named in rules by its lowercase name (`kafka: timestamp`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "lowercase")]
pub enum KafkaField {
    Key,
    Topic,
    Partition,
    Offset,
    Timestamp,
}

/// Something a condition or a source can read: a message path or Kafka metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Path(Path),
    Kafka(KafkaField),
    Header(String),
}

impl Subject {
    pub fn parse_kafka(s: &str) -> Result<KafkaField, String> {
        s.parse().map_err(|_| {
            let names: Vec<&str> = KafkaField::iter().map(<&str>::from).collect();
            format!("{s:?} is not one of: {}", names.join(", "))
        })
    }

    /// Reads the subject; `None` when absent. Keys and headers must be UTF-8 text.
    pub fn read<'a>(
        &'a self,
        ctx: &Ctx<'a>,
        scope: &'a Node<'a>,
    ) -> Result<Option<Val<'a>>, MapError> {
        Ok(match self {
            Subject::Path(p) => p.resolve(ctx.doc, scope).and_then(Val::from_node),
            Subject::Kafka(KafkaField::Key) => ctx.msg.key.map(utf8).transpose()?,
            Subject::Kafka(KafkaField::Topic) => Some(Val::Str(Cow::Borrowed(ctx.msg.topic))),
            Subject::Kafka(KafkaField::Partition) => Some(Val::Int(i64::from(ctx.msg.partition))),
            Subject::Kafka(KafkaField::Offset) => Some(Val::Int(ctx.msg.offset)),
            Subject::Kafka(KafkaField::Timestamp) => ctx.msg.timestamp_ms.map(Val::Int),
            Subject::Header(name) => ctx
                .msg
                .headers
                .iter()
                .find(|(k, _)| *k == name.as_str())
                .and_then(|(_, v)| *v)
                .map(utf8)
                .transpose()?,
        })
    }

    /// How the subject is shown in error messages (`\`order.id\``, `kafka key`).
    pub(super) fn label(&self) -> String {
        match self {
            Subject::Path(p) => format!("`{p}`"),
            Subject::Kafka(f) => format!("kafka {}", <&str>::from(f)),
            Subject::Header(h) => format!("header `{h}`"),
        }
    }
}

fn utf8(b: &[u8]) -> Result<Val<'_>, MapError> {
    std::str::from_utf8(b)
        .map(|s| Val::Str(Cow::Borrowed(s)))
        .map_err(|_| {
            MapError::new(
                MapReason::InvalidUtf8,
                "the Kafka key or header is not valid UTF-8",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_fields_parse_by_their_lowercase_name_and_label_so() {
        for (name, field) in [
            ("key", KafkaField::Key),
            ("topic", KafkaField::Topic),
            ("partition", KafkaField::Partition),
            ("offset", KafkaField::Offset),
            ("timestamp", KafkaField::Timestamp),
        ] {
            assert_eq!(Subject::parse_kafka(name), Ok(field));
            assert_eq!(Subject::Kafka(field).label(), format!("kafka {name}"));
        }
        assert_eq!(
            Subject::parse_kafka("Offset"),
            Err("\"Offset\" is not one of: key, topic, partition, offset, timestamp".into())
        );
    }
}
