//! A client connection as the rest of the broker sees it: an id and a handle that queues
//! commands for the connection's writer. `Send + Clone`, so any shard can answer on any
//! connection and client registrations can keep one. The socket itself, its reader and its
//! writer live in `server::conn`; nothing here does I/O.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::Arc;

use ringmq_proto::command::{RemotingCommand, SerializeType};

/// Globally unique connection id: shard index in the top 16 bits, a per-shard counter below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    pub fn new(shard: usize, counter: u64) -> ConnId {
        assert!(shard < 1 << 16);
        assert!(counter < 1 << 48);
        ConnId((shard as u64) << 48 | counter)
    }
}

/// What any shard holds to talk to a connection: `Send + Clone`, cheap to copy into a forwarded
/// request or a client registration.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: ConnId,
    pub peer: SocketAddr,
    outbound: flume::Sender<RemotingCommand>,
    /// The serialize type the client last used; server-initiated requests use it.
    last_serialize_type: Arc<AtomicU8>,
    /// Opaque counter for server-initiated requests on this connection.
    next_opaque: Arc<AtomicI32>,
}

impl ConnHandle {
    /// Queues a response (or any command already carrying its opaque) for the writer. A closed
    /// connection drops it: there is nobody left to answer.
    pub fn send(&self, command: RemotingCommand) {
        let _closed = self.outbound.send(command);
    }

    /// Sends a server-initiated request (e.g. NOTIFY_CONSUMER_IDS_CHANGED): a fresh opaque from
    /// this connection's counter, in the serialize type the client last used (JSON if unknown).
    pub fn send_request(&self, mut request: RemotingCommand) {
        request.opaque = self.next_opaque.fetch_add(1, Ordering::Relaxed);
        request.serialize_type =
            SerializeType::from_byte(self.last_serialize_type.load(Ordering::Relaxed))
                .unwrap_or(SerializeType::Json);
        self.send(request);
    }

    /// Whether the connection is still open (its writer still listens).
    pub fn is_open(&self) -> bool {
        !self.outbound.is_disconnected()
    }

    pub(crate) fn note_serialize_type(&self, serialize_type: SerializeType) {
        self.last_serialize_type
            .store(serialize_type.byte(), Ordering::Relaxed);
    }
}

/// Creates the handle and the writer's receiving end for a new connection.
pub fn new_connection(
    id: ConnId,
    peer: SocketAddr,
) -> (ConnHandle, flume::Receiver<RemotingCommand>) {
    let (tx, rx) = flume::unbounded();
    let handle = ConnHandle {
        id,
        peer,
        outbound: tx,
        last_serialize_type: Arc::new(AtomicU8::new(SerializeType::Json.byte())),
        next_opaque: Arc::new(AtomicI32::new(1)),
    };
    (handle, rx)
}
