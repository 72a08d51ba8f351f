//! The client against real `ringmq-broker` and `ringmq-namesrv` processes: topic creation,
//! offsets, consumer lists, and push-consumer rebalancing as group members come and go.

mod common;

use std::collections::BTreeSet;
use std::rc::Rc;

use common::{client_config, run, wait_until, Broker, Namesrv};
use ringmq_client::{
    Admin, ConsumeStatus, MessageQueue, PullConsumer, PushConsumer, PushConsumerConfig, TopicConfig,
};

fn topic(name: &str, queues: i32) -> TopicConfig {
    let mut config = TopicConfig::new(name, queues);
    config.perm = 6;
    config
}

/// Creates `name` on the broker and waits until the name server routes it.
async fn create_topic(admin: &Admin, broker: &str, name: &str, queues: i32) {
    admin
        .create_topic(broker, &topic(name, queues))
        .await
        .unwrap();
    wait_until("the topic's route", || async {
        admin
            .topic_route(name)
            .await
            .is_ok_and(|r| r.write_queues.len() == queues as usize)
    })
    .await;
}

#[test]
fn topic_creation_offsets_and_consumer_offsets_round_trip() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let (ns, broker_addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let config = client_config(std::slice::from_ref(&ns));
        let admin = Admin::new(config.clone()).unwrap();
        create_topic(&admin, &broker_addr, "Offsets", 2).await;
        let queue = MessageQueue::new("Offsets", "broker-a", 1);
        // A group with nothing committed: QUERY_NOT_FOUND becomes None.
        assert_eq!(
            admin.consumer_offset("cg-offsets", &queue).await.unwrap(),
            None
        );

        let consumer = PullConsumer::start(config, "cg-offsets").unwrap();
        assert_eq!(consumer.fetch_queues("Offsets").await.unwrap().len(), 2);
        consumer.commit_offset(&queue, 5).await.unwrap();
        assert_eq!(consumer.committed_offset(&queue).await.unwrap(), Some(5));
        assert_eq!(
            admin.consumer_offset("cg-offsets", &queue).await.unwrap(),
            Some(5)
        );
        // Another queue of the same group is independent.
        let other = MessageQueue::new("Offsets", "broker-a", 0);
        assert_eq!(
            admin.consumer_offset("cg-offsets", &other).await.unwrap(),
            None
        );
        consumer.shutdown();
        admin.shutdown();
    });
    drop(broker);
}

/// A member of group cg-split named `instance`, rebalancing every 500 ms.
fn split_member_config(ns: &str, instance: &str) -> PushConsumerConfig {
    let mut client = client_config(&[ns.to_string()]);
    client.instance_name = instance.to_string();
    let mut config = PushConsumerConfig::new(client, "cg-split");
    config.rebalance_interval_ms = 500;
    // A new group starts at 0 without asking the broker for the queue's end.
    config.consume_from = ringmq_client::ConsumeFrom::FirstOffset;
    config
}

/// The queues of topic Split that `consumer` owns now.
fn split_queues(consumer: &PushConsumer) -> BTreeSet<MessageQueue> {
    consumer
        .assigned_queues()
        .into_iter()
        .filter(|q| q.topic == "Split")
        .collect()
}

/// After the last member of cg-split shut down: its shutdown committed the position of every
/// queue it owned (nothing consumed yet: 0), and it left the group.
async fn check_last_split_member_committed_and_left(admin: &Admin, broker_addr: &str) {
    for queue_id in 0..4 {
        let queue = MessageQueue::new("Split", "broker-a", queue_id);
        assert_eq!(
            admin.consumer_offset("cg-split", &queue).await.unwrap(),
            Some(0)
        );
    }
    wait_until("an empty consumer list", || async {
        admin
            .consumer_ids(broker_addr, "cg-split")
            .await
            .map_or(true, |ids| ids.is_empty())
    })
    .await;
}

#[test]
fn push_consumers_split_queues_and_take_them_back_when_one_leaves() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let (ns, broker_addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
        create_topic(&admin, &broker_addr, "Split", 4).await;

        let consumer_config = |instance: &str| split_member_config(&ns, instance);
        let listener = |_: &MessageQueue, _: &[ringmq_client::MessageExt]| ConsumeStatus::Success;
        let first = Rc::new(
            PushConsumer::start(consumer_config("first"), &[("Split", "*")], listener)
                .await
                .unwrap(),
        );
        wait_until("the first consumer owns every queue", || async {
            split_queues(&first).len() == 4
        })
        .await;

        let second = PushConsumer::start(consumer_config("second"), &[("Split", "*")], listener)
            .await
            .unwrap();
        wait_until("an even, disjoint split", || async {
            let (a, b) = (split_queues(&first), split_queues(&second));
            a.len() == 2 && b.len() == 2 && a.is_disjoint(&b)
        })
        .await;
        // Both ids are in the broker's consumer list, exactly as the clients sent them.
        let ids: BTreeSet<String> = admin
            .consumer_ids(&broker_addr, "cg-split")
            .await
            .unwrap()
            .into_iter()
            .collect();
        let expected: BTreeSet<String> = [
            first.client_id().to_string(),
            second.client_id().to_string(),
        ]
        .into();
        assert_eq!(ids, expected);

        second.shutdown().await;
        wait_until("the first consumer owns every queue again", || async {
            split_queues(&first).len() == 4
        })
        .await;
        first.shutdown().await;
        check_last_split_member_committed_and_left(&admin, &broker_addr).await;
        admin.shutdown();
    });
    drop(broker);
}

#[test]
fn producers_and_consumers_follow_a_topic_that_grows() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let (ns, broker_addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let mut client = client_config(std::slice::from_ref(&ns));
        client.route_refresh_interval_ms = 200;
        let admin = Admin::new(client.clone()).unwrap();
        create_topic(&admin, &broker_addr, "Growing", 2).await;

        let producer = ringmq_client::Producer::start(ringmq_client::ProducerConfig::new(
            client.clone(),
            "pg-growing",
        ))
        .unwrap();
        assert_eq!(producer.write_queues("Growing").await.unwrap().len(), 2);
        let mut consumer_config = PushConsumerConfig::new(client, "cg-growing");
        consumer_config.rebalance_interval_ms = 200;
        consumer_config.consume_from = ringmq_client::ConsumeFrom::FirstOffset;
        let listener = |_: &MessageQueue, _: &[ringmq_client::MessageExt]| ConsumeStatus::Success;
        let consumer = PushConsumer::start(consumer_config, &[("Growing", "*")], listener)
            .await
            .unwrap();
        let growing = |c: &PushConsumer| {
            c.assigned_queues()
                .iter()
                .filter(|q| q.topic == "Growing")
                .count()
        };
        wait_until("two queues assigned", || async { growing(&consumer) == 2 }).await;

        create_topic(&admin, &broker_addr, "Growing", 4).await;
        // Both pick the new queues up from their periodic route refresh.
        wait_until("the producer sees four queues", || async {
            producer.write_queues("Growing").await.unwrap().len() == 4
        })
        .await;
        wait_until("the consumer owns four queues", || async {
            growing(&consumer) == 4
        })
        .await;
        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
}
