//! Producer → broker → consumer through real `ringmq-namesrv` and `ringmq-broker` processes:
//! the send paths (sync, batch, async, oneway, compressed, retries, keys) and what a consumer sees
//! of them. Consumer-group behaviour is in `consumer_end_to_end.rs`.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use common::cluster::{bodies, config, create_topic, push_config, recorder, Cluster};
use common::{run, wait_until, Broker, Namesrv};
use ringmq_client::{
    Admin, Message, MessageExt, MessageQueue, Producer, ProducerConfig, PullConsumer, PullStatus,
    PushConsumer, QueueSelector, SendStatus, TopicConfig,
};

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

/// Sends a large message (compressed on the wire, over 4096 bytes) to `q0` and a batch of 5 to
/// `q1`; returns the bodies they were sent with by message id.
async fn send_large_and_batch(
    producer: &Producer,
    q0: &MessageQueue,
    q1: &MessageQueue,
) -> BTreeMap<String, Vec<u8>> {
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
    expected
}

/// 40 async sends (each carrying its body as a property too), waiting for every callback;
/// returns the message ids the callbacks got.
async fn send_async_forty(producer: &Producer) -> Rc<RefCell<Vec<String>>> {
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
    results
}

/// Pulls each queue from offset 0 until nothing more is found.
async fn pull_all(consumer: &PullConsumer, queues: [&MessageQueue; 2]) -> Vec<MessageExt> {
    let mut received = Vec::new();
    for queue in queues {
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
    received
}

/// All 51 arrived once each with the body they were sent with: the large and batch ones by
/// id, the async ones matching their body property, and the 5 oneway ones.
fn check_mixed_received(
    received: &[MessageExt],
    expected: &BTreeMap<String, Vec<u8>>,
    async_ids: &[String],
) {
    assert_eq!(received.len(), 51);
    let by_id: BTreeMap<String, &MessageExt> = received.iter().map(|m| (m.msg_id(), m)).collect();
    assert_eq!(by_id.len(), 51, "message ids are unique");
    for (id, body) in expected {
        assert_eq!(&by_id[id].body[..], &body[..], "body of {id}");
    }
    assert!(by_id[expected.keys().next().unwrap()].body.len() > 4096);
    for id in async_ids {
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
}

/// Shutdown waits for async sends it already accepted, and refuses new ones.
async fn check_shutdown_drains_async_sends_and_refuses_new(producer: &Producer) {
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

        let expected = send_large_and_batch(&producer, &q0, &q1).await;
        let async_ids = send_async_forty(&producer).await;
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
        let received = pull_all(&consumer, [&q0, &q1]).await;
        check_mixed_received(&received, &expected, &async_ids.borrow());
        consumer.shutdown();

        check_shutdown_drains_async_sends_and_refuses_new(&producer).await;
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
        let bodies = bodies(&got);
        assert_eq!(bodies, ["Aa-0", "Aa-2"]);
        consumer.shutdown().await;
        puller.shutdown();
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(cluster);
}
