//! Fixtures for handler unit tests: a real store in a temporary directory on a glommio executor,
//! a configuration, broker-wide metadata and its read copy, consumer offsets, and a one-shard
//! [`ShardMesh`] that serves cross-shard requests from the same fixture. No process, no socket.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use ringmq_proto::code::RequestCode;
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::message::ids::UniqKeyGenerator;

use super::runtime_info::{self, RequestCounters, ShardCounters};
use super::{admin, lookup, Outcome, RequestOrigin, ShardMesh};
use crate::channel::{self, ConnHandle, ConnId};
use crate::config::BrokerConfig;
use crate::metadata::groups::GroupTable;
use crate::metadata::offsets::ConsumerOffsets;
use crate::metadata::topics::TopicTable;
use crate::metadata::{BrokerView, CreateTopicReply, CreateTopicRequest, Metadata};
use crate::store::{QueryResult, Store, StoreConfig};
use crate::transaction::{TransactionConfig, TransactionService};

/// One shard's worth of state for a handler under test.
pub struct Fixture {
    /// Holds the store's directory until the fixture is dropped.
    _dir: tempfile::TempDir,
    pub config: BrokerConfig,
    pub store: Rc<Store>,
    pub metadata: RefCell<Metadata>,
    pub offsets: RefCell<ConsumerOffsets>,
    pub uniq_keys: RefCell<UniqKeyGenerator>,
    pub counters: RequestCounters,
    pub store_host: SocketAddr,
    /// Topic auto-creations asked through the mesh.
    pub creations: Cell<usize>,
    pub transaction: TransactionService,
    /// The pull handler's SQL92 cache.
    pub filters: RefCell<crate::filter::FilterCache>,
    /// The fixture itself, for mesh answers computed on tasks of their own.
    me: RefCell<std::rc::Weak<Fixture>>,
    /// Replication of the fixture's single shard (the config's role; no task started).
    pub ha: Rc<crate::ha::ShardHa>,
}

/// Runs `test` on a fresh fixture inside a glommio executor.
pub fn run<F, Fut>(test: F)
where
    F: FnOnce(Rc<Fixture>) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor (run as root or with `ulimit -l unlimited`)");
    executor.run(async move {
        let fixture = Rc::new(Fixture::open().await);
        *fixture.me.borrow_mut() = Rc::downgrade(&fixture);
        test(fixture.clone()).await;
    });
}

impl Fixture {
    async fn open() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = BrokerConfig {
            store_path_root_dir: dir.path().to_path_buf(),
            ..BrokerConfig::default()
        };
        config.broker_ip1 = "127.0.0.1".to_string();
        let mut store_config = StoreConfig::new(dir.path(), 0);
        store_config.segment_size_bytes = 16 * 1024 * 1024;
        store_config.max_record_bytes = 1024 * 1024;
        let store = Store::open(store_config).await.expect("store opens");
        let topics = TopicTable::load(dir.path(), &config).expect("topic table");
        let groups = GroupTable::load(&dir.path().join("config"), true).expect("group table");
        let metadata = Metadata::new(topics, groups, config.broker_permission, None);
        let offsets =
            ConsumerOffsets::load(ConsumerOffsets::file_path(dir.path(), 0)).expect("offsets load");
        let store_host: SocketAddr = "127.0.0.1:10911".parse().expect("address");
        let tx_config = TransactionConfig::from_broker(&config);
        let transaction = TransactionService::open(&store, dir.path(), 0, tx_config)
            .await
            .expect("transactions open");
        Fixture {
            uniq_keys: RefCell::new(UniqKeyGenerator::new(store_host.ip(), 1, 7)),
            _dir: dir,
            store: Rc::new(store),
            metadata: RefCell::new(metadata),
            offsets: RefCell::new(offsets),
            counters: RequestCounters::default(),
            store_host,
            creations: Cell::new(0),
            transaction,
            filters: RefCell::default(),
            me: RefCell::new(std::rc::Weak::new()),
            ha: crate::ha::ShardHa::new(&config, 0, 1),
            config,
        }
    }

    /// The read copy of the fixture's metadata as it is now.
    pub fn view(&self) -> Arc<BrokerView> {
        self.metadata.borrow().view()
    }

    /// Creates `topic` with `queues` read and write queues.
    pub fn create_topic(&self, topic: &str, queues: i32) {
        let mut config = ringmq_proto::body::TopicConfig::new(topic, queues);
        config.write_queue_nums = queues;
        self.metadata
            .borrow_mut()
            .topics
            .update_or_create(config)
            .expect("topic created");
    }
}

impl ShardMesh for Fixture {
    /// Two shards, answering out of order: shard 1 delivered (2, 1, 4) per level and read 9
    /// timers, shard 0 delivered (3, 0).
    fn schedule_progress_everywhere(
        &self,
    ) -> flume::Receiver<ringmq_proto::body::ShardScheduleProgress> {
        use ringmq_proto::body::ShardScheduleProgress;
        let (reply, answer) = flume::bounded(2);
        let shard = |shard, level_offsets: &[u64], timer_ingested| ShardScheduleProgress {
            shard,
            level_offsets: level_offsets.to_vec(),
            timer_ingested,
            ..ShardScheduleProgress::default()
        };
        reply.send(shard(1, &[2, 1, 4], 9)).expect("receiver held");
        reply.send(shard(0, &[3, 0], 0)).expect("receiver held");
        answer
    }

    fn create_topic_on_send(
        &self,
        request: CreateTopicRequest,
    ) -> flume::Receiver<CreateTopicReply> {
        self.creations.set(self.creations.get() + 1);
        let (reply, answer) = flume::bounded(1);
        let (result, _announce) =
            admin::create_topic_on_send(&mut self.metadata.borrow_mut(), &request);
        reply.send(result).expect("receiver held");
        answer
    }

    fn query_index_everywhere(
        &self,
        query: lookup::IndexQuery,
    ) -> flume::Receiver<Result<QueryResult, String>> {
        let (reply, answer) = flume::bounded(1);
        let store = self.store.clone();
        glommio::spawn_local(async move {
            let _ = reply.send(lookup::run_index_query(&store, &query).await);
        })
        .detach();
        answer
    }

    fn admin_everywhere(
        &self,
        query: super::stats::AdminQuery,
    ) -> flume::Receiver<Result<super::stats::AdminPart, String>> {
        let (reply, answer) = flume::bounded(1);
        let me = self.me.borrow().upgrade().expect("fixture alive");
        glommio::spawn_local(async move {
            let view = me.view();
            let scope = super::stats::ShardScope {
                store: &me.store,
                offsets: &me.offsets,
                view: &view,
                shard: crate::shard_map::ShardId(0),
                shards: 1,
                broker_name: "broker-a",
            };
            let _ = reply.send(super::stats::run_admin_query(&scope, &query).await);
        })
        .detach();
        answer
    }

    fn consumer_channels(
        &self,
        group: &str,
    ) -> flume::Receiver<Vec<crate::channel::ConsumerChannel>> {
        let (reply, answer) = flume::bounded(1);
        let channels = self.metadata.borrow().clients.consumer_members(group);
        let channels = channels
            .into_iter()
            .map(|(client_id, conn)| crate::channel::ConsumerChannel { client_id, conn })
            .collect();
        reply.send(channels).expect("receiver held");
        answer
    }

    fn counters_everywhere(&self) -> flume::Receiver<ShardCounters> {
        let (reply, answer) = flume::bounded(1);
        let counters = runtime_info::shard_counters(
            Some(&self.store),
            &self.counters,
            self.transaction.counters(),
            &self.ha,
            0,
        );
        reply.send(counters).expect("receiver held");
        answer
    }
}

/// A request with these ext fields and body.
pub fn request(code: RequestCode, fields: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
    let mut ext = ExtFields::new();
    for (name, value) in fields {
        ext.insert(*name, *value);
    }
    RemotingCommand::new_request(code.code(), ext, Bytes::copy_from_slice(body))
}

/// A connection handle whose queued commands the test can read.
pub fn connection(id: u64) -> (ConnHandle, channel::Outbound) {
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let limits = channel::ConnLimits {
        write_high_water_bytes: 1 << 20,
        write_low_water_bytes: 1 << 10,
        requests_in_flight_max: 16,
    };
    let (handle, outbound, _backpressure) = channel::new_connection(ConnId(id), peer, limits);
    (handle, outbound)
}

/// The response of an [`Outcome::Respond`]; panics on any other outcome.
pub fn responded(outcome: Outcome) -> RemotingCommand {
    match outcome {
        Outcome::Respond(response) => response,
        Outcome::Reroute { .. } => panic!("expected a response, got a reroute"),
        Outcome::Park(_) => panic!("expected a response, got a park"),
        Outcome::CallClient(_) => panic!("expected a response, got a client call"),
        Outcome::CallClients(_) => panic!("expected a response, got client calls"),
    }
}

/// The request of an [`Outcome::Reroute`]; panics on any other outcome.
pub fn rerouted(outcome: Outcome) -> RemotingCommand {
    rerouted_from(outcome).0
}

/// The request of an [`Outcome::Reroute`] and the origin it keeps; panics on any other outcome.
pub fn rerouted_from(outcome: Outcome) -> (RemotingCommand, RequestOrigin) {
    match outcome {
        Outcome::Reroute { request, origin } => (request, origin),
        Outcome::Respond(response) => panic!(
            "expected a reroute, got response {} {:?}",
            response.code, response.remark
        ),
        Outcome::Park(_) => panic!("expected a reroute, got a park"),
        Outcome::CallClient(_) => panic!("expected a reroute, got a client call"),
        Outcome::CallClients(_) => panic!("expected a reroute, got client calls"),
    }
}

/// A SEND_MESSAGE_V2 request (short names) to `(topic, queue_id)` with these properties.
pub fn send_request(topic: &str, queue_id: i32, body: &[u8], properties: &str) -> RemotingCommand {
    let header = ringmq_proto::header::SendMessageRequestHeader {
        producer_group: "producer-group".to_string(),
        topic: topic.to_string(),
        default_topic: crate::metadata::topics::AUTO_CREATE_TOPIC_KEY.to_string(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(properties.to_string()),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        max_reconsume_times: None,
        batch: Some(false),
        broker_name: None,
    };
    let mut ext = ExtFields::new();
    header.write_v2(&mut ext);
    RemotingCommand::new_request(
        RequestCode::SendMessageV2.code(),
        ext,
        Bytes::copy_from_slice(body),
    )
}

impl Fixture {
    /// The send handler's context over this fixture.
    pub fn send_context<'a>(&'a self, view: &'a BrokerView) -> super::send::SendContext<'a> {
        super::send::SendContext {
            config: &self.config,
            view,
            store: &self.store,
            uniq_keys: &self.uniq_keys,
            store_host: self.store_host,
            counters: &self.counters,
            mesh: self,
            transaction: &self.transaction,
            ha: &self.ha,
            now_ms: 1_700_000_000_000,
        }
    }

    /// Stores one message in `(topic, queue_id)` through the send handler; returns the
    /// response's `queueOffset` and `msgId`.
    pub async fn put(
        &self,
        topic: &str,
        queue_id: i32,
        body: &[u8],
        properties: &str,
    ) -> (i64, String) {
        let view = self.view();
        let request = send_request(topic, queue_id, body, properties);
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let ctx = self.send_context(&view);
        let response =
            responded(super::send::send_message(&ctx, peer, RequestOrigin::Client, &request).await);
        assert_eq!(response.code, 0, "send refused: {:?}", response.remark);
        let offset = response.ext_fields.get("queueOffset").expect("queueOffset");
        let msg_id = response.ext_fields.get("msgId").expect("msgId");
        (offset.parse().expect("number"), msg_id.to_string())
    }
}
