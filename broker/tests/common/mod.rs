//! Test harness: real `ringmq-broker` / `ringmq-namesrv` processes on 127.0.0.1, stopped by PID
//! when the test ends (also when it fails: the guards kill in `Drop`), and a minimal blocking
//! remoting client built on the proto codec.
//!
//! Binaries: `ringmq-broker` is this package's own (`CARGO_BIN_EXE_ringmq-broker`). The name
//! server is another package's binary, so it is built once per test run with
//! `cargo build -p ringmq-namesrv` (a no-op when fresh) and taken from the same target directory.

#![allow(dead_code)]

pub mod msg;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringmq_proto::command::{ExtFields, RemotingCommand, SerializeType};
use ringmq_proto::frame::decode_frame;

/// Bound on any single wait in these tests (start-up, a response).
pub const WAIT_MAX: Duration = Duration::from_secs(20);

pub fn broker_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringmq-broker"))
}

/// Builds (once) and locates the name server binary next to the broker binary.
pub fn namesrv_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let status = Command::new(cargo)
                .args(["build", "-p", "ringmq-namesrv", "--bin", "ringmq-namesrv"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stdout(Stdio::null())
                .status()
                .expect("run cargo build -p ringmq-namesrv");
            assert!(status.success(), "cargo build -p ringmq-namesrv failed");
            let path = broker_binary().with_file_name("ringmq-namesrv");
            assert!(path.exists(), "{} missing after build", path.display());
            path
        })
        .clone()
}

/// Ports this test binary already handed out: a port picked free is not picked again, even
/// after the process that used it stopped (another test may be restarting on it).
fn handed_out() -> std::sync::MutexGuard<'static, std::collections::HashSet<u16>> {
    static PORTS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<u16>>> =
        std::sync::OnceLock::new();
    PORTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A port p such that p and p − 2 were both free a moment ago (the broker needs both) and
/// neither was handed out before.
pub fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 1026 {
            continue;
        }
        let mut handed = handed_out();
        if handed.contains(&port) || handed.contains(&(port - 2)) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port - 2)).is_ok() {
            handed.extend([port, port - 2]);
            return port;
        }
    }
    panic!("no free port pair found");
}

/// A free port not handed out before.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if handed_out().insert(port) {
            return port;
        }
    }
    panic!("no free port found");
}

/// A child process killed (SIGKILL) and reaped when dropped, unless stopped before.
pub struct ProcessGuard {
    child: Option<Child>,
    pub name: String,
    pub log_path: PathBuf,
}

impl ProcessGuard {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: sending a signal to our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_exit(&mut child)
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_exit(&mut child)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > WAIT_MAX {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {WAIT_MAX:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_logged(name: &str, binary: &Path, args: &[String], log_dir: &Path) -> ProcessGuard {
    let log_path = log_dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new(binary);
    die_with_this_process(&mut command);
    let child = command
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("NAMESRV_ADDR")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
    ProcessGuard {
        child: Some(child),
        name: name.to_string(),
        log_path,
    }
}

/// Waits until `port` accepts connections, or the process exits (then panics with its log).
fn wait_listening(guard: &mut ProcessGuard, port: u16) {
    if let Err(log) = try_wait_listening(guard, port) {
        panic!("{} exited before listening on {port}:\n{log}", guard.name);
    }
}

/// Waits until `port` accepts connections; `Err(log)` if the process exited first.
fn try_wait_listening(guard: &mut ProcessGuard, port: u16) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = guard.child.as_mut().unwrap().try_wait().unwrap() {
            return Err(format!("exit status {status}\n{}", guard.log()));
        }
        assert!(
            started.elapsed() < WAIT_MAX,
            "{} not listening on {port}:\n{}",
            guard.name,
            guard.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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

/// Starts a broker with `--cpus 2` (unless `extra` sets cpus) on fresh ports.
/// Starts a broker on fresh ports. A port picked free can be taken by another process before
/// the broker binds it; the broker then refuses to start ("already in use") and this retries
/// with other ports, a bounded number of times.
pub fn start_broker(store_dir: &Path, extra: &[&str]) -> Broker {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let port = free_port_pair();
        match try_start_broker_on(store_dir, port, extra) {
            Ok(broker) => return broker,
            Err(log) if log.contains("already in use") && attempt < ATTEMPTS => continue,
            Err(log) => panic!("broker on {port} did not start:\n{log}"),
        }
    }
    unreachable!("the last attempt returns or panics")
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
    try_wait_listening(&mut process, port)?;
    try_wait_listening(&mut process, port - 2)?;
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

/// Starts a name server on a fresh port, retrying (bounded) if the port was taken meanwhile.
pub fn start_namesrv(log_dir: &Path) -> NameServer {
    start_namesrv_with(log_dir, &[])
}

pub fn start_namesrv_with(log_dir: &Path, extra: &[&str]) -> NameServer {
    const ATTEMPTS: usize = 3;
    let binary = namesrv_binary();
    for attempt in 1..=ATTEMPTS {
        let port = free_port();
        let mut args = vec!["--listen".to_string(), format!("127.0.0.1:{port}")];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut process = spawn_logged(&format!("namesrv-{port}"), &binary, &args, log_dir);
        match try_wait_listening(&mut process, port) {
            Ok(()) => return NameServer { process, port },
            Err(log) if attempt < ATTEMPTS => {
                eprintln!("name server on {port} did not start, retrying:\n{log}")
            }
            Err(log) => panic!("name server on {port} did not start:\n{log}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// A blocking remoting client: one connection, requests answered by opaque.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    next_opaque: i32,
    /// Requests the server sent us (NOTIFY_CONSUMER_IDS_CHANGED, ...), in arrival order.
    pub server_requests: Vec<RemotingCommand>,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(WAIT_MAX)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: BytesMut::new(),
            next_opaque: 1,
            server_requests: Vec::new(),
        }
    }

    pub fn request(code: i32, fields: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
        let mut ext = ExtFields::new();
        for (k, v) in fields {
            ext.insert(*k, *v);
        }
        RemotingCommand::new_request(code, ext, Bytes::copy_from_slice(body))
    }

    /// Sends `request` with a fresh opaque and returns that opaque.
    pub fn send(&mut self, mut request: RemotingCommand) -> i32 {
        let opaque = self.next_opaque;
        self.next_opaque += 1;
        request.opaque = opaque;
        let mut out = BytesMut::new();
        request.encode(&mut out).unwrap();
        self.stream.write_all(&out).unwrap();
        opaque
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads the next response (server requests are collected on the way).
    pub fn read_response(&mut self) -> RemotingCommand {
        loop {
            let frame = self
                .read_frame()
                .expect("connection closed while waiting for a response");
            if frame.is_response() {
                return frame;
            }
            self.server_requests.push(frame);
        }
    }

    /// The next frame, or `None` when the server closed the connection.
    pub fn read_frame(&mut self) -> Option<RemotingCommand> {
        loop {
            if let Some(frame) = decode_frame(&mut self.buf).expect("server sent a malformed frame")
            {
                return Some(frame);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Sends and waits for the response with the same opaque.
    pub fn call(&mut self, request: RemotingCommand) -> RemotingCommand {
        let opaque = self.send(request);
        let response = self.read_response();
        assert_eq!(response.opaque, opaque, "responses arrive per request here");
        response
    }

    pub fn call_code(
        &mut self,
        code: i32,
        fields: &[(&str, &str)],
        body: &[u8],
    ) -> RemotingCommand {
        self.call(Client::request(code, fields, body))
    }

    /// Waits (bounded) for a server-initiated request with `code`.
    pub fn wait_server_request(&mut self, code: i32) -> RemotingCommand {
        if let Some(i) = self.server_requests.iter().position(|r| r.code == code) {
            return self.server_requests.remove(i);
        }
        loop {
            let frame = self
                .read_frame()
                .expect("closed while waiting for a server request");
            if !frame.is_response() && frame.code == code {
                return frame;
            }
            if !frame.is_response() {
                self.server_requests.push(frame);
            }
        }
    }

    /// Whether the server closed this connection (reads until EOF, bounded by the timeout).
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

pub fn json_request(code: i32, fields: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
    Client::request(code, fields, body)
}

pub fn rocketmq_request(code: i32, fields: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
    let mut request = Client::request(code, fields, body);
    request.serialize_type = SerializeType::RocketMq;
    request
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The child gets SIGKILL when the thread that started it ends (the test's thread, or the
/// whole test binary if it is killed), so no server outlives its test.
pub fn die_with_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
