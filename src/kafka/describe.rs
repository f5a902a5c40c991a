//! What Kafka says a principal may do, without doing it: librdkafka's DescribeCluster,
//! DescribeTopics and DescribeConsumerGroups with KIP-430's *authorized operations*, which
//! rust-rdkafka 0.39 does not wrap. `mcm-bridge doctor` uses them to check the rights the bridge
//! needs (READ on its group and topics, WRITE on the DLQ topic) without joining the group or
//! writing a record.
//!
//! Each call sends one request (Metadata or DescribeGroups/ConsumerGroupDescribe: read-only;
//! librdkafka sends these Metadata requests with `allow_auto_topic_creation=false`, so describing
//! a missing topic never creates it), waits on a queue of its own and copies the answer into
//! plain Rust values before the librdkafka event is freed. The authorized operations are the
//! broker's authorizer's own verdict for the connection's principal (every operation when the
//! cluster has no authorizer); `None` when the broker did not report them (brokers before 2.3, or
//! a Kafka-compatible server that leaves them out).
//!
//! The unsafe code is confined here; each block says why it is sound.
#![allow(unsafe_code)]

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaErrorCode;
use std::ffi::{c_char, CStr, CString};
use std::time::{Duration, Instant};

/// An ACL operation as KIP-430 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl Operation {
    /// librdkafka's `rd_kafka_AclOperation_t` value (KIP-430 bit numbers).
    fn of_code(code: u32) -> Option<Operation> {
        Some(match code {
            3 => Operation::Read,
            4 => Operation::Write,
            5 => Operation::Create,
            6 => Operation::Delete,
            7 => Operation::Alter,
            8 => Operation::Describe,
            9 => Operation::ClusterAction,
            10 => Operation::DescribeConfigs,
            11 => Operation::AlterConfigs,
            12 => Operation::IdempotentWrite,
            _ => return None,
        })
    }
}

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// DescribeCluster's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: Option<String>,
    pub controller: Option<Node>,
    pub nodes: Vec<Node>,
    /// What the principal may do on the cluster resource.
    pub operations: Option<Vec<Operation>>,
}

/// One topic of DescribeTopics' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    /// The topic's error (UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED …).
    pub error: Option<RDKafkaErrorCode>,
    pub partitions: usize,
    pub operations: Option<Vec<Operation>>,
}

/// DescribeConsumerGroups' answer for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    /// The group's error (GROUP_AUTHORIZATION_FAILED …) with librdkafka's words.
    pub error: Option<(RDKafkaErrorCode, String)>,
    /// Members right now (the bridge's running replicas, if any).
    pub members: usize,
    pub operations: Option<Vec<Operation>>,
}

/// Why a describe call has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescribeError {
    /// librdkafka refused to start the request (an invalid argument, out of memory).
    #[error("cannot send the {request} request: {detail}")]
    Request {
        request: &'static str,
        detail: String,
    },
    /// The request failed as a whole (`_TIMED_OUT` when no broker answered in time …).
    #[error("{request} failed: {code}: {detail}")]
    Failed {
        request: &'static str,
        code: RDKafkaErrorCode,
        detail: String,
    },
    /// No answer within the timeout (and librdkafka's own timeout did not fire either).
    #[error("{request}: no answer within {timeout:?}")]
    TimedOut {
        request: &'static str,
        timeout: Duration,
    },
    /// The caller stopped waiting (`give_up` said so: a refused login, say).
    #[error("{request}: abandoned")]
    Abandoned { request: &'static str },
}

/// How long past its own request timeout librdkafka is given to deliver the answer.
const ANSWER_SLACK: Duration = Duration::from_secs(2);
/// How often `give_up` is asked while waiting.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// A queue of our own for one request's answer.
struct Queue(*mut rd::rd_kafka_queue_t);

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new (non-NULL, checked) and destroyed once, here.
        // A request still in flight holds its own reference to the queue: librdkafka frees it
        // when both are done.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_AdminOptions_new (non-NULL, checked), destroyed once. The
        // request copied the options when it was enqueued.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

struct Event(*mut rd::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: a non-NULL event returned by rd_kafka_queue_poll, owned by us, destroyed once;
        // everything read from it was copied before.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}

/// Copies a C string librdkafka owns; `None` for NULL.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string alive for the duration of the call.
unsafe fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

/// Copies an authorized-operations array: `None` when it is NULL (not reported).
///
/// # Safety
/// `ops` is NULL or points at `count` values of `rd_kafka_AclOperation_t` alive for the call.
unsafe fn operations(
    ops: *const rd::rd_kafka_AclOperation_t,
    count: usize,
) -> Option<Vec<Operation>> {
    if ops.is_null() {
        return None;
    }
    // Read as the enum's `u32` representation, so a value this binding does not know (a later
    // librdkafka) is skipped instead of being an invalid enum value.
    let raw = ops.cast::<u32>();
    Some(
        (0..count)
            .filter_map(|i| Operation::of_code(*raw.add(i)))
            .collect(),
    )
}

/// Copies a node.
///
/// # Safety
/// `node` is NULL or a node alive for the duration of the call.
unsafe fn node(node: *const rd::rd_kafka_Node_t) -> Option<Node> {
    if node.is_null() {
        return None;
    }
    Some(Node {
        id: rd::rd_kafka_Node_id(node),
        host: text(rd::rd_kafka_Node_host(node)).unwrap_or_default(),
        port: rd::rd_kafka_Node_port(node),
    })
}

/// Sends one admin request with `include_authorized_operations` and waits for its answer:
/// `send` enqueues it (given the client, the options and the reply queue); `give_up` is asked
/// every [`POLL_SLICE`] and ends the wait early when it says so.
fn request<C: ClientContext>(
    client: &Client<C>,
    name: &'static str,
    op: rd::rd_kafka_admin_op_t,
    timeout: Duration,
    give_up: &mut dyn FnMut() -> bool,
    send: impl FnOnce(
        *mut rd::rd_kafka_t,
        *const rd::rd_kafka_AdminOptions_t,
        *mut rd::rd_kafka_queue_t,
    ),
) -> Result<Event, DescribeError> {
    let rk = client.native_ptr();
    let refused = |detail: String| DescribeError::Request {
        request: name,
        detail,
    };
    // SAFETY: `rk` is the live client handle borrowed for this call; a NULL result is checked.
    let options = Options(unsafe { rd::rd_kafka_AdminOptions_new(rk, op) });
    if options.0.is_null() {
        return Err(refused("cannot create admin options".into()));
    }
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let mut errstr = [0 as c_char; 512];
    // SAFETY: valid options; `errstr` is a writable buffer of the given size, NUL-terminated by
    // librdkafka on error.
    let err = unsafe {
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        )
    };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        // SAFETY: librdkafka wrote a NUL-terminated message into the buffer.
        let detail = unsafe { text(errstr.as_ptr()) }.unwrap_or_default();
        return Err(refused(detail));
    }
    // SAFETY: valid options; the returned error (if any) is ours to destroy.
    let error =
        unsafe { rd::rd_kafka_AdminOptions_set_include_authorized_operations(options.0, 1) };
    if !error.is_null() {
        // SAFETY: a non-NULL error we own: read, then destroyed once.
        let detail = unsafe {
            let d = text(rd::rd_kafka_error_string(error)).unwrap_or_default();
            rd::rd_kafka_error_destroy(error);
            d
        };
        return Err(refused(detail));
    }
    // SAFETY: `rk` is live; a NULL result is checked.
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk) });
    if queue.0.is_null() {
        return Err(refused("cannot create a reply queue".into()));
    }
    send(rk, options.0, queue.0);
    let deadline = Instant::now() + timeout + ANSWER_SLACK;
    loop {
        let slice = POLL_SLICE.min(deadline.saturating_duration_since(Instant::now()));
        let slice_ms = i32::try_from(slice.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: our live queue; the returned event (if any) is ours, wrapped to be destroyed.
        let ev = unsafe { rd::rd_kafka_queue_poll(queue.0, slice_ms) };
        if !ev.is_null() {
            let ev = Event(ev);
            // SAFETY: a live event; the string (if any) is copied before the event is freed.
            let (code, detail) = unsafe {
                (
                    rd::rd_kafka_event_error(ev.0),
                    text(rd::rd_kafka_event_error_string(ev.0)).unwrap_or_default(),
                )
            };
            if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                return Err(DescribeError::Failed {
                    request: name,
                    code: code.into(),
                    detail,
                });
            }
            return Ok(ev);
        }
        if Instant::now() >= deadline {
            return Err(DescribeError::TimedOut {
                request: name,
                timeout,
            });
        }
        if give_up() {
            return Err(DescribeError::Abandoned { request: name });
        }
    }
}

/// The cluster's brokers, controller and id, and what the principal may do on the cluster.
pub fn describe_cluster<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
    give_up: &mut dyn FnMut() -> bool,
) -> Result<ClusterDescription, DescribeError> {
    let name = "DescribeCluster";
    let ev = request(
        client,
        name,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
        timeout,
        give_up,
        // SAFETY: live handle, options and queue, as `request` guarantees.
        |rk, options, queue| unsafe { rd::rd_kafka_DescribeCluster(rk, options, queue) },
    )?;
    // SAFETY: `ev` is a live event of this request's type (checked: NULL otherwise); every
    // pointer read below belongs to it and is copied before it is dropped.
    unsafe {
        let res = rd::rd_kafka_event_DescribeCluster_result(ev.0);
        if res.is_null() {
            return Err(unexpected(name));
        }
        let mut count = 0usize;
        let nodes = rd::rd_kafka_DescribeCluster_result_nodes(res, &mut count);
        let nodes = (0..count)
            .filter_map(|i| node(*nodes.add(i)))
            .collect::<Vec<_>>();
        let mut ops_count = 0usize;
        let ops = rd::rd_kafka_DescribeCluster_result_authorized_operations(res, &mut ops_count);
        Ok(ClusterDescription {
            cluster_id: text(rd::rd_kafka_DescribeCluster_result_cluster_id(res)),
            controller: node(rd::rd_kafka_DescribeCluster_result_controller(res)),
            nodes,
            operations: operations(ops, ops_count),
        })
    }
}

/// Each of `topics` with its error, partition count and what the principal may do on it.
pub fn describe_topics<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
    timeout: Duration,
    give_up: &mut dyn FnMut() -> bool,
) -> Result<Vec<TopicDescription>, DescribeError> {
    let name = "DescribeTopics";
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let names = c_strings(name, topics)?;
    let mut pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    // SAFETY: `pointers` holds `len` valid C strings (alive in `names`); librdkafka copies them.
    let collection = unsafe {
        rd::rd_kafka_TopicCollection_of_topic_names(pointers.as_mut_ptr(), pointers.len())
    };
    if collection.is_null() {
        return Err(DescribeError::Request {
            request: name,
            detail: "cannot create a topic collection".into(),
        });
    }
    let answer = request(
        client,
        name,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
        timeout,
        give_up,
        // SAFETY: live handle, options and queue; `collection` is valid until destroyed below,
        // after librdkafka copied it into the request.
        |rk, options, queue| unsafe { rd::rd_kafka_DescribeTopics(rk, collection, options, queue) },
    );
    // SAFETY: created above, destroyed once, no longer used.
    unsafe { rd::rd_kafka_TopicCollection_destroy(collection) };
    let ev = answer?;
    // SAFETY: as in `describe_cluster`: every pointer belongs to the live event and is copied.
    unsafe {
        let res = rd::rd_kafka_event_DescribeTopics_result(ev.0);
        if res.is_null() {
            return Err(unexpected(name));
        }
        let mut count = 0usize;
        let descs = rd::rd_kafka_DescribeTopics_result_topics(res, &mut count);
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let d = *descs.add(i);
            if d.is_null() {
                continue;
            }
            let error = rd::rd_kafka_TopicDescription_error(d);
            let error = (!error.is_null())
                .then(|| RDKafkaErrorCode::from(rd::rd_kafka_error_code(error)))
                .filter(|c| *c != RDKafkaErrorCode::NoError);
            let mut partitions = 0usize;
            let _ = rd::rd_kafka_TopicDescription_partitions(d, &mut partitions);
            let mut ops_count = 0usize;
            let ops = rd::rd_kafka_TopicDescription_authorized_operations(d, &mut ops_count);
            out.push(TopicDescription {
                name: text(rd::rd_kafka_TopicDescription_name(d)).unwrap_or_default(),
                error,
                partitions,
                operations: operations(ops, ops_count),
            });
        }
        Ok(out)
    }
}

/// The consumer group `group`: its error, member count and what the principal may do on it.
/// Read-only (ConsumerGroupDescribe, or DescribeGroups for a classic group): nothing joins.
pub fn describe_group<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    timeout: Duration,
    give_up: &mut dyn FnMut() -> bool,
) -> Result<GroupDescription, DescribeError> {
    let name = "DescribeConsumerGroups";
    let names = c_strings(name, &[group.to_string()])?;
    let mut pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let ev = request(
        client,
        name,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
        timeout,
        give_up,
        // SAFETY: live handle, options and queue; `pointers` holds one valid C string (alive in
        // `names` for this call), which librdkafka copies.
        |rk, options, queue| unsafe {
            rd::rd_kafka_DescribeConsumerGroups(
                rk,
                pointers.as_mut_ptr(),
                pointers.len(),
                options,
                queue,
            )
        },
    )?;
    // SAFETY: as in `describe_cluster`: every pointer belongs to the live event and is copied.
    unsafe {
        let res = rd::rd_kafka_event_DescribeConsumerGroups_result(ev.0);
        if res.is_null() {
            return Err(unexpected(name));
        }
        let mut count = 0usize;
        let groups = rd::rd_kafka_DescribeConsumerGroups_result_groups(res, &mut count);
        for i in 0..count {
            let g = *groups.add(i);
            if g.is_null() {
                continue;
            }
            if text(rd::rd_kafka_ConsumerGroupDescription_group_id(g)).as_deref() != Some(group) {
                continue;
            }
            let error = rd::rd_kafka_ConsumerGroupDescription_error(g);
            let error = (!error.is_null())
                .then(|| {
                    (
                        RDKafkaErrorCode::from(rd::rd_kafka_error_code(error)),
                        text(rd::rd_kafka_error_string(error)).unwrap_or_default(),
                    )
                })
                .filter(|(c, _)| *c != RDKafkaErrorCode::NoError);
            let mut ops_count = 0usize;
            let ops =
                rd::rd_kafka_ConsumerGroupDescription_authorized_operations(g, &mut ops_count);
            return Ok(GroupDescription {
                group: group.to_string(),
                error,
                members: rd::rd_kafka_ConsumerGroupDescription_member_count(g),
                operations: operations(ops, ops_count),
            });
        }
        Err(unexpected(name))
    }
}

fn c_strings(request: &'static str, names: &[String]) -> Result<Vec<CString>, DescribeError> {
    names
        .iter()
        .map(|n| {
            CString::new(n.as_str()).map_err(|_| DescribeError::Request {
                request,
                detail: format!("{n:?} contains a NUL byte"),
            })
        })
        .collect()
}

fn unexpected(request: &'static str) -> DescribeError {
    DescribeError::Request {
        request,
        detail: "librdkafka answered with an event of another type".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_codes_are_kip_430_bit_numbers() {
        assert_eq!(Operation::of_code(3), Some(Operation::Read));
        assert_eq!(Operation::of_code(4), Some(Operation::Write));
        assert_eq!(Operation::of_code(8), Some(Operation::Describe));
        assert_eq!(Operation::of_code(12), Some(Operation::IdempotentWrite));
        for unknown in [0, 1, 2, 13, 99] {
            assert_eq!(Operation::of_code(unknown), None);
        }
        assert_eq!(
            rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_WRITE as u32,
            4,
            "the binding's numbering"
        );
    }
}
