//! A name server and a broker from this build, on 127.0.0.1, in a temporary directory: the
//! system the quickstart benchmarks.
//!
//! The binaries are found next to the running executable (`target/release/` after
//! `cargo build --release --workspace --bins`), or in `$RINGMQ_BIN_DIR`. Ports are free
//! ephemeral ports chosen at start. Both processes are owned by [`ChildGuard`]s and stopped by
//! PID when the [`LocalCluster`] is dropped or stopped, also on error and Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::cli::{FlushMode, Replication};
use crate::host::TargetFacts;
use crate::process::{interrupted, ChildGuard, STOP_GRACE};

pub const NAMESRV_BINARY: &str = "ringmq-namesrv";
pub const BROKER_BINARY: &str = "ringmq-broker";
/// How long each server gets to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where to look for a sibling binary, in order: `$RINGMQ_BIN_DIR`, the directory of the
/// running executable, and its parent (test executables live in `target/<profile>/deps/`).
pub fn binary_candidates(name: &str, exe: &Path, bin_dir_env: Option<&str>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = bin_dir_env.filter(|d| !d.is_empty()) {
        out.push(Path::new(dir).join(name));
    }
    if let Some(dir) = exe.parent() {
        out.push(dir.join(name));
        if let Some(parent) = dir.parent() {
            out.push(parent.join(name));
        }
    }
    out
}

/// The path of sibling binary `name`, or an error naming the build command.
pub fn find_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let env = std::env::var("RINGMQ_BIN_DIR").ok();
    let candidates = binary_candidates(name, &exe, env.as_deref());
    candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!(
            "{name} not found (looked in {}); build it with `cargo build --release --workspace --bins`",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A free port for a RocketMQ broker: `port`, `port - 2` (the VIP channel) and `port + 1`
/// (RocketMQ's HA port) are all free on 127.0.0.1 at the time of the call.
pub fn free_broker_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let port = free_port()?;
        if port > 1_026 && port < u16::MAX && port_is_free(port - 2) && port_is_free(port + 1) {
            return Ok(port);
        }
    }
    bail!("no free port triple (p-2, p, p+1) found on 127.0.0.1 after 100 tries")
}

/// `n` consecutive free ports on 127.0.0.1 (the HA ports of an `n`-shard broker).
pub fn free_port_run(n: u16) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let first = free_port()?;
        if first.checked_add(n).is_some() && (1..n).all(|k| port_is_free(first + k)) {
            return Ok(first);
        }
    }
    bail!("no {n} consecutive free ports found on 127.0.0.1 after 100 tries")
}

/// A free ephemeral port on 127.0.0.1 (free when returned; the caller binds it soon after).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// Waits until every shard of the slave logged that it follows its master, so the measured
/// load does not begin with SLAVE_NOT_AVAILABLE answers.
fn wait_following(slave_log: &Path, shards: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let log = std::fs::read_to_string(slave_log).unwrap_or_default();
        if log.matches("following master").count() >= shards as usize {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the slave did not attach to its master within {START_TIMEOUT:?}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every commit-log segment of a store, by `shard-<k>/<name>`.
fn commit_logs(
    store: &Path,
    shards: u32,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    for shard in 0..shards {
        let dir = store.join(format!("shard-{shard}/commitlog"));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = format!("shard-{shard}/{}", entry.file_name().to_string_lossy());
            let bytes = std::fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            out.insert(name, bytes);
        }
    }
    Ok(out)
}

/// The name server's configuration file.
pub fn namesrv_config(port: u16) -> String {
    format!("listenPort={port}\n")
}

/// What the quickstart broker is configured with.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    pub port: u16,
    pub namesrv_port: u16,
    pub store_dir: PathBuf,
    pub flush: FlushMode,
    pub cpus: u32,
    /// `brokerRole`: ASYNC_MASTER, SYNC_MASTER or SLAVE.
    pub role: &'static str,
    /// First HA port (`haListenPort`; shard k uses + k).
    pub ha_port: u16,
    /// A slave's `haMasterAddress` (the master's first HA port).
    pub ha_master: Option<String>,
    /// `maxTransferCountOnMessageInMemory`: the most one pull returns. The quickstart raises it
    /// with `--pull-batch-size` above RocketMQ's 32, as a RocketMQ user tuning consumers for
    /// batch producers raises both.
    pub pull_transfer_count: u32,
}

/// The broker's `broker.conf`, in RocketMQ's keys. Property filters are on so `--sql` runs
/// work against the quickstart broker (they cost nothing to TAG consumers).
pub fn broker_config(s: &BrokerSettings) -> String {
    format!(
        "brokerClusterName=DefaultCluster\n\
         brokerName=broker-a\n\
         brokerId={id}\n\
         namesrvAddr=127.0.0.1:{namesrv}\n\
         listenPort={port}\n\
         brokerIP1=127.0.0.1\n\
         storePathRootDir={store}\n\
         flushDiskType={flush}\n\
         brokerRole={role}\n\
         haListenPort={ha_port}\n\
         haMasterAddress={ha_master}\n\
         autoCreateTopicEnable=true\n\
         mappedFileSizeCommitLog={segment}\n\
         enablePropertyFilter=true\n\
         ringmqCpus={cpus}\n\
         transactionCheckInterval=1000\n\
         transactionTimeOut=1000\n\
         maxTransferCountOnMessageInMemory={pull_transfer_count}\n",
        pull_transfer_count = s.pull_transfer_count,
        namesrv = s.namesrv_port,
        port = s.port,
        store = s.store_dir.display(),
        flush = s.flush.config_value(),
        // 256 MiB segments: a 20 s quickstart writes a few hundred MB, and a smaller
        // preallocation keeps the temporary directory modest.
        segment = 256 * 1024 * 1024,
        cpus = s.cpus,
        id = u8::from(s.role == "SLAVE"),
        role = s.role,
        ha_port = s.ha_port,
        ha_master = s.ha_master.as_deref().unwrap_or(""),
    )
}

/// Waits until `addr` accepts TCP connections, while checking the server has not exited.
fn wait_listening(
    guard: &mut ChildGuard,
    addr: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = guard.exited() {
            bail!(
                "{} exited with {status} before listening on {addr}; its log ends with:\n{}",
                guard.name(),
                guard.log_tail(20)
            );
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if interrupted() {
            bail!("interrupted while waiting for {}", guard.name());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} did not listen on {addr} within {timeout:?}; its log ends with:\n{}",
                guard.name(),
                guard.log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running name server and broker. Dropping it stops both (broker first) and removes the
/// temporary directory unless it was kept.
pub struct LocalCluster {
    // Field order is drop order: slave, broker, then name server, then the directory.
    slave: Option<ChildGuard>,
    broker: Option<ChildGuard>,
    namesrv: Option<ChildGuard>,
    dir: Option<TempDir>,
    kept_dir: Option<PathBuf>,
    pub namesrv_addr: SocketAddr,
    pub broker_addr: SocketAddr,
    pub broker_settings: BrokerSettings,
    /// The slave's settings, when the quickstart replicates.
    pub slave_settings: Option<BrokerSettings>,
}

/// Writes `<name>.conf`, starts the broker and waits until it listens.
fn spawn_broker(
    bin: &Path,
    dir: &Path,
    name: &str,
    settings: &BrokerSettings,
) -> anyhow::Result<ChildGuard> {
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(&conf, broker_config(settings))
        .with_context(|| format!("writing {name}.conf"))?;
    let conf_arg = conf.to_string_lossy().into_owned();
    let mut broker = ChildGuard::spawn(
        name,
        bin,
        &["-c", &conf_arg],
        &dir.join(format!("{name}.log")),
    )?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, settings.port));
    wait_listening(&mut broker, addr, START_TIMEOUT)?;
    Ok(broker)
}

impl LocalCluster {
    /// Starts the name server, then the broker, and waits until both listen.
    pub fn start(
        flush: FlushMode,
        broker_cpus: u32,
        keep_dir: bool,
        replication: Replication,
        pull_transfer_count: u32,
    ) -> anyhow::Result<Self> {
        let namesrv_bin = find_binary(NAMESRV_BINARY)?;
        let broker_bin = find_binary(BROKER_BINARY)?;
        let dir = tempfile::Builder::new()
            .prefix("ringmq-quickstart-")
            .tempdir()
            .context("creating the quickstart directory")?;
        let namesrv_port = free_port()?;
        let namesrv_conf = dir.path().join("namesrv.conf");
        std::fs::write(&namesrv_conf, namesrv_config(namesrv_port))
            .context("writing namesrv.conf")?;
        let namesrv_conf_arg = namesrv_conf.to_string_lossy().into_owned();
        let mut namesrv = ChildGuard::spawn(
            "name server",
            &namesrv_bin,
            &["-c", &namesrv_conf_arg],
            &dir.path().join("namesrv.log"),
        )?;
        let namesrv_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, namesrv_port));
        wait_listening(&mut namesrv, namesrv_addr, START_TIMEOUT)?;

        let shards = u16::try_from(broker_cpus).context("--broker-cpus")?;
        let broker_settings = BrokerSettings {
            port: free_broker_port()?,
            namesrv_port,
            store_dir: dir.path().join("store"),
            flush,
            cpus: broker_cpus,
            role: replication.master_role(),
            ha_port: free_port_run(shards)?,
            ha_master: None,
            pull_transfer_count,
        };
        let broker = spawn_broker(&broker_bin, dir.path(), "broker", &broker_settings)?;
        let broker_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, broker_settings.port));
        let (slave, slave_settings) = if replication == Replication::None {
            (None, None)
        } else {
            let settings = BrokerSettings {
                port: free_broker_port()?,
                store_dir: dir.path().join("store-slave"),
                role: "SLAVE",
                ha_port: free_port_run(shards)?,
                ha_master: Some(format!("127.0.0.1:{}", broker_settings.ha_port)),
                ..broker_settings.clone()
            };
            let slave = spawn_broker(&broker_bin, dir.path(), "slave", &settings)?;
            wait_following(&dir.path().join("slave.log"), broker_cpus)?;
            (Some(slave), Some(settings))
        };
        let (dir, kept_dir) = if keep_dir {
            (None, Some(dir.keep()))
        } else {
            (Some(dir), None)
        };
        Ok(Self {
            slave,
            broker: Some(broker),
            namesrv: Some(namesrv),
            dir,
            kept_dir,
            namesrv_addr,
            broker_addr,
            broker_settings,
            slave_settings,
        })
    }

    /// The directory holding configs, logs and the store.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(TempDir::path)
            .or(self.kept_dir.as_deref())
            .expect("a cluster always has a directory")
    }

    /// PIDs of (name server, broker) while running.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (
            self.namesrv.as_ref().and_then(ChildGuard::pid),
            self.broker.as_ref().and_then(ChildGuard::pid),
        )
    }

    /// A server that exited on its own, with its log tail: the run cannot be trusted.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for guard in [
            self.namesrv.as_mut(),
            self.broker.as_mut(),
            self.slave.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(status) = guard.exited() {
                bail!(
                    "{} exited with {status}; its log ends with:\n{}",
                    guard.name(),
                    guard.log_tail(20)
                );
            }
        }
        Ok(())
    }

    /// What the results record about the system under test.
    pub fn target_facts(&self) -> TargetFacts {
        TargetFacts {
            namesrv: self.namesrv_addr.to_string(),
            description: Some(format!("ringmq {} (quickstart)", env!("CARGO_PKG_VERSION"))),
            flush_disk_type: Some(self.broker_settings.flush.config_value().to_string()),
            broker_role: Some(self.broker_settings.role.into()),
            broker_cpus: Some(self.broker_settings.cpus),
            started_by_loadgen: true,
        }
    }

    /// `--verify` with a slave: once the load stopped, the slave's commit logs must equal the
    /// master's byte for byte, every segment of every shard, within `timeout`. Returns a note.
    pub fn verify_replica(&self, timeout: Duration) -> anyhow::Result<String> {
        let slave = self
            .slave_settings
            .as_ref()
            .context("no slave was started")?;
        let started = Instant::now();
        loop {
            let master = commit_logs(&self.broker_settings.store_dir, self.broker_settings.cpus)?;
            let copy = commit_logs(&slave.store_dir, slave.cpus)?;
            if !master.is_empty() && master == copy {
                let bytes: usize = master.values().map(Vec::len).sum();
                return Ok(format!(
                    "replication verified: the slave's {} commit-log segment(s) ({bytes} bytes \
                     with preallocation) equal the master's byte for byte, {} ms after the load",
                    master.len(),
                    started.elapsed().as_millis()
                ));
            }
            if started.elapsed() >= timeout {
                bail!(
                    "the slave's commit logs still differ from the master's after {timeout:?} \
                     ({} master segment(s), {} slave segment(s))",
                    master.len(),
                    copy.len()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Stops the broker, then the name server.
    pub fn stop(&mut self) {
        if let Some(mut s) = self.slave.take() {
            s.stop(STOP_GRACE);
        }
        if let Some(mut b) = self.broker.take() {
            b.stop(STOP_GRACE);
        }
        if let Some(mut n) = self.namesrv.take() {
            n.stop(STOP_GRACE);
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_are_looked_up_next_to_the_executable_and_its_parent() {
        let c = binary_candidates(
            "ringmq-broker",
            Path::new("/t/debug/deps/loadgen-abc"),
            Some("/opt/bin"),
        );
        assert_eq!(
            c,
            vec![
                PathBuf::from("/opt/bin/ringmq-broker"),
                PathBuf::from("/t/debug/deps/ringmq-broker"),
                PathBuf::from("/t/debug/ringmq-broker"),
            ]
        );
        assert_eq!(binary_candidates("x", Path::new("/a/b"), Some("")).len(), 2);
    }

    #[test]
    fn a_missing_binary_names_the_build_command() {
        let err = find_binary("ringmq-no-such-binary").expect_err("missing");
        assert!(
            format!("{err}").contains("cargo build --release --workspace --bins"),
            "{err}"
        );
    }

    #[test]
    fn broker_port_and_its_neighbours_are_free() {
        let port = free_broker_port().expect("port");
        assert!(port_is_free(port) && port_is_free(port - 2) && port_is_free(port + 1));
    }

    #[test]
    fn broker_config_uses_rocketmq_keys() {
        let conf = broker_config(&BrokerSettings {
            port: 20_911,
            namesrv_port: 20_876,
            store_dir: PathBuf::from("/tmp/q/store"),
            flush: FlushMode::SyncFlush,
            cpus: 1,
            role: "SLAVE",
            ha_port: 20_912,
            ha_master: Some("127.0.0.1:30912".into()),
            pull_transfer_count: 128,
        });
        for line in [
            "namesrvAddr=127.0.0.1:20876",
            "listenPort=20911",
            "brokerIP1=127.0.0.1",
            "storePathRootDir=/tmp/q/store",
            "flushDiskType=SYNC_FLUSH",
            "brokerRole=SLAVE",
            "brokerId=1",
            "haListenPort=20912",
            "haMasterAddress=127.0.0.1:30912",
            "ringmqCpus=1",
            "enablePropertyFilter=true",
            "maxTransferCountOnMessageInMemory=128",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "{line} missing from\n{conf}"
            );
        }
        assert_eq!(namesrv_config(9_876), "listenPort=9876\n");
    }
}
