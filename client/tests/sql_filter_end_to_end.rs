//! SQL92 subscriptions against a real name server and broker: with `enablePropertyFilter` the
//! broker delivers only messages whose properties match (tags included); without it, or with
//! an invalid expression, the consumer fails to start with the broker's code and remark
//! (CHECK_CLIENT_CONFIG), as a Java consumer does.

mod common;

use common::cluster::{config, create_topic, push_config, recorder};
use common::{run, wait_until, Broker, Namesrv};
use ringmq_client::{
    Admin, ClientError, Message, MessageSelector, Producer, ProducerConfig, PushConsumer,
};

#[test]
fn a_sql92_consumer_gets_exactly_the_matching_messages() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let broker = Broker::start(&ns, "broker-a", &["--set", "enablePropertyFilter=true"]);
    let broker_addr = broker.addr();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker_addr, "SqlT", 2).await;
        let (got, listener) = recorder();
        let consumer = PushConsumer::start_with_selectors(
            push_config(&ns, "sql-group", "s"),
            &[(
                "SqlT",
                MessageSelector::by_sql("(price > 10 AND region IN ('eu', 'us')) OR TAGS = 'vip'"),
            )],
            listener,
        )
        .await
        .unwrap();
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        let mut expected = Vec::new();
        for i in 0..60u32 {
            let price = (i % 20).to_string();
            let region = ["eu", "us", "apac"][(i % 3) as usize];
            let mut message = Message::new("SqlT", format!("m{i}"))
                .with_property("price", price)
                .with_property("region", region);
            if i % 10 == 0 {
                message = message.with_tags("vip");
            }
            // A property missing on some messages: a comparison with it is false.
            if i % 7 == 0 {
                message = Message::new("SqlT", format!("m{i}")).with_property("region", "eu");
            }
            let matches = if i % 7 == 0 {
                false
            } else {
                (i % 20 > 10 && region != "apac") || i % 10 == 0
            };
            if matches {
                expected.push(format!("m{i}"));
            }
            producer.send(message).await.unwrap();
        }
        // A last matching message: once it is in, everything before it was judged.
        producer
            .send(Message::new("SqlT", "last").with_tags("vip"))
            .await
            .unwrap();
        expected.push("last".to_string());
        wait_until("the matching messages", || async {
            common::cluster::bodies(&got).len() >= expected.len()
        })
        .await;
        consumer.shutdown().await;
        producer.shutdown().await;
        let mut bodies = common::cluster::bodies(&got);
        bodies.sort();
        expected.sort();
        assert_eq!(bodies, expected);
    });
}

#[test]
fn a_sql92_consumer_is_refused_at_start_with_javas_codes() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let plain = Broker::start(&ns, "broker-plain", &[]);
    let enabled = Broker::start(&ns, "broker-sql", &["--set", "enablePropertyFilter=true"]);
    let (plain_addr, enabled_addr) = (plain.addr(), enabled.addr());
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &plain_addr, "OnPlain", 1).await;
        create_topic(&admin, &enabled_addr, "OnSql", 1).await;
        let start = |topic: &'static str, expression: &'static str| {
            let ns = ns.clone();
            async move {
                let (_, listener) = recorder();
                PushConsumer::start_with_selectors(
                    push_config(&ns, "refused", "r"),
                    &[(topic, MessageSelector::by_sql(expression))],
                    listener,
                )
                .await
            }
        };
        match start("OnPlain", "a > 1").await {
            Err(ClientError::Server { code, remark, .. }) => {
                assert_eq!(code, 1, "SYSTEM_ERROR");
                assert_eq!(
                    remark,
                    "The broker does not support consumer to filter message by SQL92"
                );
            }
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
        match start("OnSql", "a >>> 1").await {
            Err(ClientError::Server { code, remark, .. }) => {
                assert_eq!(code, 23, "SUBSCRIPTION_PARSE_FAILED");
                assert!(remark.starts_with("Invalid MessageSelector. "), "{remark}");
            }
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
        let ok = start("OnSql", "a > 1").await.unwrap();
        ok.shutdown().await;
    });
}
