//! User-agent parsing for `device.user_agent`: a raw UA string → `os`, `os_version`, `model`.
//!
//! Uses `ua-parser` (the ua-parser organisation's own Rust implementation of the uap-core rules,
//! i.e. the same community-maintained regex set that uap-python/uap-java use; ua-parser-js in
//! Moloco's examples is a sibling project). The crate deliberately ships no data, so uap-core's
//! `regexes.yaml` is vendored next to this file and embedded with `include_str!`: no file is
//! needed at run time and the rules are versioned with our code. Building the extractors costs
//! ~90 ms, so it happens once per process, started in the background when a plan that uses a
//! user agent is compiled: it overlaps the consumer-group join. Only the OS and device tables
//! are built: the browser table is not needed for MCM's device fields.
//!
//! A parse walks hundreds of regexes (~4 µs, more than the rest of a message's mapping), while
//! real traffic repeats a small set of user-agent strings, so results are cached per thread
//! (no locking on the hot path), bounded at [`CACHE_CAP`] entries and cleared when full, with the
//! last answer held apart so a run of messages with one user agent skips hashing it. A hit is
//! shared (`Rc`), so the event borrows its text instead of copying three strings.

use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

/// Distinct user agents remembered per thread; beyond that the cache starts over, so memory stays
/// bounded (≈ 1024 × a few hundred bytes) whatever the input.
pub const CACHE_CAP: usize = 1024;
/// Longer strings are parsed but not cached: real user agents are far shorter, and caching
/// arbitrary-length input would let one message pin a lot of memory.
const MAX_CACHED_LEN: usize = 512;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// A thread's parsed user agents, and the last one asked for: consecutive messages of a
/// partition (keyed by user, as Segment and most producers key them) mostly carry the same user
/// agent, and comparing it with the last costs a fraction of hashing it for the map.
#[derive(Default)]
struct Cache {
    map: HashMap<Box<str>, Rc<UaInfo>>,
    last: Option<(Box<str>, Rc<UaInfo>)>,
}

const REGEXES: &str = include_str!("uap_regexes.yaml");

#[derive(Deserialize)]
struct Tables {
    os_parsers: Vec<ua_parser::os::Parser<'static>>,
    device_parsers: Vec<ua_parser::device::Parser<'static>>,
}

struct Parsers {
    os: ua_parser::os::Extractor<'static>,
    device: ua_parser::device::Extractor<'static>,
}

/// The device fields a user agent yields (each may be absent).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UaInfo {
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub model: Option<String>,
}

fn parsers() -> Option<&'static Parsers> {
    static P: OnceLock<Option<Parsers>> = OnceLock::new();
    P.get_or_init(|| {
        let t: Tables = serde_yaml_ng::from_str(REGEXES).ok()?;
        let os = ua_parser::os::Builder::new()
            .push_all(t.os_parsers)
            .ok()?
            .build()
            .ok()?;
        let device = ua_parser::device::Builder::new()
            .push_all(t.device_parsers)
            .ok()?
            .build()
            .ok()?;
        Some(Parsers { os, device })
    })
    .as_ref()
}

/// Builds the parsers now; false if the embedded rules failed to load (a build defect; a unit
/// test checks they load).
pub fn warm_up() -> bool {
    parsers().is_some()
}

/// Starts building the parsers on a thread of their own (once per process), so the ~90 ms build
/// overlaps the consumer-group join instead of delaying the start of consumption. A message that
/// needs them earlier waits in [`parse`] (`OnceLock` blocks until the build is done).
pub fn warm_up_in_background() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("ua-rules".into())
            .spawn(|| {
                if !warm_up() {
                    tracing::error!(
                        "the embedded user-agent rules failed to load (a build defect; please \
                         report it): device fields from user agents stay empty"
                    );
                }
            });
        if spawned.is_err() {
            let _ = warm_up(); // no thread: build here
        }
    });
}

/// Parses `ua`, through the per-thread cache.
pub fn parse(ua: &str) -> Rc<UaInfo> {
    if ua.len() > MAX_CACHED_LEN {
        return Rc::new(parse_uncached(ua));
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((last, info)) = &c.last {
            if **last == *ua {
                return Rc::clone(info);
            }
        }
        let info = match c.map.get(ua) {
            Some(hit) => Rc::clone(hit),
            None => {
                let info = Rc::new(parse_uncached(ua));
                if c.map.len() >= CACHE_CAP {
                    c.map.clear();
                }
                c.map.insert(ua.into(), Rc::clone(&info));
                info
            }
        };
        c.last = Some((ua.into(), Rc::clone(&info)));
        info
    })
}

/// Parses `ua` without the cache. uap-core's placeholder `Other` counts as unknown.
pub fn parse_uncached(ua: &str) -> UaInfo {
    let Some(p) = parsers() else {
        return UaInfo::default();
    };
    let mut info = UaInfo::default();
    if let Some(os) = p.os.extract(ua) {
        if os.os != "Other" {
            info.os = Some(os.os.into_owned());
            let parts: Vec<&str> = [&os.major, &os.minor, &os.patch, &os.patch_minor]
                .into_iter()
                .map_while(|v| v.as_deref())
                .filter(|s| !s.is_empty())
                .collect();
            if !parts.is_empty() {
                info.os_version = Some(parts.join("."));
            }
        }
    }
    if let Some(d) = p.device.extract(ua) {
        info.model = d
            .model
            .map(|m| m.into_owned())
            .filter(|m| !m.is_empty() && m != "Other");
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_user_agents() {
        assert!(warm_up());
        let iphone = parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1");
        assert_eq!(iphone.os.as_deref(), Some("iOS"));
        assert_eq!(iphone.os_version.as_deref(), Some("17.4.1"));
        assert_eq!(iphone.model.as_deref(), Some("iPhone"));
        let android = parse("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36");
        assert_eq!(android.os.as_deref(), Some("Android"));
        assert_eq!(android.os_version.as_deref(), Some("13"));
        assert_eq!(android.model.as_deref(), Some("SM-S918B"));
        let windows = parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
        assert_eq!(windows.os.as_deref(), Some("Windows"));
        assert_eq!(windows.model, None);
        assert_eq!(
            *parse("curl/8.0"),
            UaInfo {
                os: None,
                os_version: None,
                model: None
            }
        );
        assert_eq!(*parse(""), UaInfo::default());
    }

    #[test]
    fn cache_returns_the_same_answer_and_stays_bounded() {
        let ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36";
        assert_eq!(*parse(ua), parse_uncached(ua));
        assert_eq!(*parse(ua), parse_uncached(ua));
        for i in 0..CACHE_CAP + 10 {
            let _ = parse(&format!("agent/{i}"));
        }
        assert!(CACHE.with(|c| c.borrow().map.len()) <= CACHE_CAP);
        // The last one asked for answers from the memo, an earlier one from the map.
        let other = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0";
        assert_eq!(*parse(other), parse_uncached(other));
        assert_eq!(*parse(other), parse_uncached(other));
        assert_eq!(*parse(ua), parse_uncached(ua));
        assert_eq!(*parse(other), parse_uncached(other));
        let long = "x".repeat(MAX_CACHED_LEN + 1);
        assert_eq!(*parse(&long), UaInfo::default());
        assert!(CACHE.with(|c| !c.borrow().map.contains_key(long.as_str())));
    }
}
