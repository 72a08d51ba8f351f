//! A blocking remoting client for tests: one connection, frames through the proto crate's
//! codec, responses matched by opaque, server-initiated requests collected on the way.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};

use bytes::{Bytes, BytesMut};
use ringmq_proto::command::{ExtFields, RemotingCommand, SerializeType};
use ringmq_proto::frame::decode_frame;

use crate::wait::WAIT_LIMIT;

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

pub struct WireClient {
    stream: TcpStream,
    buf: BytesMut,
    next_opaque: i32,
    /// Requests the server sent us (NOTIFY_CONSUMER_IDS_CHANGED, ...), in arrival order.
    pub server_requests: Vec<RemotingCommand>,
}

impl WireClient {
    /// Connects with reads and writes bounded by [`WAIT_LIMIT`].
    pub fn connect<A: ToSocketAddrs + std::fmt::Debug + ?Sized>(addr: &A) -> WireClient {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr:?}: {e}"));
        stream
            .set_read_timeout(Some(WAIT_LIMIT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(WAIT_LIMIT))
            .expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        WireClient {
            stream,
            buf: BytesMut::new(),
            next_opaque: 1,
            server_requests: Vec::new(),
        }
    }

    /// A JSON-header request with `fields` as its ext fields.
    pub fn request(code: i32, fields: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
        let mut ext = ExtFields::new();
        for (k, v) in fields {
            ext.insert(*k, *v);
        }
        RemotingCommand::new_request(code, ext, Bytes::copy_from_slice(body))
    }

    /// As [`WireClient::request`], with the header in RocketMQ's binary serialization.
    pub fn rocketmq_request(code: i32, fields: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
        let mut request = WireClient::request(code, fields, body);
        request.serialize_type = SerializeType::RocketMq;
        request
    }

    /// Sends `request` with a fresh opaque and returns that opaque.
    pub fn send(&mut self, mut request: RemotingCommand) -> i32 {
        let opaque = self.next_opaque;
        self.next_opaque += 1;
        request.opaque = opaque;
        let mut out = BytesMut::new();
        request.encode(&mut out).expect("encode a request");
        self.stream.write_all(&out).expect("write a request");
        opaque
    }

    /// Writes bytes as they are (malformed frames, split frames).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write raw bytes");
    }

    /// The next response (server requests are collected on the way).
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

    /// The next response, which must carry `opaque` (responses arrive in request order here).
    pub fn read_response_to(&mut self, opaque: i32) -> RemotingCommand {
        let response = self.read_response();
        assert_eq!(response.opaque, opaque, "responses arrive per request here");
        response
    }

    /// The next frame, or `None` when the server closed the connection.
    pub fn read_frame(&mut self) -> Option<RemotingCommand> {
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            if let Some(frame) = decode_frame(&mut self.buf).expect("server sent a malformed frame")
            {
                return Some(frame);
            }
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
        self.read_response_to(opaque)
    }

    pub fn call_code(
        &mut self,
        code: i32,
        fields: &[(&str, &str)],
        body: &[u8],
    ) -> RemotingCommand {
        self.call(WireClient::request(code, fields, body))
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
            if frame.is_response() {
                continue;
            }
            if frame.code == code {
                return frame;
            }
            self.server_requests.push(frame);
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

    /// The socket, for tests that shape traffic by hand (timeouts, half-closes).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
