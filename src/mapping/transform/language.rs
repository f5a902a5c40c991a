//! The `language` step: a locale or language tag → the ISO-639-1 code MCM wants in
//! `device.language` (`en-US`, `en_us`, `EN`, `pt-BR`, `zh-Hant-TW` → `en`, `en`, `en`, `pt`,
//! `zh`).
//!
//! The language is the tag's first subtag: the text up to the first `-` or `_` (BCP 47, POSIX
//! and Java locales), `.` or `@` (POSIX `en_US.UTF-8`, `de_DE@euro`), `,` or `;` (an
//! `Accept-Language` header, whose first entry is the preferred language). It must be one of
//! the 184 ISO-639-1 codes, compared case-insensitively; Java's legacy codes, which Android
//! still reports on older versions, are mapped to the current ones (`iw` → `he`, `in` → `id`,
//! `ji` → `yi`).
//!
//! Anything else — a three-letter code (`eng`), a name (`english`), `*` — is rejected with
//! `unknown_language`, as `currency` rejects a code outside its list (`unknown_currency`): a
//! value of the wrong kind nearly always means the rule reads the wrong field, which a
//! dead-lettered message with a reason shows at once, while a dropped language would hide it
//! for good. A rule that expects such values can map them first
//! (`{lookup: {table: {english: en}, default: keep}}`).

use crate::mapping::error::{MapError, MapReason};
use crate::mapping::value::{trim, Val};
use std::borrow::Cow;

/// ISO 639-1, every two-letter code (Debian's iso-codes 4.15, `iso_639-2.json` `alpha_2`),
/// sorted for binary search.
const ISO_639_1: [&str; 184] = [
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// Codes withdrawn from ISO 639-1 that `java.util.Locale` kept producing (documented there),
/// and their current codes.
const LEGACY: [(&str, &str); 3] = [("in", "id"), ("iw", "he"), ("ji", "yi")];

pub(super) fn apply<'a>(v: Val<'a>) -> Result<Option<Val<'a>>, MapError> {
    let text = v.text()?;
    match language_code(&text) {
        Some(code) => Ok(Some(Val::Str(Cow::Borrowed(code)))),
        None => Err(MapError::new(
            MapReason::UnknownLanguage,
            format!(
                "{:?} has no ISO-639-1 language (expected a code or locale such as en, en-US, pt_BR)",
                trim(&text)
            ),
        )),
    }
}

/// The ISO-639-1 code of a language tag or locale, as the table's own `&'static str` (no
/// allocation); `None` when its first subtag is not a two-letter code in the list.
pub(super) fn language_code(tag: &str) -> Option<&'static str> {
    let tag = trim(tag);
    let end = tag
        .find(['-', '_', '.', '@', ',', ';'])
        .unwrap_or(tag.len());
    let two: [u8; 2] = tag.as_bytes()[..end].try_into().ok()?;
    let lower = two.map(|b| b.to_ascii_lowercase());
    // The bytes are ASCII letters once they match a table entry, so the text is the entry's.
    let key = std::str::from_utf8(&lower).ok()?;
    if let Some((_, new)) = LEGACY.iter().find(|(old, _)| *old == key) {
        return Some(new);
    }
    ISO_639_1
        .binary_search(&key)
        .ok()
        .and_then(|i| ISO_639_1.get(i).copied())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_errors, s};
    use super::super::{run, run_opt};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn locales_and_tags_give_their_language() {
        for (tag, want) in [
            ("en-US", "en"),
            ("en_us", "en"),
            ("EN", "en"),
            ("pt-BR", "pt"),
            ("zh-Hant-TW", "zh"),
            (" fr ", "fr"),
            ("de_DE.UTF-8", "de"),
            ("de_DE@euro", "de"),
            ("sr-Latn", "sr"),
            ("en-US,en;q=0.9,ko;q=0.8", "en"),
            ("ko;q=0.8", "ko"),
            ("iw-IL", "he"),
            ("in_ID", "id"),
            ("ji", "yi"),
        ] {
            assert_eq!(run("language", s(tag)), Ok(want.into()), "{tag}");
        }
    }

    #[test]
    fn a_value_without_a_two_letter_language_is_rejected() {
        for tag in [
            "eng",
            "english",
            "*",
            "",
            "e",
            "xx",
            "x-klingon",
            "C.UTF-8",
            "e1",
            "éa",
            "en US",
            "-en",
        ] {
            assert_eq!(
                run_opt("language", s(tag)),
                Err(MapReason::UnknownLanguage),
                "{tag:?}"
            );
        }
        assert_eq!(
            run_opt("language", Val::Int(12)),
            Err(MapReason::UnknownLanguage)
        );
        assert_eq!(
            run_opt("language", Val::Bool(true)),
            Err(MapReason::UnknownLanguage)
        );
        let obj = crate::mapping::doc::Node::Obj { start: 0, len: 0 };
        assert_eq!(
            run_opt("language", Val::Node(&obj)),
            Err(MapReason::TypeMismatch)
        );
    }

    #[test]
    fn the_rejection_names_the_value() {
        let err = apply(s(" english ")).expect_err("rejected");
        assert_eq!(err.reason.code(), "unknown_language");
        assert_eq!(
            err.message,
            "\"english\" has no ISO-639-1 language (expected a code or locale such as en, en-US, pt_BR)"
        );
    }

    #[test]
    fn the_table_is_sorted_two_letter_lower_case() {
        assert!(ISO_639_1.windows(2).all(|w| w[0] < w[1]));
        assert!(ISO_639_1
            .iter()
            .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_lowercase())));
        for (old, new) in LEGACY {
            assert!(ISO_639_1.binary_search(&old).is_err(), "{old}");
            assert!(ISO_639_1.binary_search(&new).is_ok(), "{new}");
        }
    }

    #[test]
    fn language_takes_no_argument() {
        assert_eq!(
            compile_errors("{language: en}"),
            ["f.transform.language: `language` takes no argument"]
        );
        assert_eq!(
            compile_errors("langauge"),
            ["f.transform: unknown transform `langauge` (did you mean `language`?)"]
        );
    }

    proptest! {
        #[test]
        fn language_never_panics_and_gives_a_listed_code(text in any::<String>(), tag in "[a-zA-Z]{0,3}[-_.,;@]?[a-zA-Z0-9]{0,4}") {
            for t in [text.as_str(), tag.as_str()] {
                if let Some(code) = language_code(t) {
                    prop_assert!(ISO_639_1.contains(&code));
                    prop_assert!(t.trim().to_ascii_lowercase().starts_with(code)
                        || LEGACY.iter().any(|(_, new)| *new == code));
                }
            }
        }
    }
}
