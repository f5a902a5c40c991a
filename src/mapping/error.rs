//! Typed evaluation errors: a stable reason code, the MCM field being built and the source it
//! came from, so a dead-lettered message says exactly which rule input was wrong.

use std::fmt;

/// Why a message could not be mapped. `code()` strings are stable (DLQ headers, metrics labels,
/// `expect: {error: …}` in test cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum MapReason {
    /// A source the event cannot do without (e.g. `timestamp`) is absent from the message.
    PathNotFound,
    /// The source holds the wrong kind of JSON value (an object where a string was expected, …).
    TypeMismatch,
    /// A string that should be a number is not one, or a number is not whole where it must be.
    InvalidNumber,
    /// A number is too large for its field, or arithmetic overflowed / was not finite.
    NumberOutOfRange,
    /// A timestamp could not be read with the configured format (or, for a `datetime` in a
    /// zone, is a local time that the zone skips).
    InvalidTimestamp,
    /// A currency is not in the MCM currency list after normalisation.
    UnknownCurrency,
    /// A `language` transform's value has no ISO-639-1 language (`eng`, `english`, `*`).
    UnknownLanguage,
    /// A lookup table has no entry for the value and no default.
    LookupNoMatch,
    /// A value for an MCM enum field (`channel_type`, `personalization_mode`) is not a member.
    InvalidEnum,
    /// A Kafka key or header is not valid UTF-8 text.
    InvalidUtf8,
}

impl MapReason {
    /// The variant's name in snake_case, e.g. `path_not_found`.
    pub fn code(self) -> &'static str {
        self.into()
    }
}

/// One mapping failure. `field` (MCM wire path) and `source` (as configured) are filled in as the
/// error travels up from the transform that raised it. Boxed, so that the `Result`s of the
/// evaluation (one per field per message, nearly always `Ok`) stay a few words wide; the fields
/// are reached through `Deref`.
#[derive(Clone, PartialEq, thiserror::Error)]
pub struct MapError(Box<MapErrorDetail>);

/// The contents of a [`MapError`].
#[derive(Debug, Clone, PartialEq)]
pub struct MapErrorDetail {
    pub reason: MapReason,
    pub field: String,
    pub source_path: String,
    pub message: String,
}

impl std::ops::Deref for MapError {
    type Target = MapErrorDetail;
    fn deref(&self) -> &MapErrorDetail {
        &self.0
    }
}

impl std::ops::DerefMut for MapError {
    fn deref_mut(&mut self) -> &mut MapErrorDetail {
        &mut self.0
    }
}

impl fmt::Debug for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl MapError {
    // Cold: errors are the rare path, and keeping their construction out of line keeps the
    // evaluation's hot loops small.
    #[cold]
    pub fn new(reason: MapReason, message: impl Into<String>) -> MapError {
        MapError(Box::new(MapErrorDetail {
            reason,
            field: String::new(),
            source_path: String::new(),
            message: message.into(),
        }))
    }

    /// Sets the source description unless a more specific (inner) one is already set.
    pub fn from_source(mut self, source: &str) -> MapError {
        if self.source_path.is_empty() {
            self.source_path = source.to_string();
        }
        self
    }

    /// Sets the MCM field unless an inner one (e.g. `items[2].price.amount`) is already set.
    pub fn at_field(mut self, field: &str) -> MapError {
        if self.field.is_empty() {
            self.field = field.to_string();
        }
        self
    }

    /// Prefixes the field with a parent, e.g. `price.amount` → `items[2].price.amount`.
    pub fn under(mut self, parent: &str) -> MapError {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if !self.source_path.is_empty() {
            write!(f, " (source {})", self.source_path)?;
        }
        Ok(())
    }
}
