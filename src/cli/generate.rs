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
    /// `json`, or `avro` in the schema registry framing (shop shape only): the shop schemas are
    /// registered under `<topic>-value` at `--schema-registry`, as a producer's serializer would.
    #[arg(long, default_value = "json", value_parser = ["json", "avro"])]
    pub format: String,
    /// The schema registry for `--format avro`.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub schema_registry: Option<String>,
}

/// Registers the shop schemas under the topics' subjects and returns their writers.
async fn register_shop_schemas(
    url: &str,
    events_topic: &str,
    orders_topic: &str,
) -> Result<crate::generator::produce::ShopAvro, String> {
    use crate::config::schema_registry::{RegistryAuth, SchemaRegistryConfig};
    use crate::generator::avro::{AvroWriter, SHOP_EVENTS_AVSC, SHOP_ORDERS_AVSC};
    let cfg = SchemaRegistryConfig {
        urls: vec![url.to_string()],
        auth: RegistryAuth::None,
        tls: Default::default(),
        timeout: std::time::Duration::from_secs(10),
        cache_size: 1,
        max_backoff: std::time::Duration::from_secs(1),
    };
    let client = crate::schema::RegistryClient::new(&cfg).map_err(|e| e.to_string())?;
    let writer = async |topic: &str, text: &str| {
        let id = client
            .register(&format!("{topic}-value"), text)
            .await
            .map_err(|e| e.to_string())?;
        AvroWriter::new(text, id)
    };
    Ok(crate::generator::produce::ShopAvro {
        events: writer(events_topic, SHOP_EVENTS_AVSC).await?,
        orders: writer(orders_topic, SHOP_ORDERS_AVSC).await?,
    })
}

pub fn run(args: &GenerateArgs) -> ExitCode {
    if !(0.0..=1.0).contains(&args.bad_share) {
        eprintln!("--bad-share must be between 0 and 1");
        return ExitCode::from(2);
    }
    let shape = Shape::parse(&args.shape).unwrap_or(Shape::Shop);
    if args.format == "avro" && (shape != Shape::Shop || args.schema_registry.is_none()) {
        eprintln!("--format avro writes the shop shape and needs --schema-registry URL");
        return ExitCode::from(2);
    }
    let default_topic = match shape {
        Shape::Shop => "shop.events",
        Shape::Segment => "segment.events",
        Shape::Ga4 => "ga4.events",
    };
    let mut plan = ProducePlan {
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
        avro: None,
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
        if let (Some(url), "avro") = (&args.schema_registry, args.format.as_str()) {
            match register_shop_schemas(url, &plan.events_topic, &plan.orders_topic).await {
                Ok(avro) => plan.avro = Some(avro),
                Err(e) => {
                    eprintln!("cannot register the shop schemas at {url}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
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
