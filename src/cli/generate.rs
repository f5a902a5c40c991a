//! `mcm-bridge generate`: realistic shop traffic into Kafka (for the compose stack, load tests and
//! trying a mapping against a live topic).

use crate::generator::others::Shape;
use crate::generator::produce::{produce, ProduceCounts, ProducePlan};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic for page views, product views, cart and wishlist adds, searches (default:
    /// shop.events, segment.events or ga4.events by shape).
    #[arg(long)]
    pub topic: Option<String>,
    /// Topic for orders.
    #[arg(long, default_value = "shop.orders")]
    pub orders_topic: String,
    /// Messages per second (0 = as fast as possible).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Stop after this many messages (0 = run until interrupted).
    #[arg(long, default_value_t = 0)]
    pub events: u64,
    /// Event shape: the "shop service" (deploy/examples/mcm-bridge.yaml), Segment spec
    /// (segment.yaml) or GA4 (ga4.yaml). Segment and GA4 traffic goes to one topic.
    #[arg(long, default_value = "shop", value_parser = ["shop", "segment", "ga4"])]
    pub shape: String,
    /// Fraction of deliberately broken messages (they end in the DLQ).
    #[arg(long, default_value_t = 0.01)]
    pub bad_share: f64,
    /// Random seed (the same seed gives the same traffic).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: &GenerateArgs) -> ExitCode {
    if !(0.0..=1.0).contains(&args.bad_share) {
        eprintln!("--bad-share must be between 0 and 1");
        return ExitCode::from(2);
    }
    let shape = Shape::parse(&args.shape).unwrap_or(Shape::Shop);
    let default_topic = match shape {
        Shape::Shop => "shop.events",
        Shape::Segment => "segment.events",
        Shape::Ga4 => "ga4.events",
    };
    let plan = ProducePlan {
        bootstrap: args.brokers.clone(),
        events_topic: args
            .topic
            .clone()
            .unwrap_or_else(|| default_topic.to_string()),
        orders_topic: args.orders_topic.clone(),
        rate: args.rate,
        limit: (args.events > 0).then_some(args.events),
        seed: args.seed,
        bad_share: args.bad_share,
        shape,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let stop = CancellationToken::new();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                super::shutdown_signal().await;
                stop.cancel();
            });
        }
        let counts = ProduceCounts::default();
        let result = produce(&plan, &counts, &stop).await;
        eprintln!(
            "produced {} messages ({} deliverable, {} filtered by the example mapping, {} deliberately bad)",
            ProduceCounts::get(&counts.produced),
            ProduceCounts::get(&counts.expect_deliver),
            ProduceCounts::get(&counts.expect_filter),
            ProduceCounts::get(&counts.expect_dead_letter),
        );
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("producing failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
