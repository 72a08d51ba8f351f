//! Registration with the name servers (reference §2.11): REGISTER_BROKER to every name server at
//! start, every `registerNameServerPeriod` and right after a topic or permission change, with the
//! topic table in the body; UNREGISTER_BROKER at clean shutdown.
//!
//! Control plane, so it runs on a plain thread with blocking sockets (bounded by timeouts) and
//! never on a shard. It keeps one connection per name server open, because a name server drops
//! a broker whose registering connection closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringmq_proto::body::{JsonBody, RegisterBrokerBody, TopicConfigSerializeWrapper};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::frame::decode_frame;

use crate::config::BrokerConfig;
use crate::ha::{LearnedMaster, MasterAddrs};
use ringmq_proto::header::RegisterBrokerResponseHeader;

/// Bound on connecting to, writing to and waiting for one name server.
const NAMESRV_TIMEOUT: Duration = Duration::from_secs(3);

/// What one registration announces.
#[derive(Debug, Clone)]
pub struct RegisterSnapshot {
    pub topics: TopicConfigSerializeWrapper,
}

pub enum RegistrarMsg {
    /// Register now with this table, and keep re-registering it periodically.
    Register(Arc<RegisterSnapshot>),
    /// Unregister from every name server and end the thread.
    Stop,
}

/// Identity sent in REGISTER_BROKER / UNREGISTER_BROKER headers.
#[derive(Debug, Clone)]
struct BrokerIdentity {
    cluster_name: String,
    broker_name: String,
    broker_addr: String,
    broker_id: i64,
    /// `haServerAddr`: where this broker's slaves attach (shard 0's HA port).
    ha_server_addr: String,
    /// A slave's REGISTER_BROKER answers name its master: kept here for the HA follower.
    learned: LearnedMaster,
}

pub fn spawn_registrar(
    config: &BrokerConfig,
) -> std::io::Result<(flume::Sender<RegistrarMsg>, JoinHandle<()>)> {
    spawn_registrar_learning(config, LearnedMaster::default())
}

/// [`spawn_registrar`] that also records, for a slave, the master and HA addresses name servers
/// answer (Java's `RegisterBrokerResult`: `masterAddr`, `haServerAddr`).
pub fn spawn_registrar_learning(
    config: &BrokerConfig,
    learned: LearnedMaster,
) -> std::io::Result<(flume::Sender<RegistrarMsg>, JoinHandle<()>)> {
    let (tx, rx) = flume::unbounded();
    let identity = BrokerIdentity {
        cluster_name: config.broker_cluster_name.clone(),
        broker_name: config.broker_name.clone(),
        broker_addr: config.advertised_addr(),
        broker_id: config.broker_id,
        ha_server_addr: config.ha_server_addr(),
        learned,
    };
    let servers: Vec<NameServer> = config
        .namesrv_addrs
        .iter()
        .map(|a| NameServer::new(a))
        .collect();
    let period = Duration::from_millis(config.register_name_server_period_ms.max(1000));
    let handle = std::thread::Builder::new()
        .name("ringmq-registrar".to_string())
        .spawn(move || run(identity, servers, period, rx))?;
    Ok((tx, handle))
}

/// How soon a registration that some name server missed is tried again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

fn run(
    identity: BrokerIdentity,
    mut servers: Vec<NameServer>,
    period: Duration,
    rx: flume::Receiver<RegistrarMsg>,
) {
    let mut last: Option<Arc<RegisterSnapshot>> = None;
    let mut all_registered = true;
    loop {
        // A name server that missed a registration (not up yet, restarting) would otherwise not
        // know this broker for a whole period: try it again soon.
        let wait = if all_registered {
            period
        } else {
            period.min(RETRY_AFTER_FAILURE)
        };
        match rx.recv_timeout(wait) {
            Ok(RegistrarMsg::Register(snapshot)) => {
                // Coalesce a burst of changes into one registration of the newest table.
                let mut newest = snapshot;
                let mut stop = false;
                while let Ok(msg) = rx.try_recv() {
                    match msg {
                        RegistrarMsg::Register(s) => newest = s,
                        RegistrarMsg::Stop => stop = true,
                    }
                }
                all_registered = register_all(&identity, &mut servers, &newest);
                last = Some(newest);
                if stop {
                    break;
                }
            }
            Ok(RegistrarMsg::Stop) | Err(flume::RecvTimeoutError::Disconnected) => break,
            Err(flume::RecvTimeoutError::Timeout) => {
                if let Some(snapshot) = &last {
                    all_registered = register_all(&identity, &mut servers, snapshot);
                }
            }
        }
    }
    for server in &mut servers {
        let request = unregister_request(&identity);
        match server.call(request) {
            Ok(response) if response.code == ResponseCode::Success.code() => {
                tracing::info!(namesrv = %server.addr, "unregistered from name server")
            }
            Ok(response) => {
                tracing::warn!(namesrv = %server.addr, code = response.code, remark = ?response.remark, "UNREGISTER_BROKER refused")
            }
            Err(e) => tracing::warn!(namesrv = %server.addr, "UNREGISTER_BROKER failed: {e}"),
        }
    }
}

/// Registers with every name server; true when all of them accepted.
fn register_all(
    identity: &BrokerIdentity,
    servers: &mut [NameServer],
    snapshot: &RegisterSnapshot,
) -> bool {
    let body = RegisterBrokerBody {
        filter_server_list: Vec::new(),
        topic_config_serialize_wrapper: snapshot.topics.clone(),
    }
    .to_json();
    let body = Bytes::from(body.into_bytes());
    let mut all = true;
    for server in servers {
        let request = register_request(identity, body.clone());
        match server.call(request) {
            Ok(response) if response.code == ResponseCode::Success.code() => {
                tracing::debug!(namesrv = %server.addr, "registered with name server");
                learn_master(identity, &response);
            }
            Ok(response) => {
                all = false;
                tracing::warn!(namesrv = %server.addr, code = response.code, remark = ?response.remark, "REGISTER_BROKER refused")
            }
            Err(e) => {
                all = false;
                tracing::warn!(namesrv = %server.addr, "REGISTER_BROKER failed: {e}")
            }
        }
    }
    all
}

/// A slave keeps the master its name servers know (both addresses set, as Java sets them only
/// when the group's master is registered and live).
fn learn_master(identity: &BrokerIdentity, response: &RemotingCommand) {
    if identity.broker_id == 0 {
        return;
    }
    let Ok(header) = response.decode_header::<RegisterBrokerResponseHeader>() else {
        return;
    };
    let found = match (header.master_addr, header.ha_server_addr) {
        (Some(broker_addr), Some(ha_addr)) if !broker_addr.is_empty() && !ha_addr.is_empty() => {
            Some(MasterAddrs {
                broker_addr,
                ha_addr,
            })
        }
        _ => None,
    };
    if let Some(found) = found {
        let mut learned = identity.learned.lock().unwrap_or_else(|e| e.into_inner());
        if learned.as_ref() != Some(&found) {
            tracing::info!(master = %found.broker_addr, ha = %found.ha_addr, "name server names the master");
            *learned = Some(found);
        }
    }
}

fn register_request(identity: &BrokerIdentity, body: Bytes) -> RemotingCommand {
    let mut ext = identity_fields(identity);
    ext.insert("haServerAddr", identity.ha_server_addr.clone());
    ext.insert("compressed", "false");
    // Java's UtilAll.crc32: CRC32 of the body, masked to a non-negative int.
    let crc = crc32fast::hash(&body) & 0x7FFF_FFFF;
    ext.insert("bodyCrc32", crc.to_string());
    RemotingCommand::new_request(RequestCode::RegisterBroker.code(), ext, body)
}

fn unregister_request(identity: &BrokerIdentity) -> RemotingCommand {
    RemotingCommand::new_request(
        RequestCode::UnregisterBroker.code(),
        identity_fields(identity),
        Bytes::new(),
    )
}

fn identity_fields(identity: &BrokerIdentity) -> ExtFields {
    let mut ext = ExtFields::new();
    ext.insert("brokerName", identity.broker_name.clone());
    ext.insert("brokerAddr", identity.broker_addr.clone());
    ext.insert("clusterName", identity.cluster_name.clone());
    ext.insert("brokerId", identity.broker_id.to_string());
    ext
}

/// One name server (or, for a slave's metadata sync, its master) and the connection to it
/// (re-opened after any failure).
pub(crate) struct NameServer {
    addr: String,
    stream: Option<TcpStream>,
    read_buf: BytesMut,
    next_opaque: i32,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("address does not resolve")]
    Unresolvable,
    #[error("cannot encode request: {0}")]
    Encode(#[from] ringmq_proto::error::EncodeError),
    #[error("malformed response frame: {0}")]
    Frame(#[from] ringmq_proto::error::FrameError),
    #[error("connection closed before the response")]
    Closed,
}

/// Frames to skip while waiting for our response (server requests, stale responses).
const UNRELATED_FRAMES_MAX: usize = 64;

impl NameServer {
    pub(crate) fn new(addr: &str) -> NameServer {
        NameServer {
            addr: addr.to_string(),
            stream: None,
            read_buf: BytesMut::new(),
            next_opaque: 1,
        }
    }

    /// One request and its response. A kept connection the name server has closed meanwhile
    /// (it drops idle ones) fails on first use: then the call is made once more on a fresh one.
    pub(crate) fn call(
        &mut self,
        mut request: RemotingCommand,
    ) -> Result<RemotingCommand, CallError> {
        let reused = self.stream.is_some();
        let mut result = self.try_call(&mut request);
        if result.is_err() {
            self.stream = None;
            self.read_buf.clear();
            if reused {
                result = self.try_call(&mut request);
                if result.is_err() {
                    self.stream = None;
                    self.read_buf.clear();
                }
            }
        }
        result
    }

    fn try_call(&mut self, request: &mut RemotingCommand) -> Result<RemotingCommand, CallError> {
        if self.stream.is_none() {
            let addr: SocketAddr = self
                .addr
                .to_socket_addrs()?
                .next()
                .ok_or(CallError::Unresolvable)?;
            let stream = TcpStream::connect_timeout(&addr, NAMESRV_TIMEOUT)?;
            stream.set_read_timeout(Some(NAMESRV_TIMEOUT))?;
            stream.set_write_timeout(Some(NAMESRV_TIMEOUT))?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        request.opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.wrapping_add(1);
        let mut out = BytesMut::new();
        request.encode(&mut out)?;
        stream.write_all(&out)?;
        let mut skipped = 0;
        loop {
            while let Some(frame) = decode_frame(&mut self.read_buf)? {
                if frame.is_response() && frame.opaque == request.opaque {
                    return Ok(frame);
                }
                skipped += 1;
                if skipped > UNRELATED_FRAMES_MAX {
                    return Err(CallError::Closed);
                }
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(CallError::Closed);
            }
            self.read_buf.extend_from_slice(&chunk[..n]);
        }
    }
}
