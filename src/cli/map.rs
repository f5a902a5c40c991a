//! `mcm-bridge map`: a dry run of the mapping for one message read from stdin — prints the MCM
//! event that would be sent (exit 0), or why not (exit 1). Config errors exit 2, like `validate`.
//! The message is judged by the pipeline's own stage ([`crate::pipeline::process`]).

use crate::mapping::{Processed, SourceMessage};
use crate::mcm::validate::now_ms;
use crate::pipeline::process;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `mcm-bridge map`.
pub struct MapArgs<'a> {
    pub config: &'a Path,
    pub topic: &'a str,
    pub key: Option<&'a str>,
    /// `name=value` pairs.
    pub headers: &'a [String],
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    /// The schema a schema'd block's JSON message is encoded with: a file, or a registry
    /// subject and version.
    pub schema_file: Option<&'a Path>,
    pub schema_subject: Option<(&'a str, &'a str)>,
    /// The Protobuf message type of the JSON message.
    pub proto_message: Option<&'a str>,
}

pub fn run(args: &MapArgs<'_>) -> ExitCode {
    let (cfg, plan) = match super::load_checked(args.config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut headers = Vec::new();
    for h in args.headers {
        match h.split_once('=') {
            Some((k, v)) => headers.push((k, Some(v.as_bytes()))),
            None => {
                eprintln!("--header {h:?}: expected name=value");
                return ExitCode::from(2);
            }
        }
    }
    let mut payload = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut payload) {
        eprintln!("cannot read the message from stdin: {e}");
        return ExitCode::from(2);
    }
    // A schema'd block's message is given as JSON and encoded as its topic carries values
    // (the block's own schema file and framing, or a registry serializer's framing), so the
    // pipeline's own decode reads it (docs/formats.md).
    let mut book = crate::schema::SchemaBook::new(1);
    if let Some(block) = plan.route(args.topic).filter(|b| b.format.is_schemad()) {
        let format = block.format;
        let schema = match (args.schema_file, args.schema_subject) {
            (Some(file), _) => match std::fs::read_to_string(file) {
                Ok(text) => Some(crate::schema::local::InputSchema::Text(text)),
                Err(e) => {
                    eprintln!("cannot read --schema-file: {e}");
                    return ExitCode::from(2);
                }
            },
            (None, Some((subject, version))) => {
                match super::registered_schema(&cfg, subject, version) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        eprintln!("--schema-subject {subject:?}: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            (None, None) => None,
        };
        match crate::schema::local::encode_for(block, &payload, schema.as_ref(), args.proto_message)
        {
            Ok((framed, known)) => {
                payload = framed;
                book = known;
            }
            Err(e) => {
                eprintln!(
                    "topic {:?} is `format: {}`: {e}",
                    args.topic,
                    format.as_str()
                );
                return ExitCode::from(2);
            }
        }
    }
    let msg = SourceMessage {
        topic: args.topic,
        partition: args.partition,
        offset: args.offset,
        key: args.key.map(str::as_bytes),
        headers: &headers,
        timestamp_ms: args.timestamp_ms.or_else(|| Some(now_ms())),
        payload: Some(&payload),
    };
    let (out, rule) =
        match process::process_named(&plan, &msg, &process::validate_options(&cfg), &book) {
            Ok(named) => named,
            Err(_) => {
                eprintln!(
                    "no block in {} maps topic {:?} (subscriptions: {})",
                    args.config.display(),
                    args.topic,
                    plan.subscriptions().join(", ")
                );
                return ExitCode::from(1);
            }
        };
    if let Some(rule) = rule {
        eprintln!("rule: {rule}");
    }
    match out {
        Processed::Deliver(e) => match serde_json::to_string_pretty(&e) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("the event did not serialise: {err}");
                ExitCode::from(1)
            }
        },
        Processed::Filtered { reason } => {
            eprintln!("filtered ({reason}): no rule matched and the block says on_no_match: skip; nothing would be sent");
            ExitCode::SUCCESS
        }
        Processed::Reject {
            class,
            reason,
            detail,
            ..
        } => {
            eprintln!("rejected ({} error {reason}): {detail}", class.as_str());
            eprintln!("the message would go to the dead-letter topic");
            ExitCode::from(1)
        }
    }
}
