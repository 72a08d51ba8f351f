//! Command-line flags of `ringmq-broker`, shaped like RocketMQ's `mqbroker` (`-c FILE`, `-n ADDRS`,
//! `-p`), and how they combine with the config file.

use clap::Parser;

use super::{BrokerConfig, ConfigError, ConfigWarning, Source};

/// ringmq broker: serves RocketMQ clients from thread-per-core shards.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "ringmq-broker", version)]
pub struct Cli {
    /// Broker config file in Java properties format (RocketMQ's broker.conf keys).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config_file: Option<std::path::PathBuf>,
    /// Name server addresses, `;`-separated (`127.0.0.1:9876;127.0.0.1:9877`).
    #[arg(short = 'n', long = "namesrv-addr", value_name = "ADDRS")]
    pub namesrv_addr: Option<String>,
    /// Cores to run shards on: a count (`4`) or a list (`0-3,6`; a single core as `3-3`).
    #[arg(long, value_name = "LIST|COUNT")]
    pub cpus: Option<String>,
    /// Client port; the VIP port is this minus 2.
    #[arg(long, value_name = "PORT")]
    pub listen_port: Option<u16>,
    /// IPv4 address to bind and advertise (brokerIP1).
    #[arg(long, value_name = "IP")]
    pub broker_ip: Option<String>,
    /// Store root directory (storePathRootDir).
    #[arg(long, value_name = "DIR")]
    pub store_dir: Option<std::path::PathBuf>,
    /// Broker name (brokerName): brokers with one name form a master/slave group.
    #[arg(long, value_name = "NAME")]
    pub broker_name: Option<String>,
    /// Cluster name (brokerClusterName).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// ASYNC_FLUSH or SYNC_FLUSH.
    #[arg(long, value_name = "TYPE")]
    pub flush_disk_type: Option<String>,
    /// Sets any config key (RocketMQ or ringmq name), repeatable: `--set maxMessageSize=1024`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the effective configuration and exit.
    #[arg(short = 'p', long = "print-config")]
    pub print_config: bool,
}

impl Cli {
    /// The flags as (key, value) pairs in RocketMQ key names, applied after the file.
    fn as_pairs(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let mut pairs = Vec::new();
        let mut push = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                pairs.push((key.to_string(), value));
            }
        };
        push("namesrvAddr", self.namesrv_addr.clone());
        push("ringmqCpus", self.cpus.clone());
        push("listenPort", self.listen_port.map(|p| p.to_string()));
        push("brokerIP1", self.broker_ip.clone());
        push(
            "storePathRootDir",
            self.store_dir.as_ref().map(|d| d.display().to_string()),
        );
        push("brokerName", self.broker_name.clone());
        push("brokerClusterName", self.cluster_name.clone());
        push("flushDiskType", self.flush_disk_type.clone());
        for item in &self.set {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                ConfigError::Invalid(format!("--set `{item}`: expected KEY=VALUE"))
            })?;
            pairs.push((key.trim().to_string(), value.to_string()));
        }
        Ok(pairs)
    }
}

/// Builds the effective configuration: defaults, then the file (`file` = (name, text)), then
/// `NAMESRV_ADDR` from the environment if no name server was set yet, then the flags.
pub fn build_config(
    cli: &Cli,
    file: Option<(&str, &str)>,
    env_namesrv_addr: Option<&str>,
) -> Result<(BrokerConfig, Vec<ConfigWarning>), ConfigError> {
    let mut config = BrokerConfig::default();
    let mut warnings = Vec::new();
    if let Some((name, text)) = file {
        warnings.extend(config.apply_properties(name, text)?);
    }
    if config.namesrv_addrs.is_empty() && cli.namesrv_addr.is_none() {
        if let Some(env) = env_namesrv_addr.filter(|e| !e.trim().is_empty()) {
            warnings.extend(config.apply(&Source("NAMESRV_ADDR"), "namesrvAddr", env)?);
        }
    }
    for (key, value) in cli.as_pairs()? {
        warnings.extend(config.apply(&Source("command line"), &key, &value)?);
    }
    config.validate()?;
    Ok((config, warnings))
}
