//! The client's typed errors. Each variant says what went wrong and where; the doc comment of each
//! says what a caller can do about it.

use ringmq_proto::code::ResponseCode;

/// Everything a client operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connect failed. The next request to the same address tries again.
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The connection broke (or was closed) while the request was in flight. The request may or
    /// may not have been processed by the server; the next request reconnects.
    #[error("connection to {addr} closed: {reason}")]
    ConnectionClosed { addr: String, reason: String },
    /// No response within the request's timeout. The server may still process the request.
    #[error("request code {request_code} to {addr} timed out after {timeout_ms} ms")]
    Timeout {
        addr: String,
        request_code: i32,
        timeout_ms: u64,
    },
    /// The server sent bytes that are not a valid remoting frame; the connection was closed.
    #[error("malformed frame from {addr}: {detail}")]
    Frame { addr: String, detail: String },
    /// The server answered with a non-success response code.
    #[error("{addr} answered request {request_code} with code {code}: {remark}")]
    Server {
        addr: String,
        request_code: i32,
        code: i32,
        remark: String,
    },
    /// The server answered success but the response lacks a field or carries an undecodable one.
    #[error("bad response from {addr} to request {request_code}: {detail}")]
    BadResponse {
        addr: String,
        request_code: i32,
        detail: String,
    },
    /// The configuration has no name server address, or an address is not `host:port`.
    #[error("configuration: {0}")]
    Config(String),
    /// No name server answered; every configured address was tried.
    #[error("no name server reachable; last error: {last}")]
    NameServerUnavailable { last: Box<ClientError> },
    /// The topic has no route (not on the name servers, and no TBW102 fallback applied).
    #[error("no route for topic {topic}")]
    NoRoute { topic: String },
    /// The route has no queue usable for this operation (no master broker, no writable queue).
    #[error("topic {topic} has no {what} queue")]
    NoQueue { topic: String, what: &'static str },
    /// The message is invalid before anything was sent (empty topic, too large, bad batch).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A message in a pull body could not be decoded. Nothing of that pull was delivered and
    /// the queue's offset did not move: the next pull asks for the same messages.
    #[error("undecodable message from {addr}: {source}")]
    Decode {
        addr: String,
        #[source]
        source: crate::message::DecodeError,
    },
    /// The client (producer or consumer) has been shut down.
    #[error("client is shut down")]
    Shutdown,
    /// A send failed on every attempt; `last` is the final attempt's error.
    #[error("send failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        attempts: u32,
        last: Box<ClientError>,
    },
}

impl ClientError {
    /// The server's response code, when the server answered with an error.
    pub fn response_code(&self) -> Option<i32> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            ClientError::RetriesExhausted { last, .. } => last.response_code(),
            _ => None,
        }
    }

    /// Whether a producer should retry this failure on another broker, as the Java producer does:
    /// transport failures and the response codes in its `retryResponseCodes` set.
    pub fn is_retriable_send_failure(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::ConnectionClosed { .. }
            | ClientError::Timeout { .. }
            | ClientError::Frame { .. } => true,
            ClientError::Server { code, .. } => is_retriable_send_code(*code),
            _ => false,
        }
    }
}

/// Response codes after which the Java producer tries again (`DefaultMQProducer.retryResponseCodes`).
pub fn is_retriable_send_code(code: i32) -> bool {
    [
        ResponseCode::TopicNotExist.code(),
        ResponseCode::ServiceNotAvailable.code(),
        ResponseCode::SystemError.code(),
        ResponseCode::SystemBusy.code(),
        ResponseCode::NoPermission.code(),
        ResponseCode::NoBuyerId.code(),
        ResponseCode::NotInCurrentUnit.code(),
    ]
    .contains(&code)
}
