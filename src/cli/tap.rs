//! `mcm-bridge tap`: watch a running bridge judge live messages — each source record next to the
//! MCM event it became, or the reason it was rejected — from the bridge's tap listener
//! (`observe.tap`, see `observe::tap`). As JSON lines (`--format json`) or two columns.
//!
//! Exit 0 when the stream ends (the limit reached or the bridge stopped), 1 when the bridge
//! cannot be reached or refuses, 2 for an invalid configuration.

use crate::observe::tap_server::TapQuery;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TapFormat {
    /// The source record on the left, the event (or the reject) on the right.
    Columns,
    /// One JSON object per line, as the bridge sends them.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct TapArgs {
    /// The running bridge's configuration file (for `observe.tap_listen`).
    #[arg(long, short, default_value = "mcm-bridge.yaml")]
    pub config: PathBuf,
    /// The tap listener's address instead of the configuration's, e.g. `127.0.0.1:9465`.
    #[arg(long)]
    pub address: Option<SocketAddr>,
    /// Only messages of this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// Stop after this many messages.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Only messages that were rejected (the ones going to the DLQ).
    #[arg(long)]
    pub rejected_only: bool,
    /// Show this share of the matching messages, in (0, 1].
    #[arg(long)]
    pub sample: Option<f64>,
    #[arg(long, value_enum, default_value = "columns")]
    pub format: TapFormat,
    /// Width of the two-column view (default: $COLUMNS, else 160).
    #[arg(long)]
    pub width: Option<usize>,
}

pub fn run(args: &TapArgs) -> ExitCode {
    let addr = match args.address {
        Some(a) => a,
        None => {
            // Only the observe section: no API key or Kafka password needed to watch.
            let observe = match crate::config::load_observe(&args.config) {
                Ok(o) => o,
                Err(errors) => {
                    eprintln!("{}: {} error(s)", args.config.display(), errors.0.len());
                    for e in &errors.0 {
                        eprintln!("  {e}");
                    }
                    return ExitCode::from(super::validate::EXIT_INVALID_CONFIG);
                }
            };
            match observe.tap {
                Some(a) => a,
                None => {
                    eprintln!(
                        "{}: observe.tap is off: set `observe.tap: true` (served on observe.tap_listen, 127.0.0.1:9465 by default) and restart the bridge",
                        args.config.display()
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let url = tap_url(addr, args);
    let width = args
        .width
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .unwrap_or(160)
        .max(40);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(stream(&url, args.format, width)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tap {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The URL of the tap stream: a wildcard listen address is reached on loopback.
fn tap_url(addr: SocketAddr, args: &TapArgs) -> String {
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(
            if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            },
            addr.port(),
        )
    } else {
        addr
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let q = TapQuery {
        topic: args.topic.clone(),
        limit: args.limit,
        rejected_only: args.rejected_only,
        sample: args.sample,
    };
    if let Some(t) = &q.topic {
        query.append_pair("topic", t);
    }
    if let Some(l) = q.limit {
        query.append_pair("limit", &l.to_string());
    }
    if q.rejected_only {
        query.append_pair("rejected_only", "true");
    }
    if let Some(s) = q.sample {
        query.append_pair("sample", &s.to_string());
    }
    format!("http://{host}/tap?{}", query.finish())
}

async fn stream(url: &str, format: TapFormat, width: usize) -> Result<(), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let resp = client
        .get(uri)
        .await
        .map_err(|e| format!("cannot reach the bridge's tap listener ({e}): is the bridge running with observe.tap: true?"))?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let text = body
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        return Err(format!("the bridge answered {status}: {text}"));
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut out = std::io::stdout().lock();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the stream broke: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue; // a keepalive
            }
            let text = match format {
                TapFormat::Json => String::from_utf8_lossy(&line).into_owned(),
                TapFormat::Columns => match serde_json::from_slice::<Value>(&line) {
                    Ok(v) => render_columns(&v, width),
                    Err(_) => String::from_utf8_lossy(&line).into_owned(),
                },
            };
            // A closed pipe (`| head`) ends the watch quietly.
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One tap line as a header and two columns: the source record and what it became.
pub fn render_columns(line: &Value, width: usize) -> String {
    if let Some(n) = line.get("missed") {
        return format!("… {n} messages not shown: the tap fell behind\n");
    }
    let text = |k: &str| line.get(k).and_then(Value::as_str).unwrap_or("");
    let mut head = format!(
        "── {}[{}]@{}",
        text("topic"),
        line.get("partition").unwrap_or(&Value::Null),
        line.get("offset").unwrap_or(&Value::Null)
    );
    if let Some(k) = line.get("key").and_then(Value::as_str) {
        let _ = write!(head, " key={k}");
    }
    let right: Vec<String> = match text("outcome") {
        "deliver" => {
            let event = line.get("event").unwrap_or(&Value::Null);
            let _ = write!(
                head,
                " → {}",
                event
                    .get("event_type")
                    .and_then(Value::as_str)
                    .unwrap_or("event")
            );
            pretty(event)
        }
        "filtered" => {
            let _ = write!(head, " → filtered ({})", text("reason"));
            vec![format!("filtered: {}", text("reason"))]
        }
        _ => {
            let _ = write!(head, " → REJECT {}/{}", text("class"), text("reason"));
            let mut r = vec![format!("REJECT {} {}", text("class"), text("reason"))];
            r.extend(wrap(text("detail"), width / 2 - 2));
            r
        }
    };
    let left = pretty(line.get("source").unwrap_or(&Value::Null));
    let half = width / 2 - 2;
    let mut out = format!(
        "{head} {}\n",
        "─".repeat(width.saturating_sub(head.chars().count() + 1))
    );
    for i in 0..left.len().max(right.len()) {
        let l = left.get(i).map_or("", String::as_str);
        let r = right.get(i).map_or("", String::as_str);
        let _ = writeln!(out, "{} │ {}", fit(l, half), cut(r, half));
    }
    out
}

fn pretty(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => wrap(s, 76),
        other => serde_json::to_string_pretty(other)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
    }
}

/// `s` cut to `n` characters, a cut marked with `…`.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
    c.push('…');
    c
}

/// [`cut`] and padded to exactly `n` characters.
fn fit(s: &str, n: usize) -> String {
    let c = cut(s, n);
    let pad = n.saturating_sub(c.chars().count());
    format!("{c}{}", " ".repeat(pad))
}

fn wrap(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_delivered_message_shows_the_source_left_and_the_event_right() {
        let line = json!({
            "topic": "shop", "partition": 1, "offset": 42, "key": "k",
            "source": {"id": "o-1", "email": "a@x"},
            "outcome": "deliver",
            "event": {"id": "o-1", "event_type": "PURCHASE", "user_id": "9f86d0"}
        });
        let out = render_columns(&line, 80);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("── shop[1]@42 key=k → PURCHASE"),
            "{out}"
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{out}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("\"email\": \"a@x\"")
                    && l.contains("\"event_type\": \"PURCHASE\"")),
            "{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("│   \"user_id\": \"9f86d0\"")),
            "{out}"
        );
    }

    #[test]
    fn a_reject_shows_its_class_reason_and_detail_and_a_gap_is_announced() {
        let line = json!({
            "topic": "shop", "partition": 0, "offset": 7, "source": "{not json",
            "outcome": "reject", "class": "decode", "reason": "invalid_json",
            "detail": "expected value at line 1"
        });
        let out = render_columns(&line, 100);
        assert!(
            out.starts_with("── shop[0]@7 → REJECT decode/invalid_json"),
            "{out}"
        );
        assert!(
            out.contains("{not json") && out.contains("expected value at line 1"),
            "{out}"
        );
        assert_eq!(
            render_columns(&json!({"missed": 12}), 100),
            "… 12 messages not shown: the tap fell behind\n"
        );
    }

    #[test]
    fn the_url_carries_the_filter_and_a_wildcard_address_is_reached_on_loopback() {
        let args = TapArgs {
            config: PathBuf::from("x.yaml"),
            address: None,
            topic: Some("shop orders".into()),
            limit: Some(5),
            rejected_only: true,
            sample: Some(0.5),
            format: TapFormat::Json,
            width: None,
        };
        let addr: SocketAddr = "0.0.0.0:9465".parse().expect("addr");
        assert_eq!(
            tap_url(addr, &args),
            "http://127.0.0.1:9465/tap?topic=shop+orders&limit=5&rejected_only=true&sample=0.5"
        );
    }
}
