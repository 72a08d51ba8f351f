//! One connection per address, created on first use and replaced when broken.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ringmq_proto::command::RemotingCommand;

use super::connection::{Connection, ServerRequestHandler};
use crate::error::ClientError;

/// The connections of one client instance, keyed by `ip:port`.
pub struct ConnectionPool {
    connections: RefCell<HashMap<String, Rc<Connection>>>,
    connect_timeout_ms: u64,
    handler: Option<ServerRequestHandler>,
}

impl ConnectionPool {
    pub fn new(connect_timeout_ms: u64, handler: Option<ServerRequestHandler>) -> ConnectionPool {
        ConnectionPool {
            connections: RefCell::new(HashMap::new()),
            connect_timeout_ms,
            handler,
        }
    }

    /// The live connection to `addr`, connecting (again) if there is none or it broke.
    pub async fn get(&self, addr: &str) -> Result<Rc<Connection>, ClientError> {
        if let Some(live) = self.live(addr) {
            return Ok(live);
        }
        let fresh = Rc::new(
            Connection::connect(addr, self.connect_timeout_ms, self.handler.clone()).await?,
        );
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
        connection.send_oneway(request)
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

    /// Closes and drops every connection.
    pub fn close_all(&self) {
        let drained: Vec<_> = self.connections.borrow_mut().drain().collect();
        for (_, connection) in drained {
            connection.close("client shut down");
        }
    }
}
