//! Configuration: command-line flags, and like RocketMQ's `mqnamesrv -c FILE` a Java properties
//! file with RocketMQ's name-server keys. Precedence: built-in default < file < flag.
//!
//! Parsing is pure (no logging): problems that are not fatal come back as [`ConfigNote`]s for the
//! caller to log once logging is set up.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;
use ringmq_proto::java_properties::{self, PropertiesError};

pub const DEFAULT_LISTEN_PORT: u16 = 9876;
pub const DEFAULT_SCAN_INTERVAL_MS: u64 = 10_000;
pub const DEFAULT_BROKER_EXPIRY_MS: u64 = 120_000;
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 120_000;
/// The name server's default `metricsPromExporterPort`: next to the broker's 5557 so both fit
/// on one host.
pub const DEFAULT_METRICS_PROM_PORT: u16 = 5558;

/// Command-line flags of `ringmq-namesrv`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ringmq-namesrv",
    version,
    about = "ringmq name server: broker registry, liveness, topic routes"
)]
pub struct Args {
    /// Address to listen on, ip:port [default: 127.0.0.1:9876, or bindAddress:listenPort from -c]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// How often silent brokers are looked for, in milliseconds [default: 10000]
    #[arg(long, value_name = "MS")]
    pub scan_interval_ms: Option<u64>,
    /// How long a broker may stay silent before it is dropped, in milliseconds, unless it
    /// registered with its own heartbeatTimeoutMillis [default: 120000]
    #[arg(long, value_name = "MS")]
    pub broker_expiry_ms: Option<u64>,
    /// Close a connection that neither sends nor accepts bytes for this long, in milliseconds
    /// (RocketMQ's serverChannelMaxIdleTimeSeconds) [default: 120000]
    #[arg(long, value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Log filter: error, warn, info, debug, trace, or a tracing filter directive
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// RocketMQ namesrv properties file (listenPort, scanNotActiveBrokerInterval, ...)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Print the effective configuration and exit, like mqnamesrv -p
    #[arg(short = 'p', long = "print-config")]
    pub print_config: bool,
}

/// The settings the server runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesrvConfig {
    pub listen: SocketAddr,
    pub scan_interval_ms: u64,
    pub broker_expiry_ms: u64,
    /// A connection idle this long is closed (as Netty's idle handler does in Java).
    pub idle_timeout_ms: u64,
    /// Put the ORDER_TOPIC_CONFIG value into route answers (`orderMessageEnable`, default false).
    pub order_message_enable: bool,
    /// Return the ORDER_TOPIC_CONFIG table to registering brokers (default true).
    pub return_order_topic_config_to_broker: bool,
    /// Answer GET_ALL_TOPIC_LIST_FROM_NAMESERVER (`enableAllTopicList`, default true).
    pub enable_all_topic_list: bool,
    /// Where `GET /metrics` is served (`metricsExporterType=PROM` with
    /// `metricsPromExporterHost`/`metricsPromExporterPort`); `None` = no endpoint.
    pub metrics_prom_listen: Option<SocketAddr>,
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_LISTEN_PORT),
            scan_interval_ms: DEFAULT_SCAN_INTERVAL_MS,
            broker_expiry_ms: DEFAULT_BROKER_EXPIRY_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            order_message_enable: false,
            return_order_topic_config_to_broker: true,
            enable_all_topic_list: true,
            metrics_prom_listen: None,
        }
    }
}

impl std::fmt::Display for NamesrvConfig {
    /// `key=value` lines in the properties style, so `-p` output can be fed back with `-c`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "bindAddress={}", self.listen.ip())?;
        writeln!(f, "listenPort={}", self.listen.port())?;
        writeln!(f, "scanNotActiveBrokerInterval={}", self.scan_interval_ms)?;
        writeln!(f, "brokerChannelExpiredTime={}", self.broker_expiry_ms)?;
        // The RocketMQ key is in seconds; round up so a printed config never shortens it.
        writeln!(
            f,
            "serverChannelMaxIdleTimeSeconds={}",
            self.idle_timeout_ms.div_ceil(1000)
        )?;
        writeln!(f, "orderMessageEnable={}", self.order_message_enable)?;
        writeln!(
            f,
            "returnOrderTopicConfigToBroker={}",
            self.return_order_topic_config_to_broker
        )?;
        writeln!(f, "enableAllTopicList={}", self.enable_all_topic_list)?;
        if let Some(addr) = self.metrics_prom_listen {
            writeln!(f, "metricsExporterType=PROM")?;
            writeln!(f, "metricsPromExporterHost={}", addr.ip())?;
            writeln!(f, "metricsPromExporterPort={}", addr.port())?;
        }
        Ok(())
    }
}

/// A non-fatal remark about the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigNote {
    /// A key neither RocketMQ nor ringmq knows: probably a typo.
    UnknownKey { line: usize, key: String },
    /// A RocketMQ key that has no effect here (thread pools, file paths, ...).
    IgnoredKey { line: usize, key: String },
}

impl std::fmt::Display for ConfigNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownKey { line, key } => write!(f, "line {line}: unknown key {key:?} ignored"),
            Self::IgnoredKey { line, key } => {
                write!(
                    f,
                    "line {line}: RocketMQ key {key:?} has no effect in ringmq"
                )
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, line {line}: {key}={value:?} is not {expected}")]
    BadValue {
        path: PathBuf,
        line: usize,
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("config file {path}, {source}")]
    Syntax {
        path: PathBuf,
        source: PropertiesError,
    },
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
}

/// Name-server keys of RocketMQ's `NamesrvConfig` / `NettyServerConfig` that ringmq accepts
/// without acting on them.
const IGNORED_ROCKETMQ_KEYS: &[&str] = &[
    "rocketmqHome",
    "kvConfigPath",
    "configStorePath",
    "productEnvName",
    "clusterTest",
    "clientRequestThreadPoolNums",
    "defaultThreadPoolNums",
    "clientRequestThreadPoolQueueCapacity",
    "defaultThreadPoolQueueCapacity",
    "unRegisterBrokerQueueCapacity",
    "supportActingMaster",
    "enableTopicList",
    "notifyMinBrokerIdChanged",
    "enableControllerInNamesrv",
    "needWaitForService",
    "waitSecondsForService",
    "deleteTopicWithBrokerRegistration",
    "configBlackList",
    "serverWorkerThreads",
    "serverCallbackExecutorThreads",
    "serverSelectorThreads",
    "serverOnewaySemaphoreValue",
    "serverAsyncSemaphoreValue",
    "serverSocketSndBufSize",
    "serverSocketRcvBufSize",
    "serverSocketBacklog",
    "serverPooledByteBufAllocatorEnable",
    "useEpollNativeSelector",
    "writeBufferHighWaterMark",
    "writeBufferLowWaterMark",
    "enableShutdownGracefully",
    "shutdownWaitTimeSeconds",
];

/// What a properties file sets. `None` = not in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSettings {
    pub bind_address: Option<IpAddr>,
    pub listen_port: Option<u16>,
    pub scan_interval_ms: Option<u64>,
    pub broker_expiry_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub order_message_enable: Option<bool>,
    pub return_order_topic_config_to_broker: Option<bool>,
    pub enable_all_topic_list: Option<bool>,
    /// `metricsExporterType=PROM` (true) or `DISABLE` (false).
    pub metrics_prom: Option<bool>,
    pub metrics_prom_host: Option<IpAddr>,
    pub metrics_prom_port: Option<u16>,
    pub notes: Vec<ConfigNote>,
}

/// Reads the name-server keys of Java properties text (the workspace's one parser,
/// [`java_properties`]). Values are trimmed: a number followed by blanks is still a number.
pub fn parse_properties(path: &Path, text: &str) -> Result<FileSettings, ConfigError> {
    let mut settings = FileSettings::default();
    let properties = java_properties::parse(text).map_err(|source| ConfigError::Syntax {
        path: path.to_owned(),
        source,
    })?;
    for property in properties {
        let (line, key, value) = (
            property.line,
            property.key,
            property.value.trim().to_owned(),
        );
        let bad = |expected| ConfigError::BadValue {
            path: path.to_owned(),
            line,
            key: key.clone(),
            value: value.clone(),
            expected,
        };
        match key.as_str() {
            "listenPort" => {
                settings.listen_port = Some(value.parse().map_err(|_| bad("a port (0-65535)"))?)
            }
            "bindAddress" => {
                settings.bind_address = Some(value.parse().map_err(|_| bad("an IP address"))?)
            }
            "scanNotActiveBrokerInterval" => {
                settings.scan_interval_ms = Some(value.parse().map_err(|_| bad("milliseconds"))?)
            }
            "serverChannelMaxIdleTimeSeconds" => {
                let seconds: u64 = value.parse().map_err(|_| bad("seconds"))?;
                settings.idle_timeout_ms = Some(seconds.saturating_mul(1000));
            }
            "brokerChannelExpiredTime" => {
                settings.broker_expiry_ms = Some(value.parse().map_err(|_| bad("milliseconds"))?)
            }
            "orderMessageEnable" => {
                settings.order_message_enable =
                    Some(java_bool(&value).ok_or_else(|| bad("true or false"))?)
            }
            "returnOrderTopicConfigToBroker" => {
                settings.return_order_topic_config_to_broker =
                    Some(java_bool(&value).ok_or_else(|| bad("true or false"))?)
            }
            "enableAllTopicList" => {
                settings.enable_all_topic_list =
                    Some(java_bool(&value).ok_or_else(|| bad("true or false"))?)
            }
            "metricsExporterType" => {
                let prom = match value.to_ascii_uppercase().as_str() {
                    "PROM" => true,
                    "DISABLE" => false,
                    _ => return Err(bad("DISABLE or PROM")),
                };
                settings.metrics_prom = Some(prom);
            }
            "metricsPromExporterHost" => {
                settings.metrics_prom_host = Some(value.parse().map_err(|_| bad("an IP address"))?)
            }
            "metricsPromExporterPort" => {
                settings.metrics_prom_port =
                    Some(value.parse().map_err(|_| bad("a port (0-65535)"))?)
            }
            other if IGNORED_ROCKETMQ_KEYS.contains(&other) => {
                settings.notes.push(ConfigNote::IgnoredKey { line, key })
            }
            _ => settings.notes.push(ConfigNote::UnknownKey { line, key }),
        }
    }
    Ok(settings)
}

/// Java's `Boolean.parseBoolean` is "true" ignoring case, anything else false; a typo silently
/// turning a feature off helps no one, so only true/false (any case) are accepted.
fn java_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl NamesrvConfig {
    /// Combines defaults, the file (if any) and the flags. Returns the notes about the file.
    pub fn resolve(args: &Args) -> Result<(Self, Vec<ConfigNote>), ConfigError> {
        let file = match &args.config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_properties(path, &text)?
            }
            None => FileSettings::default(),
        };
        let defaults = Self::default();
        let listen = args.listen.unwrap_or_else(|| {
            SocketAddr::new(
                file.bind_address.unwrap_or(defaults.listen.ip()),
                file.listen_port.unwrap_or(defaults.listen.port()),
            )
        });
        let config = Self {
            listen,
            scan_interval_ms: args
                .scan_interval_ms
                .or(file.scan_interval_ms)
                .unwrap_or(defaults.scan_interval_ms),
            broker_expiry_ms: args
                .broker_expiry_ms
                .or(file.broker_expiry_ms)
                .unwrap_or(defaults.broker_expiry_ms),
            idle_timeout_ms: args
                .idle_timeout_ms
                .or(file.idle_timeout_ms)
                .unwrap_or(defaults.idle_timeout_ms),
            order_message_enable: file
                .order_message_enable
                .unwrap_or(defaults.order_message_enable),
            return_order_topic_config_to_broker: file
                .return_order_topic_config_to_broker
                .unwrap_or(defaults.return_order_topic_config_to_broker),
            enable_all_topic_list: file
                .enable_all_topic_list
                .unwrap_or(defaults.enable_all_topic_list),
            metrics_prom_listen: file.metrics_prom.unwrap_or(false).then(|| {
                SocketAddr::new(
                    file.metrics_prom_host.unwrap_or(listen.ip()),
                    file.metrics_prom_port.unwrap_or(DEFAULT_METRICS_PROM_PORT),
                )
            }),
        };
        if config.scan_interval_ms == 0 {
            return Err(ConfigError::Zero("the scan interval"));
        }
        if config.broker_expiry_ms == 0 {
            return Err(ConfigError::Zero("the broker expiry"));
        }
        if config.idle_timeout_ms == 0 {
            return Err(ConfigError::Zero("the idle timeout"));
        }
        Ok((config, file.notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> FileSettings {
        parse_properties(Path::new("namesrv.properties"), text).unwrap()
    }

    #[test]
    fn rocketmq_keys_in_all_three_separator_styles() {
        let settings = parse(
            "# comment\n! other comment\n\nlistenPort=9877\nscanNotActiveBrokerInterval : 5000\n\
             brokerChannelExpiredTime 30000\nbindAddress=0.0.0.0\norderMessageEnable=TRUE\n\
             serverChannelMaxIdleTimeSeconds=60\n",
        );
        assert_eq!(settings.listen_port, Some(9877));
        assert_eq!(settings.scan_interval_ms, Some(5000));
        assert_eq!(settings.broker_expiry_ms, Some(30000));
        assert_eq!(
            settings.bind_address,
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
        assert_eq!(settings.order_message_enable, Some(true));
        assert_eq!(settings.idle_timeout_ms, Some(60_000));
        assert!(settings.notes.is_empty());
    }

    #[test]
    fn unknown_and_ignored_keys_become_notes_not_errors() {
        let settings = parse("rocketmqHome=/opt/rmq\nlistenPrt=1\nserverWorkerThreads = 8\n");
        assert_eq!(
            settings.notes,
            vec![
                ConfigNote::IgnoredKey {
                    line: 1,
                    key: "rocketmqHome".to_owned()
                },
                ConfigNote::UnknownKey {
                    line: 2,
                    key: "listenPrt".to_owned()
                },
                ConfigNote::IgnoredKey {
                    line: 3,
                    key: "serverWorkerThreads".to_owned()
                },
            ]
        );
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let error = parse_properties(Path::new("x.properties"), "\nlistenPort=nine\n").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("x.properties") && text.contains("line 2") && text.contains("listenPort"),
            "{text}"
        );
        assert!(parse_properties(Path::new("x"), "orderMessageEnable=yes").is_err());
        assert!(parse_properties(Path::new("x"), "listenPort=70000").is_err());
    }

    #[test]
    fn shipped_example_file_parses_to_the_defaults_without_notes() {
        let text = include_str!("../conf/namesrv.properties");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("namesrv.properties");
        std::fs::write(&path, text).unwrap();
        let (config, notes) =
            NamesrvConfig::resolve(&args(&["-c", path.to_str().unwrap()])).unwrap();
        assert_eq!(config, NamesrvConfig::default());
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn continuation_lines_join() {
        let settings = parse("scanNotActive\\\n   BrokerInterval=7\\\n  00\n");
        assert_eq!(settings.scan_interval_ms, Some(700));
    }

    #[test]
    fn escapes_and_malformed_escapes() {
        let settings = parse("listen\\u0050ort = 9\\u0038\\u0037\n");
        assert_eq!(settings.listen_port, Some(987));
        let error = parse_properties(Path::new("y.properties"), "a=1\n\nb=\\uZZ\n").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("y.properties") && text.contains("line 3"),
            "{text}"
        );
    }

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["ringmq-namesrv"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn defaults_without_file_or_flags() {
        let (config, notes) = NamesrvConfig::resolve(&args(&[])).unwrap();
        assert_eq!(config, NamesrvConfig::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:9876");
        assert!(notes.is_empty());
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("namesrv.properties");
        std::fs::write(
            &path,
            "listenPort=9999\nscanNotActiveBrokerInterval=2000\nbogus=1\n",
        )
        .unwrap();
        let path_text = path.to_str().unwrap();
        let (config, notes) = NamesrvConfig::resolve(&args(&["-c", path_text])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(config.scan_interval_ms, 2000);
        assert_eq!(config.broker_expiry_ms, DEFAULT_BROKER_EXPIRY_MS);
        assert_eq!(notes.len(), 1);
        let (config, _) = NamesrvConfig::resolve(&args(&[
            "-c",
            path_text,
            "--listen",
            "127.0.0.1:1234",
            "--scan-interval-ms",
            "50",
            "--broker-expiry-ms",
            "300",
        ]))
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:1234");
        assert_eq!(
            (config.scan_interval_ms, config.broker_expiry_ms),
            (50, 300)
        );
    }

    #[test]
    fn printed_config_reads_back_to_the_same_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("printed.properties");
        let original = NamesrvConfig {
            scan_interval_ms: 123,
            order_message_enable: true,
            ..NamesrvConfig::default()
        };
        std::fs::write(&path, original.to_string()).unwrap();
        let (config, notes) =
            NamesrvConfig::resolve(&args(&["-c", path.to_str().unwrap()])).unwrap();
        assert_eq!(config, original);
        assert!(notes.is_empty());
    }

    #[test]
    fn missing_file_and_zero_intervals_are_errors() {
        assert!(NamesrvConfig::resolve(&args(&["-c", "/nonexistent/namesrv.properties"])).is_err());
        assert!(NamesrvConfig::resolve(&args(&["--scan-interval-ms", "0"])).is_err());
        assert!(NamesrvConfig::resolve(&args(&["--broker-expiry-ms", "0"])).is_err());
    }
}

#[cfg(test)]
mod metrics_key_tests {
    use super::*;

    #[test]
    fn prom_exporter_keys() {
        let path = Path::new("namesrv.properties");
        let text = "metricsExporterType=PROM\nmetricsPromExporterPort=0\n";
        let settings = parse_properties(path, text).unwrap();
        assert_eq!(settings.metrics_prom, Some(true));
        assert_eq!(settings.metrics_prom_port, Some(0));
        assert!(settings.notes.is_empty());
        assert!(parse_properties(path, "metricsExporterType=LOG\n").is_err());
    }
}
