//! The `url` step: one part of a URL — `path`, `host`, a `query` parameter, or the URL
//! `without_query`.
//!
//! URLs are read by the WHATWG URL standard (the `url` crate, what browsers do), so parts come
//! out as browsers send them: the host lower-case (IDNs in punycode), the path percent-encoded
//! (`/p/café` and `/p/caf%C3%A9` give the same page id), a query parameter decoded. Relative
//! URLs (`/p/123?x=1`, the usual page path) are resolved against a placeholder base and only
//! the parts that came from the input are returned: a relative URL has no host (except a
//! scheme-relative `//cdn.example.com/…`), and `?x=1` alone has no path.
//!
//! A part that is not there is absent (the source's `default:` applies), and so is everything
//! of a URL that cannot be parsed (`http://exa mple.com/`, `http://[::1/`): these steps extract
//! an optional part for an optional field (page ids, referrers), from browser-reported text
//! that a client can fill with anything; dead-lettering a purchase over a malformed referrer
//! would lose the event for a field MCM can do without. Where the part matters, MCM's own
//! rules still reject the event (a PAGE_VIEW without `page_id` is `missing_page_id`).

use super::Transform;
use crate::config::decode::{closest, kind, ConfigError, MapReader};
use crate::mapping::error::MapError;
use crate::mapping::value::Val;
use ::url::{Position, Url};
use serde_yaml_ng::Value as Yaml;
use std::borrow::Cow;
use std::sync::LazyLock;

/// Which part of the URL.
#[derive(Debug, Clone, PartialEq)]
pub enum UrlPart {
    Path,
    Host,
    /// The first parameter of this name, percent- and `+`-decoded.
    Query(String),
    /// The URL without `?…` and `#…`.
    WithoutQuery,
}

const PARTS: [&str; 4] = ["path", "host", "query", "without_query"];

/// Relative URLs are resolved against this. `.invalid` is reserved (RFC 2606): it can never be
/// a real host, and its host is never returned for a relative URL anyway.
static BASE: LazyLock<Url> = LazyLock::new(|| {
    Url::parse("http://relative.invalid/").expect("a fixed, valid absolute URL parses")
});

/// A parsed URL and what of it the input gave.
struct Parsed {
    url: Url,
    form: Form,
}

#[derive(PartialEq)]
enum Form {
    /// With a scheme (`https://…`, also `mailto:…`).
    Absolute,
    /// `//host/path`: a host, but no scheme.
    SchemeRelative,
    /// `/p/1`, `p/1`: only a path (and maybe a query).
    Path,
    /// `?x=1`, `#top`: not even a path.
    QueryOnly,
}

fn parse(s: &str) -> Option<Parsed> {
    match Url::parse(s) {
        Ok(url) => Some(Parsed {
            url,
            form: Form::Absolute,
        }),
        Err(::url::ParseError::RelativeUrlWithoutBase) => {
            // The parser ignores surrounding spaces and control characters; classify the same
            // text. For http(s) a backslash is a slash (`\\host\p` is scheme-relative).
            let t = s.trim_matches(|c: char| c <= ' ');
            let slash = |c: Option<char>| matches!(c, Some('/' | '\\'));
            let mut chars = t.chars();
            let form = if slash(chars.next()) && slash(chars.next()) {
                Form::SchemeRelative
            } else if t.is_empty() || t.starts_with(['?', '#']) {
                Form::QueryOnly
            } else {
                Form::Path
            };
            BASE.join(s).ok().map(|url| Parsed { url, form })
        }
        Err(_) => None,
    }
}

impl UrlPart {
    pub(super) fn apply<'a>(&self, v: Val<'a>) -> Result<Option<Val<'a>>, MapError> {
        let text = v.text()?;
        let Some(Parsed { url, form }) = parse(&text) else {
            return Ok(None);
        };
        let part = match self {
            UrlPart::Host => match form {
                Form::Absolute | Form::SchemeRelative => url.host_str().map(str::to_string),
                Form::Path | Form::QueryOnly => None,
            },
            UrlPart::Path => (form != Form::QueryOnly).then(|| url.path().to_string()),
            UrlPart::Query(name) => url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned()),
            UrlPart::WithoutQuery => match form {
                Form::Absolute => Some(url[..Position::AfterPath].to_string()),
                Form::SchemeRelative => Some(format!(
                    "//{}",
                    &url[Position::BeforeUsername..Position::AfterPath]
                )),
                Form::Path => Some(url[Position::BeforePath..Position::AfterPath].to_string()),
                Form::QueryOnly => None,
            },
        };
        Ok(part.map(|p| Val::Str(Cow::Owned(p))))
    }
}

/// `url: path | host | without_query`, or `url: {query: name}`.
pub(super) fn compile(
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Transform> {
    const HELP: &str =
        "`{url: path}`, `{url: host}`, `{url: without_query}` or `{url: {query: name}}`";
    let part = match arg {
        Some(Yaml::String(p)) => match p.as_str() {
            "path" => UrlPart::Path,
            "host" => UrlPart::Host,
            "without_query" => UrlPart::WithoutQuery,
            "query" => {
                errors.push(ConfigError::new(
                    path,
                    "`query` needs the parameter's name: `{url: {query: name}}`",
                ));
                return None;
            }
            other => {
                let hint = closest(other, &PARTS)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                errors.push(ConfigError::new(
                    path,
                    format!("unknown URL part `{other}`{hint}: write {HELP}"),
                ));
                return None;
            }
        },
        Some(m @ Yaml::Mapping(_)) => {
            let mut r = MapReader::new(m, path, errors)?;
            let name = match r.raw("query") {
                Some(Yaml::String(q)) if !q.is_empty() => Some(q.clone()),
                Some(other) => {
                    let msg = format!("the parameter's name is text, found {}", kind(other));
                    r.error("query", msg);
                    None
                }
                None => {
                    r.error(
                        "query",
                        "required: the parameter's name, e.g. `{url: {query: utm_source}}`",
                    );
                    None
                }
            };
            r.finish();
            UrlPart::Query(name?)
        }
        _ => {
            errors.push(ConfigError::new(
                path,
                format!("`url` needs the part to take: {HELP}"),
            ));
            return None;
        }
    };
    Some(Transform::Url(part))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_errors, s};
    use super::super::{run, run_opt};
    use crate::mapping::value::Val;
    use proptest::prelude::*;

    const FULL: &str =
        "https://Shop.Example.COM:8443/p/123/caf%C3%A9?q=red%20shoes&page=2&q=2#reviews";

    #[test]
    fn parts_of_an_absolute_url() {
        assert_eq!(run("url: host", s(FULL)), Ok("shop.example.com".into()));
        assert_eq!(run("url: path", s(FULL)), Ok("/p/123/caf%C3%A9".into()));
        assert_eq!(run("url: {query: q}", s(FULL)), Ok("red shoes".into()));
        assert_eq!(run("url: {query: page}", s(FULL)), Ok("2".into()));
        assert_eq!(
            run("url: without_query", s(FULL)),
            Ok("https://shop.example.com:8443/p/123/caf%C3%A9".into())
        );
        // Unencoded text is encoded as a browser would send it: both spellings give one id.
        assert_eq!(
            run("url: path", s("https://x.com/p/café")),
            Ok("/p/caf%C3%A9".into())
        );
        assert_eq!(
            run("url: host", s("https://bücher.de/")),
            Ok("xn--bcher-kva.de".into())
        );
        assert_eq!(run("url: path", s("https://x.com")), Ok("/".into()));
        assert_eq!(
            run("url: {query: q}", s("https://x.com/?q=a+b%2Bc")),
            Ok("a b+c".into())
        );
    }

    #[test]
    fn parts_of_a_relative_url_come_only_from_the_input() {
        let page = "/p/123?x=1&utm_source=mail#top";
        assert_eq!(run("url: path", s(page)), Ok("/p/123".into()));
        assert_eq!(run_opt("url: host", s(page)), Ok(None));
        assert_eq!(run("url: {query: utm_source}", s(page)), Ok("mail".into()));
        assert_eq!(run("url: without_query", s(page)), Ok("/p/123".into()));
        // A path without a leading slash is resolved from the root.
        assert_eq!(run("url: without_query", s("p/1?x")), Ok("/p/1".into()));
        // Scheme-relative: the host came from the input.
        let cdn = "//cdn.example.com/img/1.png?w=2";
        assert_eq!(run("url: host", s(cdn)), Ok("cdn.example.com".into()));
        assert_eq!(
            run("url: without_query", s(cdn)),
            Ok("//cdn.example.com/img/1.png".into())
        );
        // A query alone has no path.
        assert_eq!(run_opt("url: path", s("?x=1")), Ok(None));
        assert_eq!(run_opt("url: without_query", s("?x=1")), Ok(None));
        assert_eq!(run("url: {query: x}", s("?x=1")), Ok("1".into()));
        // No scheme means a path: `shop.com/p` has no host.
        assert_eq!(run_opt("url: host", s("shop.com/p")), Ok(None));
    }

    #[test]
    fn missing_parts_and_unparsable_urls_are_absent() {
        assert_eq!(run_opt("url: {query: nope}", s(FULL)), Ok(None));
        assert_eq!(run_opt("url: host", s("mailto:a@b.com")), Ok(None));
        for bad in [
            "http://exa mple.com/",
            "http://[::1/",
            "https://x.com:99999/",
            "http://",
        ] {
            for t in [
                "url: host",
                "url: path",
                "url: without_query",
                "url: {query: q}",
            ] {
                assert_eq!(run_opt(t, s(bad)), Ok(None), "{t} {bad}");
            }
        }
        // An empty parameter is present but blank (the source's default applies).
        assert_eq!(
            run_opt("url: {query: q}", s("/?q=")),
            Ok(Some(String::new()))
        );
        // A number is read as its text (here: a relative path).
        assert_eq!(run("url: path", Val::Int(12)), Ok("/12".into()));
    }

    #[test]
    fn bad_url_steps_fail_at_start_up_with_paths() {
        let help = "`{url: path}`, `{url: host}`, `{url: without_query}` or `{url: {query: name}}`";
        assert_eq!(
            compile_errors("url"),
            [format!(
                "f.transform.url: `url` needs the part to take: {help}"
            )]
        );
        assert_eq!(
            compile_errors("url: hots"),
            [format!(
                "f.transform.url: unknown URL part `hots` (did you mean `host`?): write {help}"
            )]
        );
        assert_eq!(
            compile_errors("url: query"),
            ["f.transform.url: `query` needs the parameter's name: `{url: {query: name}}`"]
        );
        assert_eq!(
            compile_errors("url: {query: 1}"),
            ["f.transform.url.query: the parameter's name is text, found a number"]
        );
        assert_eq!(
            compile_errors("url: {qeury: q}"),
            [
                "f.transform.url.query: required: the parameter's name, e.g. `{url: {query: utm_source}}`",
                "f.transform.url.qeury: unknown key (did you mean `query`?)",
            ]
        );
    }

    proptest! {
        #[test]
        fn url_parts_never_panic_on_any_text(text in any::<String>(), tail in "[/?#:@\\[\\]%a-z0-9.]{0,16}") {
            for input in [text.clone(), format!("https://{tail}"), format!("//{tail}"), tail.clone()] {
                for t in ["url: host", "url: path", "url: without_query", "url: {query: q}"] {
                    let _ = run_opt(t, s(&input));
                }
            }
        }
    }
}
