//! What a client derives from a topic's route: the queues it may write and read, and where each
//! broker is.

use std::collections::BTreeMap;

use ringmq_proto::body::{perm, TopicRouteData, MASTER_ID};

use crate::queue::MessageQueue;

/// A topic's route as a client uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRoute {
    pub topic: String,
    pub data: TopicRouteData,
    /// Queues a producer may send to: writable queue data whose broker has a master, sorted by
    /// broker name (Java `topicRouteData2TopicPublishInfo`).
    pub write_queues: Vec<MessageQueue>,
    /// Queues a consumer may read: every readable queue, sorted (Java
    /// `topicRouteData2TopicSubscribeInfo`).
    pub read_queues: Vec<MessageQueue>,
}

impl TopicRoute {
    pub fn new(topic: &str, data: TopicRouteData) -> TopicRoute {
        let mut queue_datas = data.queue_datas.clone();
        queue_datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        let mut write_queues = Vec::new();
        let mut read_queues = Vec::new();
        for queue_data in &queue_datas {
            let has_master = data
                .broker_datas
                .iter()
                .any(|b| b.broker_name == queue_data.broker_name && b.master_addr().is_some());
            if queue_data.perm & perm::WRITE != 0 && has_master {
                for id in 0..queue_data.write_queue_nums.max(0) {
                    write_queues.push(MessageQueue::new(topic, &queue_data.broker_name, id));
                }
            }
            if queue_data.perm & perm::READ != 0 {
                for id in 0..queue_data.read_queue_nums.max(0) {
                    read_queues.push(MessageQueue::new(topic, &queue_data.broker_name, id));
                }
            }
        }
        read_queues.sort();
        TopicRoute {
            topic: topic.to_string(),
            data,
            write_queues,
            read_queues,
        }
    }

    /// A route for `topic` built from the TBW102 template route, as the Java producer does for a
    /// topic the name servers do not know yet: each template broker offers
    /// `min(default_queue_nums, template readQueueNums)` queues, and the broker auto-creates the
    /// topic on the first send.
    pub fn from_template(topic: &str, template: &TopicRouteData, default_queue_nums: i32) -> Self {
        let mut data = template.clone();
        for queue_data in &mut data.queue_datas {
            let queues = default_queue_nums.min(queue_data.read_queue_nums);
            queue_data.read_queue_nums = queues;
            queue_data.write_queue_nums = queues;
        }
        TopicRoute::new(topic, data)
    }

    /// Address of `broker_name`'s master.
    pub fn master_addr(&self, broker_name: &str) -> Option<&str> {
        self.data
            .broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)
            .and_then(|b| b.master_addr())
    }

    /// Address to read from: the master, else the lowest-id slave (RocketMQ lets slaves serve
    /// reads when the master is gone).
    pub fn read_addr(&self, broker_name: &str) -> Option<&str> {
        self.subscribe_addr(broker_name, MASTER_ID)
    }

    /// Java's `findBrokerAddressInSubscribe(brokerName, brokerId, false)`: the address of
    /// `broker_id` (a master's `suggestWhichBrokerId`), else the master, else the lowest-id
    /// slave, so consumers keep reading from a slave while the master is gone.
    pub fn subscribe_addr(&self, broker_name: &str, broker_id: i64) -> Option<&str> {
        let broker = self
            .data
            .broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)?;
        broker
            .broker_addrs
            .get(&broker_id)
            .map(String::as_str)
            .or_else(|| broker.master_addr())
            .or_else(|| broker.broker_addrs.values().next().map(String::as_str))
    }

    /// Every broker address of the route, by broker name and id.
    pub fn broker_addrs(&self) -> BTreeMap<String, BTreeMap<i64, String>> {
        self.data
            .broker_datas
            .iter()
            .map(|b| (b.broker_name.clone(), b.broker_addrs.clone()))
            .collect()
    }

    /// Master addresses of the route.
    pub fn master_addrs(&self) -> Vec<String> {
        self.data
            .broker_datas
            .iter()
            .filter_map(|b| b.broker_addrs.get(&MASTER_ID).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_proto::body::{BrokerData, QueueData};

    fn route_data() -> TopicRouteData {
        let mut with_master = BrokerData::new("c", "broker-b");
        with_master.broker_addrs.insert(0, "127.0.0.1:10911".into());
        let mut slave_only = BrokerData::new("c", "broker-a");
        slave_only.broker_addrs.insert(1, "127.0.0.1:20911".into());
        TopicRouteData {
            broker_datas: vec![with_master, slave_only],
            queue_datas: vec![
                QueueData {
                    broker_name: "broker-b".into(),
                    perm: perm::READ | perm::WRITE,
                    read_queue_nums: 2,
                    write_queue_nums: 3,
                    topic_sys_flag: 0,
                },
                QueueData {
                    broker_name: "broker-a".into(),
                    perm: perm::READ | perm::WRITE,
                    read_queue_nums: 1,
                    write_queue_nums: 1,
                    topic_sys_flag: 0,
                },
            ],
            ..TopicRouteData::default()
        }
    }

    #[test]
    fn producers_skip_brokers_without_master_consumers_do_not() {
        let route = TopicRoute::new("T", route_data());
        let written: Vec<String> = route.write_queues.iter().map(|q| q.to_string()).collect();
        assert_eq!(written, ["T@broker-b#0", "T@broker-b#1", "T@broker-b#2"]);
        let read: Vec<String> = route.read_queues.iter().map(|q| q.to_string()).collect();
        assert_eq!(read, ["T@broker-a#0", "T@broker-b#0", "T@broker-b#1"]);
        assert_eq!(route.master_addr("broker-b"), Some("127.0.0.1:10911"));
        assert_eq!(route.master_addr("broker-a"), None);
        assert_eq!(route.read_addr("broker-a"), Some("127.0.0.1:20911"));
        // A suggested slave id is followed when present; an absent one falls back.
        assert_eq!(route.subscribe_addr("broker-a", 1), Some("127.0.0.1:20911"));
        assert_eq!(route.subscribe_addr("broker-b", 1), Some("127.0.0.1:10911"));
        assert_eq!(route.subscribe_addr("broker-b", 0), Some("127.0.0.1:10911"));
        assert_eq!(route.master_addrs(), ["127.0.0.1:10911"]);
    }

    #[test]
    fn permissions_gate_reading_and_writing() {
        let mut data = route_data();
        data.queue_datas[0].perm = perm::READ;
        let route = TopicRoute::new("T", data);
        assert!(route.write_queues.is_empty());
        assert_eq!(route.read_queues.len(), 3);
    }

    #[test]
    fn template_route_caps_queues_at_the_default_count() {
        let mut template = route_data();
        template.queue_datas[0].read_queue_nums = 8;
        template.queue_datas[0].write_queue_nums = 8;
        let route = TopicRoute::from_template("New", &template, 4);
        assert_eq!(route.write_queues.len(), 4);
        assert!(route.write_queues.iter().all(|q| q.topic == "New"));
        let route = TopicRoute::from_template("New", &template, 16);
        assert_eq!(route.write_queues.len(), 8);
    }
}
