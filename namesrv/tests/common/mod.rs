//! Shared harness for the integration tests: starts the real `ringmq-namesrv` binary on
//! 127.0.0.1, talks to it with the ringmq-proto codec over plain blocking sockets, and kills it
//! by PID when the guard drops (also when a test fails).

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringmq_proto::body::{JsonBody, RegisterBrokerBody, TopicConfig, TopicRouteData};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    CommandHeader, EmptyHeader, GetRouteInfoRequestHeader, RegisterBrokerRequestHeader,
};
use ringmq_proto::{decode_frame, RequestCode, ResponseCode};

/// Upper bound for anything a test waits on; a healthy run needs a small fraction of it.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// A running name server; killed and reaped on drop.
pub struct Namesrv {
    child: Child,
    pub addr: SocketAddr,
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
        let stderr = if std::env::var_os("RINGMQ_TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start ringmq-namesrv");
        let stdout = child.stdout.take().expect("piped stdout");
        // Construct the guard now, so the child is killed even if the boot line never comes.
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Namesrv {
    fn drop(&mut self) {
        // SIGKILL by PID; then reap so no zombie is left behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking remoting client over one TCP connection.
pub struct Client {
    pub stream: TcpStream,
    inbound: BytesMut,
    next_opaque: i32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, WAIT_LIMIT).expect("connect to namesrv");
        stream
            .set_read_timeout(Some(WAIT_LIMIT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(WAIT_LIMIT))
            .expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            inbound: BytesMut::new(),
            next_opaque: 1,
        }
    }

    /// Sends `request` with a fresh opaque and returns the response carrying that opaque.
    pub fn call(&mut self, mut request: RemotingCommand) -> RemotingCommand {
        let opaque = self.send(&mut request);
        self.read_response(opaque)
    }

    /// Sends without waiting; returns the opaque used.
    pub fn send(&mut self, request: &mut RemotingCommand) -> i32 {
        request.opaque = self.next_opaque;
        self.next_opaque += 1;
        let mut out = BytesMut::new();
        request.encode(&mut out).expect("encode request");
        self.stream.write_all(&out).expect("write request");
        request.opaque
    }

    /// Reads frames until the response with `opaque` arrives. Any other frame fails the test.
    pub fn read_response(&mut self, opaque: i32) -> RemotingCommand {
        let response = self
            .read_frame()
            .expect("the server answered before closing");
        assert!(response.is_response(), "got a request from the name server");
        assert_eq!(
            response.opaque, opaque,
            "responses come back in request order here"
        );
        response
    }

    /// The next frame, or `None` if the server closed the connection.
    pub fn read_frame(&mut self) -> Option<RemotingCommand> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = decode_frame(&mut self.inbound).expect("server frames decode") {
                return Some(frame);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.inbound.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(error) => panic!("reading from namesrv: {error}"),
            }
        }
    }

    /// True once the server has closed this connection (EOF or reset), within the wait limit.
    pub fn is_closed_by_server(&mut self) -> bool {
        self.read_frame().is_none()
    }

    pub fn register_broker(&mut self, broker: &BrokerSpec) -> RemotingCommand {
        self.call(broker.register_request())
    }

    /// Route query: the response code, and the route when it succeeded.
    pub fn route(
        &mut self,
        topic: &str,
    ) -> (ResponseCode, Option<TopicRouteData>, RemotingCommand) {
        let response = self.call(route_request(topic));
        let code = ResponseCode::from_code(response.code);
        let route = (code == ResponseCode::Success)
            .then(|| TopicRouteData::from_json(&response.body).expect("route body decodes"));
        (code, route, response)
    }

    pub fn call_empty(&mut self, code: RequestCode) -> RemotingCommand {
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

/// Polls `condition` every 50 ms until it holds; fails the test after [`WAIT_LIMIT`].
/// Used for effects that happen on the server's schedule (expiry, close handling): the test
/// asserts the effect happens, never how fast.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

/// A free port on 127.0.0.1 (bound and released; the tiny race is acceptable for tests that
/// must name a port up front, such as the config-file test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}
