use super::*;
use crate::processor::testing::{self, request, responded, Fixture};
use ringmq_proto::code::RequestCode;

fn pull_request(topic: &str, queue_offset: i64, sys_flag: i32) -> RemotingCommand {
    let offset = queue_offset.to_string();
    let flag = sys_flag.to_string();
    request(
        RequestCode::PullMessage,
        &[
            ("consumerGroup", "g"),
            ("topic", topic),
            ("queueId", "0"),
            ("queueOffset", &offset),
            ("maxMsgNums", "32"),
            ("sysFlag", &flag),
            ("commitOffset", "5"),
            ("suspendTimeoutMillis", "15000"),
            ("subscription", "*"),
            ("subVersion", "0"),
        ],
        b"",
    )
}

fn context<'a>(fx: &'a Fixture, view: &'a BrokerView) -> PullContext<'a> {
    PullContext {
        store: &fx.store,
        view,
        offsets: &fx.offsets,
        config: &fx.config,
        counters: &fx.counters,
        filters: &fx.filters,
        stopping: false,
    }
}

#[test]
fn subscription_group_settings_are_enforced_as_java_does() {
    use ringmq_proto::body::SubscriptionGroupConfig;
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        fx.put("T", 0, b"one", "").await;
        let flags = PULL_FLAG_SUBSCRIPTION;
        let mut view = (*fx.view()).clone();
        let pull = |view: BrokerView| {
            let fx = &fx;
            async move {
                let ctx = context(fx, &view);
                let request = pull_request("T", 0, flags);
                responded(pull_message(&ctx, &request).await)
            }
        };
        // consumeEnable=false: NO_PERMISSION, Java's remark.
        let mut group = SubscriptionGroupConfig::new("g");
        group.consume_enable = false;
        view.groups.insert("g".into(), group.clone());
        let response = pull(view.clone()).await;
        assert_eq!(response.code, ResponseCode::NoPermission.code());
        assert_eq!(
            response.remark.as_deref(),
            Some("subscription group no permission, g")
        );
        // brokerId / whichBrokerWhenConsumeSlowly: suggested only with slaveReadEnable.
        group.consume_enable = true;
        group.broker_id = 3;
        view.groups.insert("g".into(), group);
        let response = pull(view.clone()).await;
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(response.ext_fields.get("suggestWhichBrokerId"), Some("0"));
        // An unknown group without auto-creation: SUBSCRIPTION_GROUP_NOT_EXIST.
        view.groups.remove("g");
        let mut strict = fx.config.clone();
        strict.auto_create_subscription_group = false;
        let ctx = PullContext {
            config: &strict,
            ..context(&fx, &view)
        };
        let response = responded(pull_message(&ctx, &pull_request("T", 0, flags)).await);
        assert_eq!(
            response.code,
            ResponseCode::SubscriptionGroupNotExist.code()
        );
        assert!(response
            .remark
            .unwrap()
            .starts_with("subscription group [g] does not exist"));
    });
}

#[test]
fn a_broadcasting_group_without_consume_broadcast_enable_is_refused() {
    use ringmq_proto::body::{SubscriptionData, SubscriptionGroupConfig};
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        let mut view = (*fx.view()).clone();
        let mut group = SubscriptionGroupConfig::new("g");
        group.consume_broadcast_enable = false;
        view.groups.insert("g".into(), group);
        let subscription = SubscriptionData {
            topic: "T".into(),
            sub_string: "*".into(),
            ..SubscriptionData::default()
        };
        view.subscriptions
            .insert("g".into(), [("T".to_string(), subscription)].into());
        let ctx = context(&fx, &view);
        let clustering = responded(pull_message(&ctx, &pull_request("T", 0, 0)).await);
        assert_ne!(clustering.code, ResponseCode::NoPermission.code());
        view.broadcasting.insert("g".into());
        let ctx = context(&fx, &view);
        let response = responded(pull_message(&ctx, &pull_request("T", 0, 0)).await);
        assert_eq!(response.code, ResponseCode::NoPermission.code());
        assert_eq!(
            response.remark.as_deref(),
            Some("the consumer group[g] can not consume by broadcast way")
        );
    });
}

#[test]
fn a_pull_returns_what_is_stored_and_commits_the_offset_it_carries() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        for body in [b"one".as_slice(), b"two"] {
            fx.put("T", 0, body, "").await;
        }
        let view = fx.view();
        let flags = PULL_FLAG_SUBSCRIPTION | PULL_FLAG_COMMIT_OFFSET;
        let outcome = pull_message(&context(&fx, &view), &pull_request("T", 0, flags)).await;
        let response = responded(outcome);
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(response.ext_fields.get("nextBeginOffset"), Some("2"));
        assert_eq!(response.ext_fields.get("maxOffset"), Some("2"));
        assert!(!response.body.is_empty());
        assert_eq!(fx.counters.messages_got.get(), 2);
        assert_eq!(fx.offsets.borrow().query("g", "T", 0), Some(5));
    });
}

/// A pull asking for 100 gets 32 by default, as from a Java broker, and up to
/// `maxTransferCountOnMessageInMemory` (or the byte bound) when configured.
#[test]
fn the_transfer_limits_bound_what_a_pull_returns() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        for _ in 0..100 {
            fx.put("T", 0, &[7u8; 100], "").await;
        }
        let view = fx.view();
        let mut request = pull_request("T", 0, PULL_FLAG_SUBSCRIPTION);
        request.ext_fields.insert("maxMsgNums", "100");
        let next = async |config: &BrokerConfig| {
            let ctx = PullContext {
                config,
                ..context(&fx, &view)
            };
            let response = responded(pull_message(&ctx, &request).await);
            assert_eq!(response.code, ResponseCode::Success.code());
            response
                .ext_fields
                .get("nextBeginOffset")
                .map(str::to_owned)
        };
        assert_eq!(next(&fx.config).await.as_deref(), Some("32"));
        let mut config = fx.config.clone();
        config.max_transfer_count_on_message_in_memory = 64;
        assert_eq!(next(&config).await.as_deref(), Some("64"));
        // 100-byte bodies make records of about 200 bytes: 1 KiB holds a few.
        config.max_transfer_bytes_on_message_in_memory = 1024;
        let limited: u64 = next(&config).await.unwrap().parse().unwrap();
        assert!((1..10).contains(&limited), "{limited} records in 1 KiB");
    });
}

#[test]
fn a_pull_read_from_a_slave_commits_no_offset() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        fx.put("T", 0, b"one", "").await;
        let view = fx.view();
        let mut config = fx.config.clone();
        config.broker_role = crate::config::BrokerRole::Slave;
        let ctx = PullContext {
            config: &config,
            ..context(&fx, &view)
        };
        let flags = PULL_FLAG_SUBSCRIPTION | PULL_FLAG_COMMIT_OFFSET;
        let response = responded(pull_message(&ctx, &pull_request("T", 0, flags)).await);
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(fx.offsets.borrow().query("g", "T", 0), None);
    });
}

#[test]
fn a_master_with_slave_read_enable_sends_a_lagging_consumer_to_the_slave() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        for body in [b"one".as_slice(), b"two"] {
            fx.put("T", 0, body, "").await;
        }
        let view = fx.view();
        let request = pull_request("T", 0, PULL_FLAG_SUBSCRIPTION);
        // Default: always the master.
        let response = responded(pull_message(&context(&fx, &view), &request).await);
        assert_eq!(response.ext_fields.get("suggestWhichBrokerId"), Some("0"));
        // With slaveReadEnable and a 0 % in-memory window, any lag counts as slow.
        let mut config = fx.config.clone();
        config.slave_read_enable = true;
        config.access_message_in_memory_max_ratio_percent = 0;
        let ctx = PullContext {
            config: &config,
            ..context(&fx, &view)
        };
        let response = responded(pull_message(&ctx, &request).await);
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(response.ext_fields.get("suggestWhichBrokerId"), Some("1"));
    });
}

#[test]
fn an_empty_queue_parks_and_a_later_append_answers_the_parked_pull() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        let view = fx.view();
        let request = pull_request("T", 0, PULL_FLAG_SUBSCRIPTION | PULL_FLAG_SUSPEND);
        let Outcome::Park(parked) = pull_message(&context(&fx, &view), &request).await else {
            panic!("an empty queue with SUSPEND parks");
        };
        let stop = StopSignal::default();
        let appender = fx.clone();
        let append = glommio::spawn_local(async move {
            appender.put("T", 0, b"late", "").await;
        });
        let response = wait_parked(&fx.store, &fx.counters, &stop, &request, parked).await;
        append.await;
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(response.ext_fields.get("nextBeginOffset"), Some("1"));
    });
}

#[test]
fn a_stopping_shard_answers_at_once_and_a_fired_stop_ends_a_park() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        let view = fx.view();
        let request = pull_request("T", 0, PULL_FLAG_SUBSCRIPTION | PULL_FLAG_SUSPEND);
        let mut ctx = context(&fx, &view);
        ctx.stopping = true;
        let response = responded(pull_message(&ctx, &request).await);
        assert_eq!(response.code, ResponseCode::PullNotFound.code());
        ctx.stopping = false;
        let Outcome::Park(parked) = pull_message(&ctx, &request).await else {
            panic!("parks");
        };
        let stop = StopSignal::default();
        stop.fire();
        let response = wait_parked(&fx.store, &fx.counters, &stop, &request, parked).await;
        assert_eq!(response.code, ResponseCode::PullNotFound.code());
    });
}

/// Records in a pull body (each starts with its total size).
fn count_records(mut body: &[u8]) -> usize {
    let mut count = 0;
    while body.len() >= 4 {
        let size = i32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        body = &body[size..];
        count += 1;
    }
    count
}

fn sql_pull(expression: &str, sys_flag: i32) -> RemotingCommand {
    let mut request = pull_request("T", 0, sys_flag);
    request.ext_fields.insert("expressionType", "SQL92");
    request.ext_fields.insert("subscription", expression);
    request
}

#[test]
fn sql92_pulls_return_only_matching_messages_when_enabled() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        for i in 0..10 {
            fx.put("T", 0, b"m", &format!("n\u{1}{i}\u{2}")).await;
        }
        let view = fx.view();
        let mut config = fx.config.clone();
        config.enable_property_filter = true;
        let mut ctx = context(&fx, &view);
        ctx.config = &config;
        let response =
            responded(pull_message(&ctx, &sql_pull("n >= 7", PULL_FLAG_SUBSCRIPTION)).await);
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(count_records(&response.body), 3);
        assert_eq!(response.ext_fields.get("nextBeginOffset"), Some("10"));
        let none = responded(pull_message(&ctx, &sql_pull("n > 99", PULL_FLAG_SUBSCRIPTION)).await);
        assert_eq!(none.code, ResponseCode::PullRetryImmediately.code());
        assert_eq!(fx.filters.borrow().len(), 1, "one entry per (group, topic)");
        let bad = responded(pull_message(&ctx, &sql_pull("n >", PULL_FLAG_SUBSCRIPTION)).await);
        assert_eq!(bad.code, ResponseCode::SubscriptionParseFailed.code());
        assert_eq!(
            bad.remark.as_deref(),
            Some("parse the consumer's subscription failed")
        );
    });
}

#[test]
fn a_parked_sql92_pull_wakes_only_for_a_matching_message() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        let view = fx.view();
        let mut config = fx.config.clone();
        config.enable_property_filter = true;
        let mut ctx = context(&fx, &view);
        ctx.config = &config;
        let request = sql_pull("k = 'hit'", PULL_FLAG_SUBSCRIPTION | PULL_FLAG_SUSPEND);
        let Outcome::Park(parked) = pull_message(&ctx, &request).await else {
            panic!("an empty queue with SUSPEND parks");
        };
        let appender = fx.clone();
        let append = glommio::spawn_local(async move {
            appender.put("T", 0, b"miss", "k\u{1}miss\u{2}").await;
            glommio::timer::sleep(Duration::from_millis(20)).await;
            appender.put("T", 0, b"hit", "k\u{1}hit\u{2}").await;
        });
        let stop = StopSignal::default();
        let response = wait_parked(&fx.store, &fx.counters, &stop, &request, parked).await;
        append.await;
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(response.ext_fields.get("nextBeginOffset"), Some("2"));
        let body = String::from_utf8_lossy(&response.body);
        assert!(body.contains("hit") && !body.contains("miss"));
    });
}

#[test]
fn refusals_carry_javas_codes() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        let view = fx.view();
        let ctx = context(&fx, &view);
        let code = |outcome| responded(outcome).code;
        let unknown = pull_request("Nope", 0, PULL_FLAG_SUBSCRIPTION);
        let c = code(pull_message(&ctx, &unknown).await);
        assert_eq!(c, ResponseCode::TopicNotExist.code());
        let no_group = pull_request("T", 0, 0);
        let c = code(pull_message(&ctx, &no_group).await);
        assert_eq!(c, ResponseCode::SubscriptionNotExist.code());
        let mut bad_queue = pull_request("T", 0, PULL_FLAG_SUBSCRIPTION);
        bad_queue.ext_fields.insert("queueId", "3");
        let c = code(pull_message(&ctx, &bad_queue).await);
        assert_eq!(c, ResponseCode::InvalidParameter.code());
        let mut sql = pull_request("T", 0, PULL_FLAG_SUBSCRIPTION);
        sql.ext_fields.insert("expressionType", "SQL92");
        let refused = responded(pull_message(&ctx, &sql).await);
        assert_eq!(refused.code, ResponseCode::SystemError.code());
        assert_eq!(
            refused.remark.as_deref(),
            Some("The broker does not support consumer to filter message by SQL92")
        );
    });
}
