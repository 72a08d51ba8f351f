//! The broker process: one pinned glommio executor per configured core, each a [`shard::Shard`].
//!
//! Start-up order: resolve the cores, pin the shard count in the store root, load broker-wide
//! metadata (for the metadata shard) and each shard's offsets, start the registrar thread, start
//! the executors, then wait for SIGTERM/SIGINT. Shutdown: every shard stops accepting, drains,
//! persists; then the registrar unregisters from the name servers.

pub mod conn;
pub mod dispatch;
mod inbox;
mod listen;
pub mod mesh;
pub mod placement;
pub mod port_lock;
pub mod process_memory;
pub mod shard;
pub mod signals;
pub mod slots;
pub mod start_gate;

use crate::transaction::{TransactionConfig, TransactionService};
use std::rc::Rc;
use std::sync::Arc;

use glommio::{LocalExecutorBuilder, Placement};

use crate::acl::{AclGate, AclRuntime};
use crate::config::{BrokerConfig, CpuSpecError, MetricsExporterType};
use crate::ha::LearnedMaster;
use crate::metadata::offsets::{ConsumerOffsets, OffsetsError};
use crate::metadata::registrar::{spawn_registrar_learning, RegistrarMsg};
use crate::metadata::topics::{TopicTable, TopicTableError};
use crate::metadata::Metadata;
use crate::shard_map::{pin_shard_count, ShardCountError, ShardId};
use crate::stats::{NodeLabels, StatsService};
use crate::store::offset::MAX_SHARD_ID;
use crate::store::Store;
use mesh::ShardMsg;
use placement::METADATA_SHARD;
use shard::Shard;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot read this process's CPU affinity")]
    NoAffinity,
    #[error("--cpus / ringmqCpus: {0}")]
    Cpus(#[from] CpuSpecError),
    #[error(transparent)]
    ShardCount(#[from] ShardCountError),
    #[error("topic table: {0}")]
    Topics(#[from] TopicTableError),
    #[error("subscription groups: {0}")]
    Groups(#[from] crate::metadata::groups::GroupTableError),
    #[error("consumer offsets: {0}")]
    Offsets(#[from] OffsetsError),
    #[error("cannot start {what}: {source}")]
    Start {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot start the executor of shard {shard} on core {core}: {reason}")]
    Executor {
        shard: usize,
        core: usize,
        reason: String,
    },
    #[error("{0} shards asked for; physical offsets have room for 128 shards")]
    TooManyShards(usize),
    #[error(transparent)]
    Port(#[from] port_lock::PortClaimError),
    #[error("shard {0} panicked")]
    ShardPanicked(usize),
    #[error(transparent)]
    Acl(#[from] crate::acl::AclError),
}

/// Claims the listen and VIP ports, and a master's HA ports (`haListenPort + k` per shard; see
/// [`port_lock`]); the claims last as long as the process.
fn claim_ports(
    config: &BrokerConfig,
    shards: usize,
) -> Result<Vec<port_lock::PortClaim>, ServerError> {
    let ip: std::net::IpAddr = config
        .broker_ip1
        .parse()
        .expect("brokerIP1 is validated as IPv4");
    let ha_ports = (!config.is_slave())
        .then(|| (0..shards).map(|k| config.ha_listen_port().saturating_add(k as u16)))
        .into_iter()
        .flatten();
    [config.listen_port, config.vip_port()]
        .into_iter()
        .chain(ha_ports)
        .map(|port| port_lock::claim(ip, port).map_err(ServerError::Port))
        .collect()
}

/// A running slave metadata sync: dropping the sender stops the thread.
type SlaveSync = (flume::Sender<()>, std::thread::JoinHandle<()>);

/// A slave's metadata sync thread: the master's topics and groups go to the metadata shard, its
/// consumer offsets and schedule progress to every shard (each keeps its own part).
fn start_slave_sync(
    config: &BrokerConfig,
    learned: &LearnedMaster,
    mesh: &mesh::Mesh,
) -> Result<Option<SlaveSync>, ServerError> {
    use crate::ha::sync::MasterMetadata;
    if !config.is_slave() {
        return Ok(None);
    }
    let (stop, stopped) = flume::bounded::<()>(1);
    let mesh = mesh.clone();
    let deliver = move |m: MasterMetadata| {
        let m = Arc::new(m);
        match *m {
            MasterMetadata::Topics(_) | MasterMetadata::Groups(_) => {
                mesh[METADATA_SHARD.0].control(ShardMsg::FromMaster(m));
            }
            MasterMetadata::Offsets(_) | MasterMetadata::Schedule(_) => {
                for inbox in mesh.iter() {
                    inbox.control(ShardMsg::FromMaster(m.clone()));
                }
            }
        }
    };
    let thread = crate::ha::sync::spawn_slave_sync(config, learned.clone(), deliver, stopped)
        .map_err(|source| ServerError::Start {
            what: "the slave metadata sync thread".to_string(),
            source,
        })?;
    Ok(Some((stop, thread)))
}

/// The statistics sampler and, with `metricsExporterType=PROM`, the `/metrics` thread; both
/// stop when the returned service is dropped at the end of [`run`].
fn start_stats(config: &BrokerConfig, shards: usize) -> Result<StatsService, ServerError> {
    let node = NodeLabels {
        cluster: config.broker_cluster_name.clone(),
        node_id: config.broker_name.clone(),
    };
    let prom_addr = match config.metrics_exporter_type {
        MetricsExporterType::Prom => {
            let host = config.metrics_prom_exporter_host();
            let ip: std::net::IpAddr = host.parse().expect("validated as IPv4");
            Some(std::net::SocketAddr::new(
                ip,
                config.metrics_prom_exporter_port,
            ))
        }
        MetricsExporterType::Disable => None,
    };
    StatsService::start(node, shards, prom_addr).map_err(|source| ServerError::Start {
        what: "the statistics threads".to_string(),
        source,
    })
}

/// The cores the shards run on, one shard per core: `--cpus` / `ringmqCpus` resolved against
/// this process's affinity.
fn resolve_cores(config: &BrokerConfig) -> Result<Vec<usize>, ServerError> {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .ok_or(ServerError::NoAffinity)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cores = config.cpus.resolve(&available)?;
    if cores.len() > usize::from(MAX_SHARD_ID) + 1 {
        return Err(ServerError::TooManyShards(cores.len()));
    }
    Ok(cores)
}

/// The broker-wide metadata (topics and subscription groups) the metadata shard owns.
fn load_metadata(
    root: &std::path::Path,
    config: &BrokerConfig,
    registrar: flume::Sender<RegistrarMsg>,
) -> Result<Metadata, ServerError> {
    let topics = TopicTable::load(root, config)?;
    let groups = crate::metadata::groups::GroupTable::load(
        &root.join("config"),
        config.auto_create_subscription_group,
    )?;
    Ok(Metadata::new(
        topics,
        groups,
        config.broker_permission,
        Some(registrar),
    ))
}

/// On SIGTERM/SIGINT: unregister from the name servers and tell every shard to shut down.
fn spawn_shutdown_on_signal(
    mesh: &mesh::Mesh,
    registrar: &flume::Sender<RegistrarMsg>,
) -> Result<(), ServerError> {
    let stop_mesh = mesh.clone();
    let stop_registrar = registrar.clone();
    signals::spawn_signal_thread(move |signal| {
        tracing::info!(signal, "termination signal: shutting down");
        // Unregister first, so name servers stop routing clients here while shards drain.
        let _ = stop_registrar.send(RegistrarMsg::Stop);
        for inbox in stop_mesh.iter() {
            inbox.control(ShardMsg::Shutdown);
        }
    })
    .map_err(|source| ServerError::Start {
        what: "the signal thread".to_string(),
        source,
    })
}

/// What every shard's executor gets a clone of.
#[derive(Clone)]
struct ShardCommon {
    config: Arc<BrokerConfig>,
    mesh: mesh::Mesh,
    view: Arc<crate::metadata::BrokerView>,
    file_writer: crate::persist::FileWriter,
    acl: Option<Arc<crate::acl::AclShared>>,
    stats: Arc<crate::stats::BrokerStats>,
    learned: LearnedMaster,
}

/// What one shard alone starts with.
struct ShardOwn {
    index: usize,
    inbox: mesh::InboxReceivers,
    offsets: ConsumerOffsets,
    /// `Some` for the metadata shard only.
    metadata: Option<Metadata>,
    /// Passed once the shard is ready; it listens only after every shard passed.
    gate: start_gate::StartGate,
}

/// Starts shard `own.index`'s executor pinned to `core`.
fn spawn_shard_executor(
    core: usize,
    own: ShardOwn,
    common: ShardCommon,
) -> Result<glommio::ExecutorJoinHandle<()>, ServerError> {
    let index = own.index;
    LocalExecutorBuilder::new(Placement::Fixed(core))
        .name(&format!("ringmq-shard-{index}"))
        .spawn(move || async move { open_and_run_shard(own, common).await })
        .map_err(|e| ServerError::Executor {
            shard: index,
            core,
            reason: e.to_string(),
        })
}

/// Inside the shard's executor: opens its store and transactions, then serves until shutdown.
/// Without its store the shard cannot serve, so failing to open one ends the process.
async fn open_and_run_shard(own: ShardOwn, common: ShardCommon) {
    let ShardOwn {
        index,
        inbox,
        offsets,
        metadata,
        gate,
    } = own;
    let ShardCommon {
        config,
        mesh,
        view,
        file_writer,
        acl,
        stats,
        learned,
    } = common;
    let store_config = shard::store_config(&config, index as u8);
    let store = match Store::open(store_config).await {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(shard = index, "cannot open the store: {e}");
            eprintln!("ringmq-broker: shard {index}: cannot open the store: {e}");
            std::process::exit(1);
        }
    };
    let tx_config = TransactionConfig::from_broker(&config);
    let root = &config.store_path_root_dir;
    let transaction = match TransactionService::open(&store, root, index as u8, tx_config).await {
        Ok(transaction) => transaction,
        Err(e) => {
            tracing::error!(shard = index, "cannot open transactions: {e}");
            eprintln!("ringmq-broker: shard {index}: transactions: {e}");
            std::process::exit(1);
        }
    };
    let mut shard = Shard::new(
        ShardId(index),
        config,
        mesh,
        view,
        metadata,
        shard::ShardParts {
            offsets,
            store,
            file_writer,
            transaction,
            stats,
        },
    );
    shard.acl = acl.map(AclGate::new);
    let shard = Rc::new(shard);
    shard::run_shard(shard, inbox, learned, gate).await;
}

/// Waits for every shard's executor to end; an error names the last shard that panicked.
fn join_shards(executors: Vec<glommio::ExecutorJoinHandle<()>>) -> Result<(), ServerError> {
    let mut result = Ok(());
    for (index, handle) in executors.into_iter().enumerate() {
        if handle.join().is_err() {
            result = Err(ServerError::ShardPanicked(index));
        }
    }
    result
}

/// Runs the broker until SIGTERM/SIGINT. Call [`signals::block_termination_signals`] first,
/// before any thread exists.
pub fn run(config: BrokerConfig) -> Result<(), ServerError> {
    let cores = resolve_cores(&config)?;
    let shards = cores.len();
    let root = config.store_path_root_dir.clone();
    pin_shard_count(&root, shards)?;
    let _port_claims = claim_ports(&config, shards)?;
    // Loaded before any shard runs; the watcher thread lives as long as `run`.
    let acl = AclRuntime::start(&config)?;
    let acl_shared = acl.as_ref().map(|a| a.shared.clone());

    let config = Arc::new(config);
    let learned = LearnedMaster::default();
    let (registrar, registrar_thread) = spawn_registrar_learning(&config, learned.clone())
        .map_err(|source| ServerError::Start {
            what: "the registrar thread".to_string(),
            source,
        })?;
    let metadata = load_metadata(&root, &config, registrar.clone())?;
    let initial_view = metadata.view();
    let mut metadata = Some(metadata);

    let (mesh, inboxes) = mesh::mesh(shards, config.limits.shard_inbox_batches_max);
    let (file_writer, file_writer_thread) =
        crate::persist::FileWriter::start().map_err(|source| ServerError::Start {
            what: "the persist thread".to_string(),
            source,
        })?;
    let slave_sync = start_slave_sync(&config, &learned, &mesh)?;
    spawn_shutdown_on_signal(&mesh, &registrar)?;

    let stats_service = start_stats(&config, shards)?;
    let mut executors = Vec::with_capacity(shards);
    let gates = start_gate::StartGate::for_shards(shards);
    for (index, ((core, inbox), gate)) in cores.iter().zip(inboxes).zip(gates).enumerate() {
        let offsets = ConsumerOffsets::load(ConsumerOffsets::file_path(&root, index))?;
        let own = ShardOwn {
            index,
            inbox,
            offsets,
            metadata: if index == 0 { metadata.take() } else { None },
            gate,
        };
        let common = ShardCommon {
            config: config.clone(),
            mesh: mesh.clone(),
            view: initial_view.clone(),
            file_writer: file_writer.clone(),
            acl: acl_shared.clone(),
            stats: stats_service.stats.clone(),
            learned: learned.clone(),
        };
        executors.push(spawn_shard_executor(*core, own, common)?);
    }
    tracing::info!(shards, ?cores, addr = %config.advertised_addr(), vip_port = config.vip_port(), "broker started");

    let result = join_shards(executors);
    let _ = registrar.send(RegistrarMsg::Stop);
    let _ = registrar_thread.join();
    // Every shard awaited its last write before its executor ended, so nothing is left to
    // write. The thread is not joined: a connection task still parked in an executor's queue at
    // exit may keep a clone of the writer alive, and exit must not wait for it.
    drop((file_writer, file_writer_thread));
    drop(acl);
    if let Some((stop, thread)) = slave_sync {
        drop(stop);
        let _ = thread.join();
    }
    tracing::info!("broker stopped");
    result
}
