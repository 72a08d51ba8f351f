//! One connection per address, created on first use and replaced when broken.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use ringmq_proto::command::RemotingCommand;

use super::connection::{Connection, ServerRequestHandler};
use crate::config::Credentials;
use crate::error::ClientError;

/// The connections of one client instance, keyed by `ip:port`.
pub struct ConnectionPool {
    connections: RefCell<HashMap<String, Rc<Connection>>>,
    connect_timeout_ms: u64,
    handler: Option<ServerRequestHandler>,
    credentials: Option<Rc<Credentials>>,
}

impl ConnectionPool {
    pub fn new(connect_timeout_ms: u64, handler: Option<ServerRequestHandler>) -> ConnectionPool {
        ConnectionPool {
            connections: RefCell::new(HashMap::new()),
            connect_timeout_ms,
            handler,
            credentials: None,
        }
    }

    /// Every connection of this pool signs its requests with `credentials` (ACL 1.0).
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> ConnectionPool {
        self.credentials = credentials.map(Rc::new);
        self
    }

    /// The live connection to `addr`, connecting (again) if there is none or it broke.
    pub async fn get(&self, addr: &str) -> Result<Rc<Connection>, ClientError> {
        if let Some(live) = self.live(addr) {
            return Ok(live);
        }
        let mut connection =
            Connection::connect(addr, self.connect_timeout_ms, self.handler.clone()).await?;
        connection.set_credentials(self.credentials.clone());
        let fresh = Rc::new(connection);
        // Another task may have connected while this one was waiting: keep the first live one so
        // that all traffic to an address shares one connection.
        if let Some(live) = self.live(addr) {
            return Ok(live);
        }
        self.connections
            .borrow_mut()
            .insert(addr.to_string(), fresh.clone());
        Ok(fresh)
    }

    fn live(&self, addr: &str) -> Option<Rc<Connection>> {
        let mut connections = self.connections.borrow_mut();
        match connections.get(addr) {
            Some(conn) if !conn.is_closed() => Some(conn.clone()),
            Some(_) => {
                connections.remove(addr);
                None
            }
            None => None,
        }
    }

    /// Sends a request to `addr` and waits for the response.
    pub async fn invoke(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout_ms: u64,
    ) -> Result<RemotingCommand, ClientError> {
        let connection = self.get(addr).await?;
        connection.request(request, timeout_ms).await
    }

    /// Sends a oneway request to `addr`.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<(), ClientError> {
        let connection = self.get(addr).await?;
        connection.send_oneway(request).await
    }

    /// Addresses with a live connection.
    pub fn connected_addrs(&self) -> Vec<String> {
        self.connections
            .borrow()
            .iter()
            .filter(|(_, c)| !c.is_closed())
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Waits (at most `timeout_ms` in all) until every connection has written what is queued
    /// (oneway requests included), then closes them all.
    pub async fn flush_and_close_all(&self, timeout_ms: u64) {
        let connections: Vec<Rc<Connection>> =
            self.connections.borrow().values().cloned().collect();
        let flushed = glommio::timer::timeout(Duration::from_millis(timeout_ms), async {
            for connection in &connections {
                connection.flush().await;
            }
            Ok(())
        })
        .await;
        if flushed.is_err() {
            tracing::warn!(
                timeout_ms,
                "connections not flushed in time; closing anyway"
            );
        }
        self.close_all();
    }

    /// Closes and drops every connection; what is still queued is lost.
    pub fn close_all(&self) {
        let drained: Vec<_> = self.connections.borrow_mut().drain().collect();
        for (_, connection) in drained {
            connection.close("client shut down");
        }
    }
}
