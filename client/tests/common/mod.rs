//! Harness shared by the client's integration tests.
//!
//! * [`run`] runs a test body on a small glommio executor (256 KiB of I/O memory, so many tests
//!   fit in a low `ulimit -l`).
//! * [`Namesrv`] starts the real `ringmq-namesrv` binary on 127.0.0.1 (port chosen by the OS and
//!   read from its boot line) and kills it by PID when dropped, also when a test fails.
//! * Locating the binary: another package's binary has no `CARGO_BIN_EXE_*` variable, so
//!   [`binary_path`] runs `cargo build -p <package> --bin <name> --message-format=json` with the
//!   same cargo that runs the tests (a no-op when it is up to date, which `scripts/test.sh`
//!   ensures) and takes the executable path cargo reports. This follows `CARGO_TARGET_DIR`,
//!   profiles and workspace layout without guessing paths.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod cluster;

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use glommio::{LocalExecutorBuilder, Placement};
use ringmq_client::{Admin, ClientConfig};
use ringmq_proto::body::{DataVersion, JsonBody, RegisterBrokerBody, TopicConfig};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::RegisterBrokerRequestHeader;
use ringmq_proto::{decode_frame, RequestCode};

/// Upper bound for anything a test waits on; a healthy run needs a small fraction of it.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// Runs `body` to completion on a fresh glommio executor thread.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(256 * 1024)
        .spawn(move || async move { body().await })
        .expect("start glommio executor")
        .join()
        .expect("test body panicked");
}

/// Path of `bin` of workspace package `package`, building it if needed (see module docs).
pub fn binary_path(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    let output = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            package,
            "--bin",
            bin,
            "--message-format=json",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build for a test binary");
    assert!(output.status.success(), "cargo build -p {package} failed");
    let path = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == bin)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for {bin}"));
    built.insert(bin.to_string(), path.clone());
    path
}

/// A running `ringmq-namesrv`; killed and reaped on drop.
pub struct Namesrv {
    child: Child,
    pub addr: SocketAddr,
}

impl Namesrv {
    /// Starts a name server on an OS-chosen loopback port.
    pub fn start() -> Namesrv {
        Namesrv::start_with(&[])
    }

    /// Starts a name server on an OS-chosen loopback port with extra flags.
    ///
    /// Never restart one on a port it used before: listeners here set SO_REUSEPORT, so a
    /// port freed by a kill can meanwhile be bound by another test's process, and both would
    /// then share its connections.
    pub fn start_with(extra_args: &[&str]) -> Namesrv {
        let binary = binary_path("ringmq-namesrv", "ringmq-namesrv");
        let stderr = if std::env::var_os("RINGMQ_TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start ringmq-namesrv");
        let stdout = child.stdout.take().expect("piped stdout");
        // The guard exists before waiting, so the child is killed even if it never boots.
        let mut guard = Namesrv {
            child,
            addr: "127.0.0.1:0".parse().expect("literal address"),
        };
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines_rx
                .recv_timeout(left)
                .expect("ringmq-namesrv printed its boot line in time");
            if let Some(addr) = line.strip_prefix("The Name Server boot success. listening on ") {
                guard.addr = addr.trim().parse().expect("boot line names an address");
                return guard;
            }
        }
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Namesrv {
    fn drop(&mut self) {
        self.kill();
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

/// Free loopback ports `p`, `p - 2` and `p + 1` (a broker listens on the first two: the VIP
/// port is p − 2; a master's HA port is p + 1, which the replication tests use).
/// A port is never handed out twice in one test process: brokers listen with SO_REUSEPORT, so
/// two tests given the same free port would both bind it and share its connections.
fn free_port_pair() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let taken = |p: u16| handed_out.iter().any(|h| h.abs_diff(p) <= 2);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if port > 1026 && port < u16::MAX && !taken(port) && free(port - 2) && free(port + 1) {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free port pair");
}

/// A running `ringmq-broker` (one shard, small segments) in a temporary store; killed by PID
/// and reaped on drop.
pub struct Broker {
    child: Child,
    pub port: u16,
    _store: Option<tempfile::TempDir>,
    log_path: PathBuf,
}

impl Broker {
    /// Starts a broker named `broker_name` registering with `namesrv`, with `extra` flags.
    ///
    /// A free port can be taken by another process (an outgoing connection's ephemeral port, a
    /// concurrently started server) between picking it and the broker binding it; a start that
    /// fails because its port is taken ("… is already in use", the broker's words) is retried on
    /// new ports, up to three times.
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
        let mut last_log = String::new();
        for _ in 0..3 {
            match Broker::try_start(namesrv, broker_name, store_dir, extra) {
                Ok(broker) => return broker,
                Err(log) if log.contains("already in use") => last_log = log,
                Err(log) => panic!("ringmq-broker exited before listening:\n{log}"),
            }
        }
        panic!("ringmq-broker found no free port in three tries:\n{last_log}");
    }

    /// Starts a broker on fresh ports; `Err(log)` if it exits before listening.
    fn try_start(
        namesrv: &str,
        broker_name: &str,
        store_dir: Option<&std::path::Path>,
        extra: &[&str],
    ) -> Result<Broker, String> {
        let binary = binary_path("ringmq-broker", "ringmq-broker");
        let store = match store_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("temp store dir")),
        };
        let store_path = store_dir.map_or_else(
            || store.as_ref().unwrap().path().to_path_buf(),
            |d| d.to_path_buf(),
        );
        let port = free_port_pair();
        let port_text = port.to_string();
        let store_text = store_path.display().to_string();
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
        let log_path = store_path.join("broker.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("create broker log");
        let child = Command::new(binary)
            .args(&args)
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start ringmq-broker");
        let mut broker = Broker {
            child,
            port,
            _store: store,
            log_path,
        };
        broker.wait_listening()?;
        Ok(broker)
    }

    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + WAIT_LIMIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if self.child.try_wait().expect("poll broker").is_some() {
                return Err(std::fs::read_to_string(&self.log_path).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "broker not listening in time");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (kill -9) by PID and reap: no shutdown work runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM by PID and wait for the clean exit.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on the PID of a child this struct owns and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
