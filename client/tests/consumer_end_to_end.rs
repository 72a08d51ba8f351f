//! Consumer groups end to end through real `ringmq-namesrv` and `ringmq-broker` processes:
//! clustering and broadcasting, committed and local offsets, redelivery of rejected messages,
//! starting from a point in time.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use common::cluster::{
    bodies, config, create_topic, push_config, recorder, wall_ms, Cluster, Received,
};
use common::{run, wait_until};
use ringmq_client::{
    Admin, ConsumeFrom, ConsumeStatus, Message, MessageExt, MessageModel, MessageQueue, Producer,
    ProducerConfig, PullConsumer, PushConsumer,
};

/// Starts member `instance` of group cg-shared on topic Shared, recording what it gets.
async fn shared_member(ns: &str, instance: &str) -> (Received, PushConsumer) {
    let (got, listener) = recorder();
    let consumer = PushConsumer::start(
        push_config(ns, "cg-shared", instance),
        &[("Shared", "*")],
        listener,
    )
    .await
    .unwrap();
    (got, consumer)
}

/// Sends `{prefix}0`..`{prefix}{count-1}` to topic Shared; returns their message ids.
async fn send_shared(producer: &Producer, prefix: &str, count: usize) -> BTreeSet<String> {
    let mut sent = BTreeSet::new();
    for i in 0..count {
        let result = producer
            .send(Message::new("Shared", format!("{prefix}{i}")))
            .await
            .unwrap();
        sent.insert(result.msg_id);
    }
    sent
}

fn received_ids(got: &Received) -> BTreeSet<String> {
    got.borrow().iter().map(MessageExt::msg_id).collect()
}

/// Waits until `consumer` has consumed to the end of every queue of Shared, so a redelivery
/// of old messages would have had its chance to show up.
async fn wait_at_every_shared_queue_end(admin: &Admin, consumer: &PushConsumer) {
    for queue_id in 0..4 {
        let queue = MessageQueue::new("Shared", "broker-a", queue_id);
        let end = admin.max_offset(&queue).await.unwrap();
        wait_until("c at the queue end", || async {
            consumer.consumed_offset(&queue) == Some(end)
        })
        .await;
    }
}

#[test]
fn a_clustering_group_consumes_each_message_once_and_resumes_from_commits() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Shared", 4).await;
        let (got_a, a) = shared_member(&ns, "a").await;
        let (got_b, b) = shared_member(&ns, "b").await;
        let owned = |c: &PushConsumer| {
            c.assigned_queues()
                .iter()
                .filter(|q| q.topic == "Shared")
                .count()
        };
        wait_until("a 2/2 split", || async { owned(&a) == 2 && owned(&b) == 2 }).await;

        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        let sent = send_shared(&producer, "m", 40).await;
        wait_until("all 40 consumed", || async {
            got_a.borrow().len() + got_b.borrow().len() >= 40
        })
        .await;
        let (ids_a, ids_b) = (received_ids(&got_a), received_ids(&got_b));
        assert!(ids_a.is_disjoint(&ids_b), "no message went to both members");
        assert_eq!(&ids_a | &ids_b, sent);
        assert!(
            !ids_a.is_empty() && !ids_b.is_empty(),
            "both members consumed"
        );
        a.shutdown().await;
        b.shutdown().await;

        // Sent while nobody listens; a new member resumes from the committed offsets.
        let later = send_shared(&producer, "later", 8).await;
        let (got_c, c) = shared_member(&ns, "c").await;
        wait_until("the 8 later messages", || async {
            got_c.borrow().len() >= 8
        })
        .await;
        wait_at_every_shared_queue_end(&admin, &c).await;
        assert_eq!(
            received_ids(&got_c),
            later,
            "only what was sent after the commits"
        );
        c.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn broadcasting_consumers_each_get_every_message() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Fanout", 2).await;
        let start = |instance: &'static str| {
            let ns = ns.clone();
            async move {
                let mut config = push_config(&ns, "cg-fanout", instance);
                config.message_model = MessageModel::Broadcasting;
                let (got, listener) = recorder();
                let consumer = PushConsumer::start(config, &[("Fanout", "*")], listener)
                    .await
                    .unwrap();
                (consumer, got)
            }
        };
        let (x, got_x) = start("x").await;
        let (y, got_y) = start("y").await;
        assert_eq!(x.assigned_queues().len(), 2);
        assert_eq!(y.assigned_queues().len(), 2);
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        for i in 0..10 {
            producer
                .send(Message::new("Fanout", format!("f{i}")))
                .await
                .unwrap();
        }
        wait_until("both consumers got all 10", || async {
            got_x.borrow().len() >= 10 && got_y.borrow().len() >= 10
        })
        .await;
        let bodies = |got: &Received| -> BTreeSet<Vec<u8>> {
            got.borrow().iter().map(|m| m.body.to_vec()).collect()
        };
        assert_eq!(bodies(&got_x), bodies(&got_y));
        assert_eq!(bodies(&got_x).len(), 10);
        x.shutdown().await;
        y.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn a_message_the_listener_rejects_is_delivered_again() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Retry", 1).await;
        let attempts: Rc<RefCell<Vec<(String, MessageExt)>>> = Rc::default();
        let log = attempts.clone();
        let listener = move |_: &MessageQueue, messages: &[MessageExt]| {
            let message = &messages[0];
            let body = String::from_utf8_lossy(&message.body).into_owned();
            let first_time = !log.borrow().iter().any(|(b, _)| *b == body);
            log.borrow_mut().push((body.clone(), message.clone()));
            if body == "flaky" && first_time {
                ConsumeStatus::ReconsumeLater
            } else {
                ConsumeStatus::Success
            }
        };
        let consumer = PushConsumer::start(
            push_config(&ns, "cg-retry", "r"),
            &[("Retry", "*")],
            listener,
        )
        .await
        .unwrap();
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        producer.send(Message::new("Retry", "flaky")).await.unwrap();
        producer
            .send(Message::new("Retry", "steady"))
            .await
            .unwrap();
        wait_until("flaky delivered twice and steady once", || async {
            let seen = attempts.borrow();
            seen.iter().filter(|(b, _)| b == "flaky").count() == 2
                && seen.iter().any(|(b, _)| b == "steady")
        })
        .await;
        // The second delivery came back through %RETRY%cg-retry (CONSUMER_SEND_MSG_BACK), with
        // the original topic restored for the listener and one more reconsume.
        let seen = attempts.borrow().clone();
        let flaky: Vec<&MessageExt> = seen
            .iter()
            .filter(|(b, _)| b == "flaky")
            .map(|(_, m)| m)
            .collect();
        assert_eq!(flaky[0].reconsume_times, 0);
        assert_eq!(flaky[1].reconsume_times, 1);
        assert_eq!(flaky[1].topic, "Retry");
        assert_eq!(flaky[1].property("RETRY_TOPIC"), Some("Retry"));
        assert_eq!(flaky[1].msg_id(), flaky[0].msg_id(), "same UNIQ_KEY");
        assert_eq!(seen.iter().filter(|(b, _)| b == "steady").count(), 1);
        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn a_broadcasting_consumer_resumes_from_its_offset_file() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    let dir = tempfile::tempdir().unwrap();
    let offset_file = dir.path().join("cg-local").join("offsets.json");
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Local", 1).await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        let consumer_config = || {
            let mut config = push_config(&ns, "cg-local", "l");
            config.message_model = MessageModel::Broadcasting;
            config.broadcast_offset_file = Some(offset_file.clone());
            config
        };
        for i in 0..5 {
            producer
                .send(Message::new("Local", format!("early{i}")))
                .await
                .unwrap();
        }
        let (got, listener) = recorder();
        let consumer = PushConsumer::start(consumer_config(), &[("Local", "*")], listener)
            .await
            .unwrap();
        wait_until("the first five", || async { got.borrow().len() >= 5 }).await;
        let queue = MessageQueue::new("Local", "broker-a", 0);
        wait_until("offset 5", || async {
            consumer.consumed_offset(&queue) == Some(5)
        })
        .await;
        consumer.shutdown().await;
        assert!(offset_file.exists());

        for i in 0..3 {
            producer
                .send(Message::new("Local", format!("late{i}")))
                .await
                .unwrap();
        }
        let (got_again, listener) = recorder();
        let restarted = PushConsumer::start(consumer_config(), &[("Local", "*")], listener)
            .await
            .unwrap();
        wait_until("offset 8", || async {
            restarted.consumed_offset(&queue) == Some(8)
        })
        .await;
        let bodies = bodies(&got_again);
        assert_eq!(bodies, ["late0", "late1", "late2"]);
        restarted.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn a_new_group_can_start_from_a_point_in_time() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Timed", 1).await;
        let queue = MessageQueue::new("Timed", "broker-a", 0);
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        for i in 0..3 {
            producer
                .send(Message::new("Timed", format!("old{i}")))
                .await
                .unwrap();
        }
        let puller = PullConsumer::start(config(&ns), "cg-peek").unwrap();
        let old = puller.pull(&queue, "*", 0, 32).await.unwrap().messages;
        let last_old_ms = old.last().unwrap().store_timestamp_ms;
        assert_eq!(admin.offset_at_time(&queue, 0).await.unwrap(), 0);
        // Wait out the millisecond of the last old message, so newer ones are stored later.
        wait_until("the clock to pass the last old message", || async {
            wall_ms() > last_old_ms + 1
        })
        .await;
        let cut_ms = wall_ms();
        for i in 0..2 {
            producer
                .send(Message::new("Timed", format!("new{i}")))
                .await
                .unwrap();
        }
        assert_eq!(admin.offset_at_time(&queue, cut_ms).await.unwrap(), 3);

        let (got, listener) = recorder();
        let mut consumer_config = push_config(&ns, "cg-timed", "t");
        consumer_config.consume_from = ConsumeFrom::Timestamp(cut_ms);
        let consumer = PushConsumer::start(consumer_config, &[("Timed", "*")], listener)
            .await
            .unwrap();
        wait_until("offset 5", || async {
            consumer.consumed_offset(&queue) == Some(5)
        })
        .await;
        let bodies = bodies(&got);
        assert_eq!(bodies, ["new0", "new1"]);
        consumer.shutdown().await;
        puller.shutdown();
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn a_rejected_message_the_broker_will_not_take_back_is_retried_locally() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "LocalRetry", 1).await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        producer
            .send(Message::new("LocalRetry", "flaky"))
            .await
            .unwrap();
        // A read-only broker refuses CONSUMER_SEND_MSG_BACK (NO_PERMISSION) but serves pulls.
        admin
            .update_broker_config(&broker, &[("brokerPermission", "4")])
            .await
            .unwrap();

        let attempts: Rc<RefCell<Vec<MessageExt>>> = Rc::default();
        let log = attempts.clone();
        let listener = move |_: &MessageQueue, messages: &[MessageExt]| {
            let first_time = log.borrow().is_empty();
            log.borrow_mut().push(messages[0].clone());
            if first_time {
                ConsumeStatus::ReconsumeLater
            } else {
                ConsumeStatus::Success
            }
        };
        let mut consumer_config = push_config(&ns, "cg-local-retry", "lr");
        consumer_config.local_retry_delay_ms = 100;
        let consumer = PushConsumer::start(consumer_config, &[("LocalRetry", "*")], listener)
            .await
            .unwrap();
        let queue = MessageQueue::new("LocalRetry", "broker-a", 0);
        wait_until("the message consumed on the second try", || async {
            consumer.consumed_offset(&queue) == Some(1)
        })
        .await;
        let seen = attempts.borrow().clone();
        assert_eq!(seen.len(), 2, "delivered twice, by this client");
        assert_eq!(seen[1].msg_id(), seen[0].msg_id());
        assert_eq!(seen[1].reconsume_times, 1);
        assert_eq!(
            seen[1].property("RETRY_TOPIC"),
            None,
            "not through the retry topic"
        );
        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}
