//! A slave's metadata sync (Java's `SlaveSynchronize`): every `ringmqSlaveSyncIntervalMs` it
//! asks its master for the topic table (GET_ALL_TOPIC_CONFIG), the consumer offsets
//! (GET_ALL_CONSUMER_OFFSET), the schedule progress (GET_ALL_DELAY_OFFSET with
//! `ringmqShardProgress=true`: Java's `syncDelayOffset`, plus the timer progress its
//! `syncTimerCheckPoint` copies, per shard) and the subscription groups
//! (GET_ALL_SUBSCRIPTIONGROUP_CONFIG), and hands each to whoever installs it (topics and
//! groups: the metadata shard; offsets: the shard owning each queue; schedule progress: every
//! shard, each taking its own). Control plane: a plain thread with blocking, time-bounded calls.
//!
//! Each part is asked and delivered on its own, as Java's `syncAll` does: a master that fails
//! one request still has the others copied.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringmq_proto::body::{
    ConsumerOffsetSerializeWrapper, DelayOffsetBody, JsonBody, ShardScheduleProgress,
    SubscriptionGroupWrapper, TopicConfigSerializeWrapper, SHARD_PROGRESS_FIELD,
};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};

use super::LearnedMaster;
use crate::config::BrokerConfig;
use crate::metadata::registrar::NameServer;

/// One part of what a slave copies from its master each round.
#[derive(Debug, Clone)]
pub enum MasterMetadata {
    /// Replaces the slave's topic table when the data versions differ.
    Topics(TopicConfigSerializeWrapper),
    /// Replaces the slave's subscription groups when the data versions differ.
    Groups(SubscriptionGroupWrapper),
    /// Overwrites the slave's offset of every queue the master lists (Java's `putAll`); offsets
    /// the master does not list (committed to the slave while the master was gone) are kept.
    Offsets(ConsumerOffsetSerializeWrapper),
    /// Every master shard's schedule progress: each slave shard keeps its own
    /// ([`crate::schedule::ScheduleMirror`]).
    Schedule(Vec<ShardScheduleProgress>),
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

/// How often the sync thread looks whether it learned (or changed) its master: a first round
/// runs this soon after, not a whole `ringmqSlaveSyncIntervalMs` later, so a topic the master
/// created before the slave attached is served by the slave as early as possible.
const MASTER_POLL: Duration = Duration::from_millis(100);

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
            let mut last: Option<(String, Instant)> = None;
            loop {
                let master = master_broker_addr(&config, &learned);
                if let Some(addr) = master.filter(|a| round_due(last.as_ref(), a, interval)) {
                    sync_round(&addr, &deliver);
                    last = Some((addr, Instant::now()));
                }
                match stop.recv_timeout(MASTER_POLL.min(interval)) {
                    Err(flume::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        })
}

/// A round is due for a master not synced from yet, or `interval` after the previous round.
fn round_due(last: Option<&(String, Instant)>, master: &str, interval: Duration) -> bool {
    last.is_none_or(|(addr, at)| addr != master || at.elapsed() >= interval)
}

fn sync_round(addr: &str, deliver: &impl Fn(MasterMetadata)) {
    // A connection per round, closed right after: a sync every few seconds does not need to
    // hold one open on the master (nor keep it from stopping).
    let mut peer = NameServer::new(addr);
    let parts = [
        fetch(&mut peer, RequestCode::GetAllTopicConfig, &[], |body| {
            TopicConfigSerializeWrapper::from_json(body)
                .map(MasterMetadata::Topics)
                .map_err(FetchError::from)
        }),
        fetch(&mut peer, RequestCode::GetAllConsumerOffset, &[], |body| {
            ConsumerOffsetSerializeWrapper::from_json(body)
                .map(MasterMetadata::Offsets)
                .map_err(FetchError::from)
        }),
        fetch(
            &mut peer,
            RequestCode::GetAllDelayOffset,
            &[(SHARD_PROGRESS_FIELD, "true")],
            schedule_progress,
        ),
        fetch(
            &mut peer,
            RequestCode::GetAllSubscriptionGroupConfig,
            &[],
            |body| {
                SubscriptionGroupWrapper::from_json(body)
                    .map(MasterMetadata::Groups)
                    .map_err(FetchError::from)
            },
        ),
    ];
    for part in parts {
        match part {
            Ok(metadata) => deliver(metadata),
            Err(e) => tracing::debug!(master = %addr, "slave metadata sync: {e}"),
        }
    }
}

/// The per-shard schedule progress of a GET_ALL_DELAY_OFFSET answer.
fn schedule_progress(body: &[u8]) -> Result<MasterMetadata, FetchError> {
    DelayOffsetBody::from_json(body)?
        .ringmq_shard_progress
        .map(MasterMetadata::Schedule)
        .ok_or(FetchError::NoShardProgress)
}

/// Why one part of a sync round failed; the round goes on with the next part.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{code:?}: {source}")]
    Call {
        code: RequestCode,
        source: crate::metadata::registrar::CallError,
    },
    #[error("{code:?} answered {answer} {remark:?}")]
    Refused {
        code: RequestCode,
        answer: i32,
        remark: Option<String>,
    },
    #[error("bad body: {0}")]
    Body(#[from] ringmq_proto::body::BodyError),
    #[error("the master's GET_ALL_DELAY_OFFSET answer has no per-shard progress")]
    NoShardProgress,
}

fn fetch(
    master: &mut NameServer,
    code: RequestCode,
    fields: &[(&str, &str)],
    parse: impl Fn(&[u8]) -> Result<MasterMetadata, FetchError>,
) -> Result<MasterMetadata, FetchError> {
    let mut ext = ExtFields::new();
    for (k, v) in fields {
        ext.insert(*k, *v);
    }
    let request = RemotingCommand::new_request(code.code(), ext, Bytes::new());
    let response = master
        .call(request)
        .map_err(|source| FetchError::Call { code, source })?;
    if response.code != ResponseCode::Success.code() {
        return Err(FetchError::Refused {
            code,
            answer: response.code,
            remark: response.remark,
        });
    }
    parse(&response.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::MasterAddrs;

    #[test]
    fn schedule_progress_needs_the_per_shard_list() {
        let with =
            br#"{"offsetTable":{"1":2},"ringmqShardProgress":[{"shard":1,"levelOffsets":[2]}]}"#;
        match schedule_progress(with) {
            Ok(MasterMetadata::Schedule(shards)) => {
                assert_eq!(shards.len(), 1);
                assert_eq!(
                    (shards[0].shard, &shards[0].level_offsets[..]),
                    (1, &[2][..])
                );
            }
            other => panic!("{other:?}"),
        }
        // A master without the extension: nothing to install, said so.
        assert!(matches!(
            schedule_progress(br#"{"offsetTable":{"1":2}}"#),
            Err(FetchError::NoShardProgress)
        ));
        assert!(matches!(
            schedule_progress(b"{oops"),
            Err(FetchError::Body(_))
        ));
    }

    #[test]
    fn a_round_is_due_for_a_new_master_or_after_the_interval() {
        let interval = Duration::from_secs(3600);
        assert!(round_due(None, "m:1", interval));
        let just_now = ("m:1".to_string(), Instant::now());
        assert!(!round_due(Some(&just_now), "m:1", interval));
        // The name servers named another master: sync from it at once.
        assert!(round_due(Some(&just_now), "m:2", interval));
        assert!(round_due(Some(&just_now), "m:1", Duration::ZERO));
    }

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
