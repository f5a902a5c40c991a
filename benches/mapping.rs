//! Criterion benchmark: parse + map + validate + serialise one Segment "Order Completed" event with
//! three products through the shipped `deploy/examples/segment.yaml` plan — the whole per-message
//! CPU cost of the bridge before the HTTP request. Target: ≤ 2 µs per event.
//!
//! Run: `cargo bench --bench mapping` (add `-- --measurement-time 3` for a quick figure).
//!
//! Figures (shared 2-core dev machine; timings there move with the host, so compare only runs
//! made side by side, and use callgrind's instruction counts across days):
//! - 25 Nov 2026, load 0.9–1.1: ~2.92 µs per event through `process_wire` (the pipeline's path),
//!   ~2.75 µs without a user agent, ~3.3 µs for the owned-event path (`process` +
//!   `to_json_bytes`, used by `map`/`test`); ~3.87 µs before the borrowed-event work. callgrind
//!   52.5k → 41.4k instructions per event.
//! - 3 Dec 2026, after the flat node vector, the projected reader matching keys by word heads
//!   and events built in place: callgrind **28.1k** instructions per event (−32 %). Criterion,
//!   alternating runs of both builds at load ~1: 3.78 / 3.88 µs against 6.27 / 5.58 µs for the
//!   25 Nov code (0.63×; the host was slower that day than on 25 Nov); the profiling loop below
//!   2.74–2.94 µs. callgrind splits an event as decode (src/mapping/scan.rs) ≈ 52 %, building
//!   the event ≈ 25 %, the rest serialisation, validation and rule choice. Still short of the
//!   2 µs target on this host.
//! - 5 Dec 2026, after cheaper reading of whitespace, keys and separators (one-byte gaps without
//!   the word skip, the colon and `,`/`}` looked at first, key heads loaded without an overflow
//!   check, key text fetched only for keys longer than a head), strings scanned sixteen bytes per
//!   bounds check with their text taken by inlined boundary checks, numbers read inline,
//!   source-less text fields and a constant `channel_type` answered without evaluation, one-digit
//!   integers and enum names written directly, and the last user agent held apart from the
//!   per-thread map (no SipHash per message): callgrind **25.1k** instructions per event against
//!   28.4–28.5k for f73d7d1 (−12 %; f73d7d1's count moved with SipHash's random keys). Criterion,
//!   alternating runs of both builds at load 1.2–1.6: 1.89 / 1.95 / 1.92 µs against
//!   2.05 / 2.06 / 2.08 µs for f73d7d1 (0.93×), and at load 0.4–0.8 1.88 / 1.89 / 1.93 µs
//!   against 2.12 / 2.08 / 2.16 µs (0.90×); without a user agent (load 3.6–3.8)
//!   1.86 / 1.90 / 1.95 µs against 2.23 / 2.00 / 2.08 µs; the profiling loop 1.90–1.96 µs
//!   against 2.10–2.16 µs (0.91×). The host was much quicker than on 3 Dec (f73d7d1 measured
//!   3.8 µs then), so "under 2 µs" holds on this host today, not under that day's load. Split:
//!   decode ≈ 55 % (13.7k, of which UTF-8 validation 0.6k), building the event ≈ 23 % (5.7k),
//!   serialisation ≈ 13 % (3.2k), rule choice 0.9k, validation 0.5k. The reader is now mostly
//!   bounds checks and SWAR arithmetic per token; a large further cut needs another design (SIMD
//!   classification — safe `core::arch` calls need Rust 1.87, the crate declares 1.85 — or a
//!   plan-specific decoder writing the body directly).
//! - Tried and dropped on 5 Dec (measured worse): words loaded by `get(at..)` + `first_chunk` in
//!   the whitespace and string scans (+0.1k to +0.8k instructions: LLVM made worse loops of it;
//!   kept only for key heads, where it saved 0.2k); short strings copied byte by byte instead of a
//!   `memcpy` call in the writer (+0.1k). Not tried: `simdutf8` (a new dependency for ≈ 0.45k).
//! - Tried and dropped earlier (measured worse): whitespace skipped by 8-byte words (this input's
//!   branches predict well), inline or word-signature key comparison instead of `memcmp`.
//! - On 25 Nov about 2.2k of the 41k instructions were allocation (~11 per event: 7 projected
//!   objects, an array, items, the body, the lower-cased language; the flat node vector now
//!   decodes a message into two allocations whatever its objects). The `mimalloc` crate always
//!   calls `mi_malloc_aligned` (mimalloc v3's generic path), and an allocator calling `mi_malloc`
//!   for small alignments saved only ~0.7k of them in a trial.
//!
//! A cold user-agent parse adds ~4.3 µs, which is why results are cached per thread.
//! `decode_only` is the full serde_json decode (not on the message path; kept for comparison).

use criterion::{black_box, criterion_group, Criterion};

/// The allocator the `mcm-bridge` binary uses (src/main.rs): the mapping allocates a few small
/// strings per event, so the benchmark measures it with the same allocator as production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use mcm_bridge::config;
use mcm_bridge::mapping::{self, MappingPlan, Processed, SourceMessage, TopicMapping};
use mcm_bridge::mcm::validate::ValidateOptions;
use std::path::Path;

const ORDER_COMPLETED: &str = r#"{
  "type": "track",
  "event": "Order Completed",
  "messageId": "ajs-next-1717000003000-4f8e2c1a",
  "timestamp": "2024-05-29T16:26:43.000Z",
  "userId": "user-8f14e45f",
  "anonymousId": "0b3c1e9a-7d4e-4c52-9a7e-2f1d3b6c8e90",
  "context": {
    "ip": "203.0.113.7",
    "locale": "en-US",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "page": {"path": "/checkout/complete", "referrer": "https://shop.example/cart", "title": "Thank you"},
    "library": {"name": "analytics.js", "version": "2.11.1"}
  },
  "properties": {
    "order_id": "50314b8e9bcf000000000000",
    "total": 27.5,
    "revenue": 25.0,
    "shipping": 3,
    "tax": 2,
    "currency": "USD",
    "products": [
      {"product_id": "507f1f77bcf86cd799439011", "sku": "45790-32", "name": "Monopoly: 3rd Edition", "price": 19, "quantity": 1, "category": "Games"},
      {"product_id": "505bd76785ebb509fc183733", "sku": "46493-32", "name": "Uno Card Game", "price": 3, "quantity": 2, "category": "Games"},
      {"product_id": "5d9a3c7e8f1b2a4c6e0d9f11", "sku": "11223-01", "name": "Dice Set", "price": 0.5, "quantity": 1, "category": "Games"}
    ]
  }
}"#;

/// The shipped Segment example's compiled rules.
fn segment_plan() -> MappingPlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/segment.yaml");
    let cfg = config::load(&path).expect("example config loads");
    let mut errors = Vec::new();
    let plan = mapping::compile(&cfg.topics, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    plan
}

fn message(payload: &[u8]) -> SourceMessage<'_> {
    SourceMessage {
        topic: "segment.events",
        partition: 3,
        offset: 123_456,
        key: Some(b"user-8f14e45f"),
        headers: &[],
        timestamp_ms: Some(1_717_000_003_000),
        payload: Some(payload),
    }
}

fn bench(c: &mut Criterion) {
    let plan = segment_plan();
    let block = plan.route("segment.events").expect("routed");
    let opts = ValidateOptions::now();
    let msg = message(ORDER_COMPLETED.as_bytes());
    match block.process(&msg, &opts) {
        Processed::Deliver(e) => assert_eq!(e.items.len(), 3),
        other => panic!("benchmark input must map: {other:?}"),
    }
    // `process_wire` is what the pipeline calls: the request body straight from the mapping.
    c.bench_function("segment_order_completed_3_products", |b| {
        b.iter(|| match block.process_wire(black_box(&msg), &opts) {
            Processed::Deliver(w) => w.body,
            _ => Vec::new(),
        })
    });
    // The same event without a user agent: isolates the cost of UA parsing.
    let no_ua = ORDER_COMPLETED.replace("\"userAgent\"", "\"userAgentX\"");
    let msg_no_ua = message(no_ua.as_bytes());
    c.bench_function("segment_order_completed_3_products_no_user_agent", |b| {
        b.iter(|| match block.process_wire(black_box(&msg_no_ua), &opts) {
            Processed::Deliver(w) => w.body,
            _ => Vec::new(),
        })
    });
    // The owned event (`map`, `test` and the tests use it): the same work plus a copy of its text.
    c.bench_function("segment_order_completed_3_products_owned_event", |b| {
        b.iter(|| match block.process(black_box(&msg), &opts) {
            Processed::Deliver(e) => e.to_json_bytes(),
            _ => Vec::new(),
        })
    });
    let event = match block.process(&msg_no_ua, &opts) {
        Processed::Deliver(e) => e,
        other => panic!("{other:?}"),
    };
    c.bench_function("validate_only", |b| {
        b.iter(|| mcm_bridge::mcm::validate::validate(black_box(&event), &opts).is_ok())
    });
    c.bench_function("serialise_only", |b| {
        b.iter(|| black_box(&event).to_json_bytes())
    });
    c.bench_function("decode_projected", |b| {
        b.iter(|| {
            mapping::need::decode(black_box(Some(ORDER_COMPLETED.as_bytes())), block.need()).is_ok()
        })
    });
    c.bench_function("decode_only", |b| {
        b.iter(|| mapping::doc::decode(black_box(Some(ORDER_COMPLETED.as_bytes()))).is_ok())
    });
    let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
    c.bench_function("user_agent_parse_uncached", |b| {
        b.iter(|| mapping::useragent::parse_uncached(black_box(ua)))
    });
}

criterion_group!(benches, bench);

/// `MAPPING_PROFILE_EVENTS=N target/release/deps/mapping-…` maps the benchmark event N times
/// through `process_wire` and exits, without criterion: a fixed amount of work for
/// `valgrind --tool=callgrind --toggle-collect='*map_one*'` (instructions per event are
/// load-independent, unlike timings on the shared machine) or `perf record`.
fn main() {
    match std::env::var("MAPPING_PROFILE_EVENTS") {
        Ok(n) => profile(
            n.parse()
                .expect("MAPPING_PROFILE_EVENTS is a number of events"),
        ),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

fn profile(events: u64) {
    let plan = segment_plan();
    let block = plan.route("segment.events").expect("routed");
    let opts = ValidateOptions::now();
    let msg = message(ORDER_COMPLETED.as_bytes());
    // Outside the counted function: the user-agent rules are built (~90 ms, on a thread of
    // their own) and this thread's user-agent cache filled, as in a running bridge.
    assert!(mapping::useragent::warm_up());
    assert!(matches!(
        block.process_wire(&msg, &opts),
        Processed::Deliver(_)
    ));
    let mut bytes = 0;
    let start = std::time::Instant::now();
    for _ in 0..events {
        bytes += map_one(block, black_box(&msg), &opts);
    }
    let ns = start.elapsed().as_nanos() as f64 / events.max(1) as f64;
    println!("{events} events, {bytes} body bytes, {ns:.0} ns/event");
}

/// One event through `process_wire`, in a function of its own so that callgrind can count just
/// this (`--toggle-collect='*map_one*'`) whatever the compiler inlines.
#[inline(never)]
fn map_one(block: &TopicMapping, msg: &SourceMessage<'_>, opts: &ValidateOptions) -> usize {
    match block.process_wire(msg, opts) {
        Processed::Deliver(w) => w.body.len(),
        _ => 0,
    }
}
