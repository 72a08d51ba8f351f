//! Harness shared by the client's integration tests (and the admin crate's), on the shared
//! fixtures of `ringmq-testkit`:
//!
//! * [`run`] runs a test body on a small glommio executor;
//! * [`Namesrv`] is the real `ringmq-namesrv` on 127.0.0.1 (port read from its boot line);
//! * [`Broker`] is the real `ringmq-broker` (one shard, small segments) in a temporary store.
//!
//! Every process dies with the test binary and is killed by PID when its guard drops.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod cluster;

use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringmq_client::{Admin, ClientConfig};
use ringmq_proto::body::{DataVersion, JsonBody, RegisterBrokerBody, TopicConfig};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::RegisterBrokerRequestHeader;
use ringmq_proto::{decode_frame, RequestCode};
#[allow(unused_imports)] // each test file uses a different part
pub use ringmq_testkit::{run, WAIT_LIMIT};
use ringmq_testkit::{start_on_free_port_pair, workspace_binary, ChildGuard, NamesrvProcess};

/// Path of `bin` of workspace package `package`, built when stale.
pub fn binary_path(package: &str, bin: &str) -> PathBuf {
    workspace_binary(package, bin)
}

/// A running `ringmq-namesrv`; killed and reaped on drop.
pub struct Namesrv {
    started: NamesrvProcess,
    pub addr: SocketAddr,
    _log_dir: tempfile::TempDir,
}

impl Namesrv {
    /// Starts a name server on an OS-chosen loopback port.
    pub fn start() -> Namesrv {
        Namesrv::start_with(&[])
    }

    /// Starts a name server on an OS-chosen loopback port with extra flags (never on a port
    /// one used before: see [`NamesrvProcess::start`]).
    pub fn start_with(extra_args: &[&str]) -> Namesrv {
        let binary = binary_path("ringmq-namesrv", "ringmq-namesrv");
        let log_dir = tempfile::tempdir().expect("temp log dir");
        let mut args = vec!["--listen", "127.0.0.1:0", "--log-level", "warn"];
        args.extend_from_slice(extra_args);
        let started = NamesrvProcess::start(&binary, &args, log_dir.path().join("namesrv.log"));
        Namesrv {
            addr: started.addr,
            started,
            _log_dir: log_dir,
        }
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    pub fn pid(&self) -> u32 {
        self.started.process.pid() as u32
    }

    /// Kills the process now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        self.started.process.kill9();
    }
}

/// Client settings for tests: the given name servers, short timeouts.
pub fn client_config(namesrv_addrs: &[String]) -> ClientConfig {
    let mut config = ClientConfig::new(&namesrv_addrs.join(";")).expect("valid name servers");
    config.request_timeout_ms = 3_000;
    config.connect_timeout_ms = 1_000;
    config
}

/// A loopback address nothing listens on: bound by the OS, then released.
pub fn closed_port_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    addr.to_string()
}

/// A topic config as a broker registers it.
pub fn topic_config(name: &str, queues: i32, perm: i32) -> TopicConfig {
    let mut config = TopicConfig::new(name, queues);
    config.perm = perm;
    config
}

/// Registers broker `broker_name` (master, id 0) at `broker_addr` with `topics` on the name
/// server, as a broker's REGISTER_BROKER does, using the client's raw request path.
pub async fn register_broker(
    admin: &Admin,
    namesrv: &str,
    broker_name: &str,
    broker_addr: &str,
    topics: &[TopicConfig],
) {
    let header = RegisterBrokerRequestHeader {
        broker_name: broker_name.to_string(),
        broker_addr: broker_addr.to_string(),
        cluster_name: "DefaultCluster".to_string(),
        ha_server_addr: broker_addr.to_string(),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: None,
        compressed: false,
        body_crc32: 0,
    };
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper.data_version = DataVersion {
        counter: 1,
        state_version: 0,
        timestamp: 1,
    };
    for topic in topics {
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert(topic.topic_name.clone(), topic.clone());
    }
    let mut request = RemotingCommand::new_request(
        RequestCode::RegisterBroker.code(),
        ExtFields::new(),
        Bytes::from(body.to_json()),
    );
    request.set_header(&header);
    let response = admin
        .invoke(namesrv, request)
        .await
        .expect("REGISTER_BROKER answered");
    assert_eq!(
        response.code, 0,
        "REGISTER_BROKER failed: {:?}",
        response.remark
    );
}

/// A running `ringmq-broker` (one shard, small segments) in a temporary store; killed by PID
/// and reaped on drop.
pub struct Broker {
    process: ChildGuard,
    pub port: u16,
    _store: Option<tempfile::TempDir>,
}

impl Broker {
    /// Starts a broker named `broker_name` registering with `namesrv`, with `extra` flags, on
    /// fresh ports (retried on others if one was taken before the broker bound it).
    pub fn start(namesrv: &str, broker_name: &str, extra: &[&str]) -> Broker {
        Broker::start_in(namesrv, broker_name, None, extra)
    }

    /// As [`Broker::start`], with the store in `store_dir` (kept after the broker stops, for
    /// restart tests) instead of a fresh temporary directory.
    pub fn start_in(
        namesrv: &str,
        broker_name: &str,
        store_dir: Option<&std::path::Path>,
        extra: &[&str],
    ) -> Broker {
        start_on_free_port_pair(|port| {
            Broker::try_start(namesrv, broker_name, store_dir, port, extra)
        })
    }

    /// Starts a broker on `port`; `Err(log)` if it exits before listening.
    fn try_start(
        namesrv: &str,
        broker_name: &str,
        store_dir: Option<&std::path::Path>,
        port: u16,
        extra: &[&str],
    ) -> Result<Broker, String> {
        let store = match store_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("temp store dir")),
        };
        let store_path = store_dir.map_or_else(
            || store.as_ref().unwrap().path().to_path_buf(),
            |d| d.to_path_buf(),
        );
        let (port_text, store_text) = (port.to_string(), store_path.display().to_string());
        let mut args = vec![
            "--listen-port",
            &port_text,
            "--store-dir",
            &store_text,
            "--broker-ip",
            "127.0.0.1",
            "--broker-name",
            broker_name,
            "-n",
            namesrv,
            "--set",
            "mappedFileSizeCommitLog=8388608",
            "--set",
            "ringmqTailCacheBytes=4194304",
        ];
        // One shard unless the test asks for more.
        if !extra.contains(&"--cpus") {
            args.extend_from_slice(&["--cpus", "1"]);
        }
        args.extend_from_slice(extra);
        // The log goes next to the store, so a broker that fails to start can say why.
        let binary = binary_path("ringmq-broker", "ringmq-broker");
        let mut process = ChildGuard::spawn(
            "ringmq-broker",
            &binary,
            &args,
            store_path.join("broker.log"),
        );
        process.try_wait_listening(port)?;
        Ok(Broker {
            process,
            port,
            _store: store,
        })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid() as u32
    }

    /// SIGKILL (kill -9) by PID and reap: no shutdown work runs.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// SIGTERM by PID and wait for the clean exit.
    pub fn stop(&mut self) {
        self.process.terminate();
    }
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after [`WAIT_LIMIT`].
/// For conditions that depend on background work (registration, rebalancing), not for timing.
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT_LIMIT;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

/// A scripted peer on 127.0.0.1 for cases no real server produces on demand: it accepts one
/// connection and runs `script` on it in a thread, speaking real frames through the protocol
/// crate's codec over a blocking socket.
pub fn peer<F>(script: F) -> (String, std::thread::JoinHandle<()>)
where
    F: FnOnce(&mut PeerSocket) + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr").to_string();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(WAIT_LIMIT))
            .expect("read timeout");
        let mut socket = PeerSocket {
            stream,
            buffer: BytesMut::new(),
        };
        script(&mut socket);
    });
    (addr, handle)
}

pub struct PeerSocket {
    pub stream: std::net::TcpStream,
    buffer: BytesMut,
}

impl PeerSocket {
    pub fn read_command(&mut self) -> Option<RemotingCommand> {
        loop {
            if let Some(command) =
                decode_frame(&mut self.buffer).expect("client sends valid frames")
            {
                return Some(command);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn write_command(&mut self, command: &RemotingCommand) {
        let mut out = BytesMut::new();
        command.encode(&mut out).expect("encode");
        self.stream.write_all(&out).expect("write");
    }
}
