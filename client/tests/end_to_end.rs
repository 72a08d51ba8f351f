//! Producer → broker → consumer through real `ringmq-namesrv` and `ringmq-broker` processes.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use common::{client_config, run, wait_until, Broker, Namesrv};
use ringmq_client::{
    Admin, ClientConfig, ConsumeFrom, ConsumeStatus, Message, MessageExt, MessageModel,
    MessageQueue, Producer, ProducerConfig, PullConsumer, PullStatus, PushConsumer,
    PushConsumerConfig, QueueSelector, SendStatus, TopicConfig,
};

/// A name server and one broker (`broker-a`) registered with it.
struct Cluster {
    namesrv: Namesrv,
    broker: Broker,
}

impl Cluster {
    fn start() -> Cluster {
        let namesrv = Namesrv::start();
        let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
        Cluster { namesrv, broker }
    }

    fn addrs(&self) -> (String, String) {
        (self.namesrv.addr_string(), self.broker.addr())
    }
}

fn config(namesrv: &str) -> ClientConfig {
    client_config(&[namesrv.to_string()])
}

async fn create_topic(admin: &Admin, broker: &str, name: &str, queues: i32) {
    let mut topic = TopicConfig::new(name, queues);
    topic.perm = 6;
    admin.create_topic(broker, &topic).await.unwrap();
    wait_until("the topic's route", || async {
        admin
            .topic_route(name)
            .await
            .is_ok_and(|r| r.write_queues.len() == queues as usize)
    })
    .await;
}

type Received = Rc<RefCell<Vec<MessageExt>>>;

/// A listener that records every message it gets and accepts it.
fn recorder() -> (
    Received,
    impl Fn(&MessageQueue, &[MessageExt]) -> ConsumeStatus,
) {
    let received: Received = Rc::default();
    let sink = received.clone();
    let listener = move |_: &MessageQueue, messages: &[MessageExt]| {
        sink.borrow_mut().extend_from_slice(messages);
        ConsumeStatus::Success
    };
    (received, listener)
}

fn push_config(namesrv: &str, group: &str, instance: &str) -> PushConsumerConfig {
    let mut client = config(namesrv);
    client.instance_name = instance.to_string();
    let mut config = PushConsumerConfig::new(client, group);
    config.consume_from = ConsumeFrom::FirstOffset;
    config.rebalance_interval_ms = 500;
    config.commit_interval_ms = 200;
    config
}

#[test]
fn sync_sends_reach_a_push_consumer_in_order_with_tags_filtered_exactly() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Orders", 1).await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        let mut sent = Vec::new();
        for i in 0..20 {
            let tag = if i % 2 == 0 { "TagA" } else { "TagB" };
            let message = Message::new("Orders", format!("order-{i}"))
                .with_tags(tag)
                .with_keys([format!("key-{i}")])
                .with_property("seq", i.to_string());
            let result = producer.send(message).await.unwrap();
            assert_eq!(result.status, SendStatus::SendOk);
            assert_eq!(result.queue, MessageQueue::new("Orders", "broker-a", 0));
            assert_eq!(result.queue_offset, i);
            assert_eq!(result.msg_id.len(), 32);
            sent.push((tag, result));
        }

        let (received, listener) = recorder();
        let consumer = PushConsumer::start(
            push_config(&ns, "cg-orders", "c1"),
            &[("Orders", "TagA")],
            listener,
        )
        .await
        .unwrap();
        wait_until("ten TagA messages", || async {
            received.borrow().len() >= 10
        })
        .await;
        let queue = MessageQueue::new("Orders", "broker-a", 0);
        // Everything up to the end was scanned: TagB entries advance the offset too.
        wait_until("the consumer's offset at the queue end", || async {
            consumer.consumed_offset(&queue) == Some(20)
        })
        .await;
        let got = received.borrow().clone();
        assert_eq!(got.len(), 10, "only TagA messages, each once");
        let expected: Vec<_> = sent.iter().filter(|(tag, _)| *tag == "TagA").collect();
        for (message, (_, result)) in got.iter().zip(expected) {
            assert_eq!(message.tags(), Some("TagA"));
            assert_eq!(message.msg_id(), result.msg_id);
            assert_eq!(message.offset_msg_id(), result.offset_msg_id);
            assert_eq!(message.queue_offset, result.queue_offset);
            let seq = message.property("seq").unwrap();
            assert_eq!(&message.body[..], format!("order-{seq}").as_bytes());
            assert_eq!(message.keys(), Some(format!("key-{seq}").as_str()));
        }
        consumer.shutdown().await;
        // The final commit holds the consumed position.
        assert_eq!(
            admin.consumer_offset("cg-orders", &queue).await.unwrap(),
            Some(20)
        );
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn a_new_topic_is_created_through_tbw102_on_first_send() {
    let cluster = Cluster::start();
    let (ns, _broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        let result = producer
            .send(Message::new("AutoCreated", "first"))
            .await
            .unwrap();
        assert_eq!(result.status, SendStatus::SendOk);
        assert_eq!(result.queue.topic, "AutoCreated");
        wait_until("the auto-created topic's route", || async {
            admin.topic_route("AutoCreated").await.is_ok()
        })
        .await;
        let route = admin.topic_route("AutoCreated").await.unwrap();
        assert_eq!(route.write_queues.len(), 4, "the client asks for 4 queues");
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn compressed_batch_async_and_oneway_sends_all_arrive_intact() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Mixed", 2).await;
        let mut producer_config = ProducerConfig::new(config(&ns), "pg");
        // At most 4 async sends in flight: send_async waits for a slot beyond that.
        producer_config.max_async_in_flight = 4;
        let producer = Producer::start(producer_config).unwrap();
        let q0 = MessageQueue::new("Mixed", "broker-a", 0);
        let q1 = MessageQueue::new("Mixed", "broker-a", 1);
        let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();

        // Compressed on the wire (over 4096 bytes), plain for the consumer.
        let large: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let result = producer
            .send_with(
                Message::new("Mixed", large.clone()),
                QueueSelector::Explicit(q0.clone()),
            )
            .await
            .unwrap();
        expected.insert(result.msg_id, large);

        // A batch: consecutive offsets, one id per message.
        let batch: Vec<Message> = (0..5)
            .map(|i| Message::new("Mixed", format!("batch-{i}")))
            .collect();
        let result = producer
            .send_batch(batch, QueueSelector::Explicit(q1.clone()))
            .await
            .unwrap();
        let ids: Vec<&str> = result.msg_id.split(',').collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(result.offset_msg_id.split(',').count(), 5);
        for (i, id) in ids.iter().enumerate() {
            expected.insert(id.to_string(), format!("batch-{i}").into_bytes());
        }

        // Async sends with a small in-flight bound.
        let results: Rc<RefCell<Vec<String>>> = Rc::default();
        for i in 0..40 {
            let sink = results.clone();
            let body = format!("async-{i}");
            let message = Message::new("Mixed", body.clone()).with_property("body", &body);
            producer
                .send_async(message, QueueSelector::RoundRobin, move |result| {
                    let result = result.expect("async send stored");
                    sink.borrow_mut().push(result.msg_id);
                })
                .await
                .unwrap();
        }
        wait_until("every async callback", || async {
            results.borrow().len() == 40
        })
        .await;

        // Oneway: no answer; they show up in the queue.
        for i in 0..5 {
            producer
                .send_oneway(
                    Message::new("Mixed", format!("oneway-{i}")),
                    QueueSelector::Explicit(q0.clone()),
                )
                .await
                .unwrap();
        }

        let consumer = PullConsumer::start(config(&ns), "cg-mixed").unwrap();
        wait_until("every message stored", || async {
            let a = admin.max_offset(&q0).await.unwrap_or(0);
            let b = admin.max_offset(&q1).await.unwrap_or(0);
            a + b == 1 + 5 + 40 + 5
        })
        .await;
        let mut received = Vec::new();
        for queue in [&q0, &q1] {
            let mut offset = 0;
            loop {
                let result = consumer.pull(queue, "*", offset, 32).await.unwrap();
                if result.status != PullStatus::Found {
                    break;
                }
                offset = result.next_begin_offset;
                received.extend(result.messages);
            }
        }
        assert_eq!(received.len(), 51);
        let by_id: BTreeMap<String, &MessageExt> =
            received.iter().map(|m| (m.msg_id(), m)).collect();
        assert_eq!(by_id.len(), 51, "message ids are unique");
        for (id, body) in &expected {
            assert_eq!(&by_id[id].body[..], &body[..], "body of {id}");
        }
        assert!(by_id[expected.keys().next().unwrap()].body.len() > 4096);
        for id in results.borrow().iter() {
            let message = by_id[id];
            assert_eq!(
                message.property("body").unwrap().as_bytes(),
                &message.body[..]
            );
        }
        let oneway: BTreeSet<String> = received
            .iter()
            .filter_map(|m| {
                let body = String::from_utf8_lossy(&m.body).into_owned();
                body.starts_with("oneway-").then_some(body)
            })
            .collect();
        assert_eq!(oneway.len(), 5);
        consumer.shutdown();

        // Shutdown waits for async sends it already accepted, and refuses new ones.
        let tail: Rc<RefCell<Vec<bool>>> = Rc::default();
        for i in 0..10 {
            let sink = tail.clone();
            producer
                .send_async(
                    Message::new("Mixed", format!("tail-{i}")),
                    QueueSelector::RoundRobin,
                    move |result| sink.borrow_mut().push(result.is_ok()),
                )
                .await
                .unwrap();
        }
        producer.shutdown().await;
        assert_eq!(*tail.borrow(), [true; 10]);
        let refused = producer.send(Message::new("Mixed", "too late")).await;
        assert!(matches!(refused, Err(ringmq_client::ClientError::Shutdown)));
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn a_parked_pull_is_answered_when_a_message_arrives() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "LongPoll", 1).await;
        let queue = MessageQueue::new("LongPoll", "broker-a", 0);
        let consumer = Rc::new(PullConsumer::start(config(&ns), "cg-long").unwrap());
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        let send = |body: &'static str| {
            producer.send_with(
                Message::new("LongPoll", body),
                QueueSelector::Explicit(queue.clone()),
            )
        };
        send("first").await.unwrap();
        // Without the SUSPEND bit a pull at the queue's end answers at once.
        let at_end = consumer.pull(&queue, "*", 1, 32).await.unwrap();
        assert_eq!(at_end.status, PullStatus::NoNewMsg);
        assert_eq!(at_end.next_begin_offset, 1);

        // With it, the broker parks the pull until the next message is appended.
        let waiting = {
            let consumer = consumer.clone();
            let queue = queue.clone();
            glommio::spawn_local(async move {
                consumer
                    .pull_blocking(&queue, "*", 1, 32, 20_000)
                    .await
                    .unwrap()
            })
        };
        send("wake up").await.unwrap();
        let result = waiting.await;
        assert_eq!(result.status, PullStatus::Found);
        assert_eq!(&result.messages[0].body[..], b"wake up");
        assert_eq!(result.next_begin_offset, 2);
        producer.shutdown().await;
        consumer.shutdown();
        admin.shutdown();
    });
    drop(cluster);
}

#[test]
fn a_clustering_group_consumes_each_message_once_and_resumes_from_commits() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Shared", 4).await;
        let (got_a, listener_a) = recorder();
        let (got_b, listener_b) = recorder();
        let a = PushConsumer::start(
            push_config(&ns, "cg-shared", "a"),
            &[("Shared", "*")],
            listener_a,
        )
        .await
        .unwrap();
        let b = PushConsumer::start(
            push_config(&ns, "cg-shared", "b"),
            &[("Shared", "*")],
            listener_b,
        )
        .await
        .unwrap();
        let owned = |c: &PushConsumer| {
            c.assigned_queues()
                .iter()
                .filter(|q| q.topic == "Shared")
                .count()
        };
        wait_until("a 2/2 split", || async { owned(&a) == 2 && owned(&b) == 2 }).await;

        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        let mut sent = BTreeSet::new();
        for i in 0..40 {
            let result = producer
                .send(Message::new("Shared", format!("m{i}")))
                .await
                .unwrap();
            sent.insert(result.msg_id);
        }
        wait_until("all 40 consumed", || async {
            got_a.borrow().len() + got_b.borrow().len() >= 40
        })
        .await;
        let ids = |got: &Received| -> BTreeSet<String> {
            got.borrow().iter().map(MessageExt::msg_id).collect()
        };
        let (ids_a, ids_b) = (ids(&got_a), ids(&got_b));
        assert!(ids_a.is_disjoint(&ids_b), "no message went to both members");
        assert_eq!(&ids_a | &ids_b, sent);
        assert!(
            !ids_a.is_empty() && !ids_b.is_empty(),
            "both members consumed"
        );
        a.shutdown().await;
        b.shutdown().await;

        // Sent while nobody listens; a new member resumes from the committed offsets.
        let mut later = BTreeSet::new();
        for i in 0..8 {
            let result = producer
                .send(Message::new("Shared", format!("later{i}")))
                .await
                .unwrap();
            later.insert(result.msg_id);
        }
        let (got_c, listener_c) = recorder();
        let c = PushConsumer::start(
            push_config(&ns, "cg-shared", "c"),
            &[("Shared", "*")],
            listener_c,
        )
        .await
        .unwrap();
        wait_until("the 8 later messages", || async {
            got_c.borrow().len() >= 8
        })
        .await;
        // Give a redelivery of old messages the chance to show up: the queue ends are known.
        for queue_id in 0..4 {
            let queue = MessageQueue::new("Shared", "broker-a", queue_id);
            let end = admin.max_offset(&queue).await.unwrap();
            wait_until("c at the queue end", || async {
                c.consumed_offset(&queue) == Some(end)
            })
            .await;
        }
        assert_eq!(ids(&got_c), later, "only what was sent after the commits");
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
fn sends_retry_on_another_broker_and_keys_pin_a_queue() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let broker_a = Broker::start(&ns, "broker-a", &[]);
    let broker_b = Broker::start(&ns, "broker-b", &[]);
    let (addr_a, addr_b) = (broker_a.addr(), broker_b.addr());
    run(move || async move {
        let mut broker_a = Some(broker_a);
        let admin = Admin::new(config(&ns)).unwrap();
        for addr in [&addr_a, &addr_b] {
            let mut topic = TopicConfig::new("TwoBrokers", 2);
            topic.perm = 6;
            admin.create_topic(addr, &topic).await.unwrap();
        }
        wait_until("both brokers in the route", || async {
            admin
                .topic_route("TwoBrokers")
                .await
                .is_ok_and(|r| r.write_queues.len() == 4)
        })
        .await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        assert_eq!(producer.write_queues("TwoBrokers").await.unwrap().len(), 4);

        // The same key always lands on the same queue.
        let mut pinned = BTreeSet::new();
        for i in 0..6 {
            let result = producer
                .send_with(
                    Message::new("TwoBrokers", format!("k{i}")),
                    QueueSelector::ByKeyHash("customer-42".to_string()),
                )
                .await
                .unwrap();
            pinned.insert(result.queue);
        }
        assert_eq!(pinned.len(), 1);

        // broker-a dies; the producer's cached route still lists it.
        drop(broker_a.take());
        for i in 0..10 {
            let result = producer
                .send(Message::new("TwoBrokers", format!("after-{i}")))
                .await
                .unwrap();
            assert_eq!(result.status, SendStatus::SendOk);
            assert_eq!(result.queue.broker_name, "broker-b");
        }
        // An explicit queue on the dead broker is not retried elsewhere.
        let error = producer
            .send_with(
                Message::new("TwoBrokers", "pinned"),
                QueueSelector::Explicit(MessageQueue::new("TwoBrokers", "broker-a", 0)),
            )
            .await
            .unwrap_err();
        assert!(error.is_retriable_send_failure(), "{error}");
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker_b);
    drop(namesrv);
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
        let bodies: Vec<String> = got_again
            .borrow()
            .iter()
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .collect();
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
        let bodies: Vec<String> = got
            .borrow()
            .iter()
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .collect();
        assert_eq!(bodies, ["new0", "new1"]);
        consumer.shutdown().await;
        puller.shutdown();
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
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

#[test]
fn tags_with_colliding_hashes_are_filtered_exactly_by_the_client() {
    // Java String.hashCode("Aa") == hashCode("BB") == 2112: the broker's tag-hash filter lets
    // both through, the client must drop the one it did not subscribe to.
    assert_eq!(
        ringmq_proto::message::tag_hash("Aa"),
        ringmq_proto::message::tag_hash("BB")
    );
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "Collide", 1).await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        for (i, tag) in ["Aa", "BB", "Aa", "BB", "Cc"].iter().enumerate() {
            producer
                .send(Message::new("Collide", format!("{tag}-{i}")).with_tags(*tag))
                .await
                .unwrap();
        }
        let queue = MessageQueue::new("Collide", "broker-a", 0);
        let puller = PullConsumer::start(config(&ns), "cg-collide-pull").unwrap();
        let result = puller.pull(&queue, "Aa", 0, 32).await.unwrap();
        assert_eq!(result.status, PullStatus::Found);
        assert_eq!(result.next_begin_offset, 5);
        let tags: Vec<_> = result.messages.iter().map(|m| m.tags().unwrap()).collect();
        assert_eq!(tags, ["Aa", "Aa"]);
        assert_eq!(
            result.filtered_out, 2,
            "the two BB messages the broker let through"
        );

        let (got, listener) = recorder();
        let consumer = PushConsumer::start(
            push_config(&ns, "cg-collide", "c"),
            &[("Collide", "Aa")],
            listener,
        )
        .await
        .unwrap();
        wait_until("offset 5", || async {
            consumer.consumed_offset(&queue) == Some(5)
        })
        .await;
        let bodies: Vec<String> = got
            .borrow()
            .iter()
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .collect();
        assert_eq!(bodies, ["Aa-0", "Aa-2"]);
        consumer.shutdown().await;
        puller.shutdown();
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}
