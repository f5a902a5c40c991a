//! Test support: checks that generated messages do what they declare with a shipped mapping.

use super::shop::{Expect, ShopMessage, ShopTopic};
use crate::mapping::{Processed, SourceMessage};
use crate::mcm::validate::ValidateOptions;

/// Runs 300 sessions from `session` through `config`'s mapping and asserts every message's
/// declared [`Expect`] holds, and that every outcome occurs.
pub fn assert_generated_matches_mapping(
    config: &str,
    topic_of: impl Fn(ShopTopic) -> &'static str,
    mut session: impl FnMut(i64) -> Vec<ShopMessage>,
) {
    let env = |_: &str| -> Option<String> { None };
    let (_, plan) = crate::config::load_str_with(
        config,
        std::path::Path::new("."),
        &env,
        Vec::<(String, String)>::new(),
        crate::mapping::compile,
    )
    .expect("example config is valid");
    let now = 1_750_000_000;
    let opts = ValidateOptions::at(now * 1000 + 1000);
    let mut seen = [0usize; 3];
    for _ in 0..300 {
        for m in session(now) {
            let topic = topic_of(m.topic);
            let src = SourceMessage {
                topic,
                partition: 0,
                offset: 0,
                key: Some(m.key.as_bytes()),
                headers: &[("x-platform", Some(b"web"))],
                timestamp_ms: None,
                payload: m.payload.as_deref(),
            };
            let got = plan.route(topic).expect("routed").process(&src, &opts);
            let kind = match got {
                Processed::Deliver(_) => Expect::Deliver,
                Processed::Filtered { .. } => Expect::Filter,
                Processed::Reject { .. } => Expect::DeadLetter,
            };
            assert_eq!(
                kind,
                m.expect,
                "{got:?} for {:?}",
                m.payload.as_deref().map(String::from_utf8_lossy)
            );
            seen[m.expect as usize] += 1;
        }
    }
    assert!(
        seen.iter().all(|n| *n > 10),
        "every outcome is exercised: {seen:?}"
    );
}
