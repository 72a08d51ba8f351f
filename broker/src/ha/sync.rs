//! A slave's metadata sync (Java's `SlaveSynchronize`): every `ringmqSlaveSyncIntervalMs` it
//! asks its master for the topic table (GET_ALL_TOPIC_CONFIG) and hands it to whoever installs
//! it (the metadata shard). Control plane: a plain thread with blocking, time-bounded calls.
//!
//! Subscription groups are created on first heartbeat in ringmq (there is no group table to
//! copy); consumer offsets reach the master again with the next pull a consumer sends it
//! (COMMIT_OFFSET), as in Java.

use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use ringmq_proto::body::{JsonBody, TopicConfigSerializeWrapper};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};

use super::LearnedMaster;
use crate::config::BrokerConfig;
use crate::metadata::registrar::NameServer;

/// What a slave copies from its master each round.
#[derive(Debug, Clone)]
pub struct MasterMetadata {
    pub topics: TopicConfigSerializeWrapper,
}

/// The master's remoting address: as the name servers name it, else derived from
/// `haMasterAddress` (whose port is the master's listenPort + 1 by default).
pub fn master_broker_addr(config: &BrokerConfig, learned: &LearnedMaster) -> Option<String> {
    let from_namesrv = learned
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|m| m.broker_addr.clone());
    from_namesrv.or_else(|| {
        let ha = config.ha_master_address.as_deref()?;
        let (host, port) = ha.rsplit_once(':')?;
        let port = port.parse::<u16>().ok()?.checked_sub(1)?;
        Some(format!("{host}:{port}"))
    })
}

/// The master's shard-0 HA address: `haMasterAddress` when set, else the name servers' answer.
pub fn master_ha_addr(config: &BrokerConfig, learned: &LearnedMaster) -> Option<String> {
    config.ha_master_address.clone().or_else(|| {
        learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|m| m.ha_addr.clone())
    })
}

/// Starts the sync thread; it ends when `stop` is signalled or dropped.
pub fn spawn_slave_sync(
    config: &BrokerConfig,
    learned: LearnedMaster,
    deliver: impl Fn(MasterMetadata) + Send + 'static,
    stop: flume::Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    let config = config.clone();
    let interval = Duration::from_millis(config.slave_sync_interval_ms);
    std::thread::Builder::new()
        .name("ringmq-slave-sync".to_string())
        .spawn(move || {
            loop {
                if let Some(addr) = master_broker_addr(&config, &learned) {
                    // A connection per round, closed right after: a sync every few seconds
                    // does not need to hold one open on the master (nor keep it from stopping).
                    let mut peer = NameServer::new(&addr);
                    match fetch(&mut peer) {
                        Ok(metadata) => deliver(metadata),
                        Err(e) => tracing::debug!(master = %addr, "slave metadata sync: {e}"),
                    }
                }
                match stop.recv_timeout(interval) {
                    Err(flume::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        })
}

fn fetch(master: &mut NameServer) -> Result<MasterMetadata, String> {
    let request = RemotingCommand::new_request(
        RequestCode::GetAllTopicConfig.code(),
        ExtFields::new(),
        Bytes::new(),
    );
    let response = master.call(request).map_err(|e| e.to_string())?;
    if response.code != ResponseCode::Success.code() {
        return Err(format!(
            "GET_ALL_TOPIC_CONFIG answered {} {:?}",
            response.code, response.remark
        ));
    }
    let topics =
        TopicConfigSerializeWrapper::from_json(&response.body).map_err(|e| e.to_string())?;
    Ok(MasterMetadata { topics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::MasterAddrs;

    #[test]
    fn addresses_come_from_the_name_server_or_the_configured_ha_address() {
        let mut config = BrokerConfig::default();
        let learned = LearnedMaster::default();
        assert_eq!(master_broker_addr(&config, &learned), None);
        assert_eq!(master_ha_addr(&config, &learned), None);
        config.ha_master_address = Some("127.0.0.1:20912".into());
        assert_eq!(
            master_broker_addr(&config, &learned).as_deref(),
            Some("127.0.0.1:20911")
        );
        *learned.lock().unwrap() = Some(MasterAddrs {
            broker_addr: "127.0.0.1:30911".into(),
            ha_addr: "127.0.0.1:30912".into(),
        });
        assert_eq!(
            master_broker_addr(&config, &learned).as_deref(),
            Some("127.0.0.1:30911")
        );
        // A configured HA address wins over what name servers say.
        assert_eq!(
            master_ha_addr(&config, &learned).as_deref(),
            Some("127.0.0.1:20912")
        );
    }
}
