//! Broker test harness: real `ringmq-broker` / `ringmq-namesrv` processes on 127.0.0.1 with the
//! broker tests' defaults (two shards, small segments), on the shared fixtures of
//! `ringmq-testkit` (processes killed by PID on drop and with the test binary, ports never
//! handed out twice, a blocking remoting client).

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod msg;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ringmq_proto::command::RemotingCommand;
pub use ringmq_testkit::{free_port, free_port_pair, start_on_free_port_pair, ChildGuard};
use ringmq_testkit::{workspace_binary, NamesrvProcess};

/// The broker tests' names for the shared fixtures.
pub use ringmq_testkit::ChildGuard as ProcessGuard;
pub use ringmq_testkit::WireClient as Client;

/// Bound on any single wait in these tests (start-up, a response).
pub const WAIT_MAX: Duration = ringmq_testkit::WAIT_LIMIT;

pub fn broker_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringmq-broker"))
}

pub fn namesrv_binary() -> PathBuf {
    workspace_binary("ringmq-namesrv", "ringmq-namesrv")
}

fn spawn_logged(name: &str, binary: &Path, args: &[String], log_dir: &Path) -> ProcessGuard {
    ChildGuard::spawn(name, binary, args, log_dir.join(format!("{name}.log")))
}

pub struct Broker {
    pub process: ProcessGuard,
    pub port: u16,
    pub store_dir: PathBuf,
}

impl Broker {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.addr())
    }
}

/// Starts a broker with `--cpus 2` (unless `extra` sets cpus) on fresh ports, retried on other
/// ports if one was taken meanwhile.
pub fn start_broker(store_dir: &Path, extra: &[&str]) -> Broker {
    start_on_free_port_pair(|port| try_start_broker_on(store_dir, port, extra))
}

/// Starts a broker on `port` (e.g. the port of a broker that just stopped).
pub fn start_broker_on(store_dir: &Path, port: u16, extra: &[&str]) -> Broker {
    try_start_broker_on(store_dir, port, extra)
        .unwrap_or_else(|log| panic!("broker on {port} did not start:\n{log}"))
}

fn try_start_broker_on(store_dir: &Path, port: u16, extra: &[&str]) -> Result<Broker, String> {
    let mut args: Vec<String> = vec![
        "--listen-port".into(),
        port.to_string(),
        "--store-dir".into(),
        store_dir.display().to_string(),
        "--broker-ip".into(),
        "127.0.0.1".into(),
    ];
    // Small segments and caches: tests store little, and several brokers run at once.
    args.extend(
        [
            "--set",
            "mappedFileSizeCommitLog=8388608",
            "--set",
            "ringmqTailCacheBytes=4194304",
        ]
        .map(String::from),
    );
    if !extra.contains(&"--cpus") {
        args.extend(["--cpus".to_string(), "2".to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let log_dir = store_dir.parent().unwrap_or(store_dir);
    let mut process = spawn_logged(&format!("broker-{port}"), &broker_binary(), &args, log_dir);
    process.try_wait_listening(port)?;
    process.try_wait_listening(port - 2)?;
    Ok(Broker {
        process,
        port,
        store_dir: store_dir.to_path_buf(),
    })
}

/// Runs the broker expecting it to refuse to start; returns (exit status, log).
pub fn run_broker_expecting_failure(
    store_dir: &Path,
    extra: &[&str],
) -> (std::process::ExitStatus, String) {
    let mut args: Vec<String> = vec!["--store-dir".into(), store_dir.display().to_string()];
    if !extra.contains(&"--listen-port") {
        args.extend(["--listen-port".to_string(), free_port_pair().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let log_dir = store_dir.parent().unwrap_or(store_dir);
    let mut process = spawn_logged("broker-failing", &broker_binary(), &args, log_dir);
    let status = process.wait_exit();
    (status, process.log())
}

pub struct NameServer {
    pub process: ProcessGuard,
    pub port: u16,
}

impl NameServer {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Starts a name server on an OS-chosen port (read from its boot line).
pub fn start_namesrv(log_dir: &Path) -> NameServer {
    start_namesrv_with(log_dir, &[])
}

pub fn start_namesrv_with(log_dir: &Path, extra: &[&str]) -> NameServer {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let log_path = log_dir.join(format!("namesrv-{}.log", free_port()));
    let started = NamesrvProcess::start(&namesrv_binary(), &args, log_path);
    NameServer {
        process: started.process,
        port: started.addr.port(),
    }
}

pub fn json_request(code: i32, fields: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
    Client::request(code, fields, body)
}

pub fn rocketmq_request(code: i32, fields: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
    Client::rocketmq_request(code, fields, body)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
