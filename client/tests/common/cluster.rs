//! A name server and one broker for the end-to-end tests, and the fixtures they share: client
//! configuration, topic creation, a recording listener, push-consumer settings.

use std::cell::RefCell;
use std::rc::Rc;

use ringmq_client::{
    Admin, ClientConfig, ConsumeFrom, ConsumeStatus, MessageExt, MessageQueue, PushConsumerConfig,
    TopicConfig,
};

use super::{client_config, wait_until, Broker, Namesrv};

/// A name server and one broker (`broker-a`) registered with it.
pub struct Cluster {
    pub namesrv: Namesrv,
    pub broker: Broker,
}

impl Cluster {
    pub fn start() -> Cluster {
        let namesrv = Namesrv::start();
        let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
        Cluster { namesrv, broker }
    }

    pub fn addrs(&self) -> (String, String) {
        (self.namesrv.addr_string(), self.broker.addr())
    }
}

pub fn config(namesrv: &str) -> ClientConfig {
    client_config(&[namesrv.to_string()])
}

pub async fn create_topic(admin: &Admin, broker: &str, name: &str, queues: i32) {
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

/// The bodies of the messages received so far, as text, in arrival order.
pub fn bodies(received: &Received) -> Vec<String> {
    received
        .borrow()
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

pub type Received = Rc<RefCell<Vec<MessageExt>>>;

/// A listener that records every message it gets and accepts it.
pub fn recorder() -> (
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

pub fn push_config(namesrv: &str, group: &str, instance: &str) -> PushConsumerConfig {
    let mut client = config(namesrv);
    client.instance_name = instance.to_string();
    let mut config = PushConsumerConfig::new(client, group);
    config.consume_from = ConsumeFrom::FirstOffset;
    config.rebalance_interval_ms = 500;
    config.commit_interval_ms = 200;
    config
}

pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
