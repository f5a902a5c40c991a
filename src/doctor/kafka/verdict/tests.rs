//! The verdicts on hand-made answers: every branch a broker can take the doctor to.

use super::*;
use crate::doctor::report::Status;
use crate::kafka::describe::Node;

const WHO: Who<'static> = Who {
    principal: Some("User:bridge"),
    group: "g",
    dlq_topic: "g.dlq",
};

fn topic_desc(
    name: &str,
    error: Option<RDKafkaErrorCode>,
    ops: Option<Vec<Operation>>,
) -> TopicDescription {
    TopicDescription {
        name: name.into(),
        error,
        partitions: 3,
        operations: ops,
    }
}

fn conn(
    answer: Result<ClusterDescription, DescribeError>,
    refusal: Option<Refusal>,
) -> Connection<'static> {
    Connection {
        bootstrap: "b:9092",
        security: "SASL_SSL".into(),
        answer,
        refusal,
        last_error: Some("Connect to ipv4#10.0.0.1:9092 failed: Connection refused".into()),
        timeout: Duration::from_secs(7),
    }
}

#[test]
fn a_described_cluster_passes_with_its_brokers_and_controller() {
    let d = ClusterDescription {
        cluster_id: Some("abc".into()),
        controller: Some(Node {
            id: 2,
            host: "k2".into(),
            port: 9092,
        }),
        nodes: vec![
            Node {
                id: 1,
                host: "k1".into(),
                port: 9092,
            },
            Node {
                id: 2,
                host: "k2".into(),
                port: 9092,
            },
        ],
        operations: None,
    };
    let (checks, go_on) = connection(conn(Ok(d), None), &WHO);
    assert!(go_on);
    assert_eq!(
        checks[0].line(),
        "PASS  kafka.brokers b:9092: 2 brokers reachable, controller 2 (k2:9092), cluster id abc"
    );
    assert_eq!(
        checks[1].line(),
        "PASS  kafka.auth User:bridge: accepted (SASL_SSL)"
    );
}

#[test]
fn a_refused_login_fails_auth_with_what_to_check() {
    let refusal = Refusal::Authentication {
        detail: "SASL authentication error: Authentication failed".into(),
    };
    let abandoned = Err(DescribeError::Abandoned {
        request: "DescribeCluster",
    });
    let (checks, go_on) = connection(conn(abandoned, Some(refusal)), &WHO);
    assert!(!go_on);
    assert_eq!(checks[1].status, Status::Fail);
    assert!(
        checks[1]
            .detail
            .starts_with("Kafka rejected the bridge's credentials as User:bridge"),
        "{}",
        checks[1].detail
    );
    assert!(checks[1].detail.contains("check kafka.sasl"));
}

#[test]
fn no_answer_is_unreachable_after_the_timeout_with_the_client_error() {
    let timed_out = Err(DescribeError::Failed {
        request: "DescribeCluster",
        code: RDKafkaErrorCode::OperationTimedOut,
        detail: "Failed while waiting for controller".into(),
    });
    let (checks, go_on) = connection(conn(timed_out, None), &WHO);
    assert!(!go_on);
    assert_eq!(checks[0].status, Status::Fail);
    assert_eq!(
        checks[0].detail,
        "unreachable after 7s: Connect to ipv4#10.0.0.1:9092 failed: Connection refused"
    );
    assert!(checks[0]
        .fix
        .as_deref()
        .is_some_and(|f| f.contains("kafka.bootstrap_servers")));
    assert_eq!(checks[1].status, Status::Skip);
}

#[test]
fn topics_exist_with_read_or_fail_naming_the_topic_and_the_grant() {
    let ok = topic(
        &topic_desc(
            "orders",
            None,
            Some(vec![Operation::Read, Operation::Describe]),
        ),
        &WHO,
    );
    assert_eq!(
        ok.line(),
        "PASS  kafka.topic orders: 3 partitions, READ granted"
    );
    let missing = topic(
        &topic_desc(
            "orderz",
            Some(RDKafkaErrorCode::UnknownTopicOrPartition),
            None,
        ),
        &WHO,
    );
    assert_eq!(missing.status, Status::Fail);
    assert!(
        missing
            .line()
            .contains("kafka.topic orderz: does not exist"),
        "{}",
        missing.line()
    );
    let no_read = topic(
        &topic_desc("orders", None, Some(vec![Operation::Describe])),
        &WHO,
    );
    assert_eq!(no_read.status, Status::Fail);
    assert!(
        no_read
            .detail
            .contains("Kafka denied READ on topic \"orders\""),
        "{}",
        no_read.detail
    );
    assert!(
        no_read.detail.contains("it may DESCRIBE"),
        "{}",
        no_read.detail
    );
    assert!(no_read.detail.ends_with(
        "kafka-acls --add --allow-principal User:bridge --operation Read --topic orders"
    ));
    let unseen = topic(
        &topic_desc(
            "orders",
            Some(RDKafkaErrorCode::TopicAuthorizationFailed),
            None,
        ),
        &WHO,
    );
    assert!(
        unseen.detail.contains("TOPIC_AUTHORIZATION_FAILED"),
        "{}",
        unseen.detail
    );
    assert!(unseen.detail.ends_with("--operation Read --topic orders"));
    let unknown_rights = topic(&topic_desc("orders", None, None), &WHO);
    assert_eq!(unknown_rights.status, Status::Pass);
    assert!(unknown_rights.detail.contains("READ not checked"));
}

#[test]
fn a_pattern_needs_a_visible_topic_and_read_on_each() {
    assert_eq!(pattern("^shop", &[], &WHO).status, Status::Fail);
    let read = Some(vec![Operation::Read]);
    let two = [
        topic_desc("shop.a", None, read.clone()),
        topic_desc("shop.b", None, read),
    ];
    assert_eq!(
        pattern("^shop", &two, &WHO).line(),
        "PASS  kafka.pattern ^shop: matches 2 topics: shop.a (3), shop.b (3); READ granted on each"
    );
    let mixed = [
        topic_desc("shop.a", None, Some(vec![Operation::Read])),
        topic_desc("shop.b", None, Some(vec![Operation::Describe])),
    ];
    let c = pattern("^shop", &mixed, &WHO);
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail.ends_with("--operation Read --topic shop.b"),
        "{}",
        c.detail
    );
}

#[test]
fn the_group_needs_read_which_describing_it_reports() {
    let desc = |error, ops| GroupDescription {
        group: "g".into(),
        error,
        members: 2,
        operations: ops,
    };
    let ok = group(
        Ok(desc(None, Some(vec![Operation::Read, Operation::Describe]))),
        &WHO,
    );
    assert_eq!(
        ok.line(),
        "PASS  kafka.group g: READ granted (described, not joined; 2 members now)"
    );
    let describe_only = group(Ok(desc(None, Some(vec![Operation::Describe]))), &WHO);
    assert_eq!(describe_only.status, Status::Fail);
    assert!(
        describe_only
            .detail
            .starts_with("Kafka denied READ on group \"g\" (the consumer group)"),
        "{}",
        describe_only.detail
    );
    assert!(describe_only.detail.ends_with("--operation Read --group g"));
    let refused = group(
        Ok(desc(
            Some((
                RDKafkaErrorCode::GroupAuthorizationFailed,
                "Group authorization failed".into(),
            )),
            None,
        )),
        &WHO,
    );
    assert!(
        refused.detail.contains("GROUP_AUTHORIZATION_FAILED"),
        "{}",
        refused.detail
    );
    assert!(refused.detail.ends_with("--operation Read --group g"));
    let whole_request = group(
        Err(DescribeError::Failed {
            request: "DescribeConsumerGroups",
            code: RDKafkaErrorCode::GroupAuthorizationFailed,
            detail: "x".into(),
        }),
        &WHO,
    );
    assert!(whole_request.detail.ends_with("--operation Read --group g"));
    assert_eq!(group(Ok(desc(None, None)), &WHO).status, Status::Warn);
}

#[test]
fn the_dlq_needs_write_and_a_missing_one_says_whether_kafka_would_create_it() {
    let ok = dlq(
        &topic_desc("g.dlq", None, Some(vec![Operation::Write])),
        None,
        &WHO,
    );
    assert_eq!(ok.status, Status::Pass);
    assert!(ok.detail.contains("nothing was written"));
    let read_only = dlq(
        &topic_desc("g.dlq", None, Some(vec![Operation::Describe])),
        None,
        &WHO,
    );
    assert_eq!(read_only.status, Status::Fail);
    assert!(
        read_only
            .detail
            .contains("Kafka denied WRITE on topic \"g.dlq\" (the dead-letter topic)"),
        "{}",
        read_only.detail
    );
    assert!(read_only
        .detail
        .ends_with("--operation Write --topic g.dlq"));
    let unseen = dlq(
        &topic_desc(
            "g.dlq",
            Some(RDKafkaErrorCode::TopicAuthorizationFailed),
            None,
        ),
        None,
        &WHO,
    );
    assert!(
        unseen.detail.ends_with("--operation Write --topic g.dlq"),
        "{}",
        unseen.detail
    );

    let missing = topic_desc(
        "g.dlq",
        Some(RDKafkaErrorCode::UnknownTopicOrPartition),
        None,
    );
    let auto = |broker, producer| AutoCreate {
        broker,
        producer,
        cluster_create: true,
    };
    assert_eq!(
        dlq(&missing, Some(&auto(Ok(true), true)), &WHO).status,
        Status::Warn
    );
    let off = dlq(&missing, Some(&auto(Ok(false), true)), &WHO);
    assert_eq!(off.status, Status::Fail);
    assert!(
        off.detail.contains("auto.create.topics.enable=false"),
        "{}",
        off.detail
    );
    assert!(off
        .fix
        .as_deref()
        .is_some_and(|f| f.contains("--create --topic g.dlq")));
    assert_eq!(
        dlq(&missing, Some(&auto(Ok(true), false)), &WHO).status,
        Status::Fail
    );
    let unknown = dlq(
        &missing,
        Some(&auto(Err(SettingUnknown::Empty), true)),
        &WHO,
    );
    assert_eq!(unknown.status, Status::Fail);
    assert!(
        unknown.detail.contains("unknown (cannot read auto.create.topics.enable: the broker answered nothing, as it does without DESCRIBE_CONFIGS on the cluster)"),
        "{}",
        unknown.detail
    );
    assert!(dlq(&topic_desc("g.dlq", None, None), None, &WHO).status == Status::Warn);
}
