//! Shared harness for the name server's integration tests: the real `ringmq-namesrv` binary on
//! 127.0.0.1 (on `ringmq-testkit`'s fixtures: killed by PID on drop and with the test binary),
//! spoken to with the ringmq-proto codec over a blocking socket.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::net::SocketAddr;

use bytes::Bytes;
use ringmq_proto::body::{JsonBody, RegisterBrokerBody, TopicConfig, TopicRouteData};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    CommandHeader, EmptyHeader, GetRouteInfoRequestHeader, RegisterBrokerRequestHeader,
};
use ringmq_proto::{RequestCode, ResponseCode};
#[allow(unused_imports)] // each test file uses a different part
pub use ringmq_testkit::{free_port, wait_until, WireClient as Client, WAIT_LIMIT};
use ringmq_testkit::{ChildGuard, NamesrvProcess};

/// A running name server; killed and reaped on drop.
pub struct Namesrv {
    started: NamesrvProcess,
    pub addr: SocketAddr,
    _log_dir: tempfile::TempDir,
}

impl Namesrv {
    /// Starts the binary on an OS-assigned port with extra flags.
    pub fn start(extra_args: &[&str]) -> Namesrv {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra_args);
        Self::start_with_args(&args)
    }

    /// Starts the binary with exactly `args`, waits for its boot line, returns its address.
    pub fn start_with_args(args: &[&str]) -> Namesrv {
        let log_dir = tempfile::tempdir().expect("temp log dir");
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_ringmq-namesrv"));
        let started = NamesrvProcess::start(binary, args, log_dir.path().join("namesrv.log"));
        Namesrv {
            addr: started.addr,
            started,
            _log_dir: log_dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.started.process.pid() as u32
    }

    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.started.process
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.addr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.started.process.is_running()
    }
}

/// The name server's calls, on the shared blocking client.
pub trait NamesrvCalls {
    fn register_broker(&mut self, broker: &BrokerSpec) -> RemotingCommand;
    /// Route query: the response code, and the route when it succeeded.
    fn route(&mut self, topic: &str) -> (ResponseCode, Option<TopicRouteData>, RemotingCommand);
    fn call_empty(&mut self, code: RequestCode) -> RemotingCommand;
}

impl NamesrvCalls for Client {
    fn register_broker(&mut self, broker: &BrokerSpec) -> RemotingCommand {
        self.call(broker.register_request())
    }

    fn route(&mut self, topic: &str) -> (ResponseCode, Option<TopicRouteData>, RemotingCommand) {
        let response = self.call(route_request(topic));
        let code = ResponseCode::from_code(response.code);
        let route = (code == ResponseCode::Success)
            .then(|| TopicRouteData::from_json(&response.body).expect("route body decodes"));
        (code, route, response)
    }

    fn call_empty(&mut self, code: RequestCode) -> RemotingCommand {
        self.call(request(code, &EmptyHeader, Bytes::new()))
    }
}

pub fn request<H: CommandHeader>(code: RequestCode, header: &H, body: Bytes) -> RemotingCommand {
    let mut ext = ExtFields::new();
    header.write_to(&mut ext);
    RemotingCommand::new_request(code.code(), ext, body)
}

pub fn route_request(topic: &str) -> RemotingCommand {
    request(
        RequestCode::GetRouteinfoByTopic,
        &GetRouteInfoRequestHeader {
            topic: topic.to_owned(),
            accept_standard_json_only: None,
        },
        Bytes::new(),
    )
}

/// A broker to register: identity, topics, and whether the body is compressed.
#[derive(Clone)]
pub struct BrokerSpec {
    pub cluster: String,
    pub name: String,
    pub id: i64,
    pub addr: String,
    pub topics: Vec<(String, i32)>,
    pub compressed: bool,
    pub version: i64,
}

impl BrokerSpec {
    pub fn master(name: &str, addr: &str, topics: &[&str]) -> BrokerSpec {
        BrokerSpec {
            cluster: "DefaultCluster".to_owned(),
            name: name.to_owned(),
            id: 0,
            addr: addr.to_owned(),
            topics: topics.iter().map(|t| ((*t).to_owned(), 4)).collect(),
            compressed: false,
            version: 1,
        }
    }

    pub fn body(&self) -> RegisterBrokerBody {
        let mut body = RegisterBrokerBody::default();
        let wrapper = &mut body.topic_config_serialize_wrapper;
        wrapper.data_version.counter = self.version;
        wrapper.data_version.timestamp = 1_700_000_000_000 + self.version;
        for (topic, queues) in &self.topics {
            wrapper
                .topic_config_table
                .insert(topic.clone(), TopicConfig::new(topic, *queues));
        }
        body
    }

    pub fn register_request(&self) -> RemotingCommand {
        let body = self.body().encode(self.compressed);
        let header = RegisterBrokerRequestHeader {
            broker_name: self.name.clone(),
            broker_addr: self.addr.clone(),
            cluster_name: self.cluster.clone(),
            ha_server_addr: "127.0.0.1:10912".to_owned(),
            broker_id: self.id,
            heartbeat_timeout_millis: None,
            enable_acting_master: None,
            compressed: self.compressed,
            body_crc32: (crc32fast::hash(&body) & 0x7FFF_FFFF) as i32,
        };
        request(RequestCode::RegisterBroker, &header, Bytes::from(body))
    }
}
