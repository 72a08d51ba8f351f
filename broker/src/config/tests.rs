use super::cli::{build_config, Cli};
use super::*;
use clap::Parser;

fn cli(args: &[&str]) -> Cli {
    let mut full = vec!["ringmq-broker"];
    full.extend_from_slice(args);
    Cli::try_parse_from(full).unwrap()
}

const BROKER_CONF: &str = "\
brokerClusterName = ClusterX
brokerName = broker-b
brokerId = 0
deleteWhen = 04
fileReservedTime = 48
brokerRole = SYNC_MASTER
flushDiskType = SYNC_FLUSH
namesrvAddr=127.0.0.1:9876;127.0.0.1:9877
listenPort=20911
storePathRootDir=/tmp/ringmq-store
maxMessageSize=65536
autoCreateTopicEnable=false
defaultTopicQueueNums=4
ringmqCpus=0-1
ringmqTailCacheBytes=1048576
ringmqZeroAheadBytes=16777216
ringmqWriteLingerMicros=100
accessMessageInMemoryMaxRatio : 30
brokerNmae=typo
";

#[test]
fn defaults_are_rocketmq_defaults() {
    let (config, warnings) = build_config(&cli(&[]), None, None).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(config.listen_port, 10911);
    assert_eq!(config.vip_port(), 10909);
    assert_eq!(config.default_topic_queue_nums, 8);
    assert!(config.auto_create_topic_enable);
    assert_eq!(config.max_message_size_bytes, 4 * 1024 * 1024);
    assert_eq!(config.flush_disk_type, FlushDiskType::AsyncFlush);
    assert_eq!(config.broker_permission, 6);
    assert_eq!(config.advertised_addr(), "127.0.0.1:10911");
    assert!(!config.enable_property_filter, "Java's default");
}

#[test]
fn read_ahead_extents_key_reaches_the_store() {
    let (config, warnings) = build_config(&cli(&[]), None, None).unwrap();
    assert!(warnings.is_empty());
    let store = crate::server::shard::store_config(&config, 0);
    assert_eq!(
        store.read_ahead_extents,
        crate::store::READ_AHEAD_EXTENTS_DEFAULT
    );
    let conf = "ringmqReadAheadExtents=8\n";
    let (config, warnings) = build_config(&cli(&[]), Some(("broker.conf", conf)), None).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(
        crate::server::shard::store_config(&config, 0).read_ahead_extents,
        8
    );
}

#[test]
fn index_file_keys_reach_the_store() {
    let (config, warnings) = build_config(&cli(&[]), None, None).unwrap();
    assert!(warnings.is_empty());
    let store = crate::server::shard::store_config(&config, 0);
    assert_eq!(
        store.index_slots_per_file,
        crate::store::INDEX_SLOTS_PER_FILE_DEFAULT
    );
    assert_eq!(
        store.index_entries_per_file,
        crate::store::INDEX_ENTRIES_PER_FILE_DEFAULT
    );
    assert_eq!(
        store.index_filter_cache_bytes,
        crate::store::INDEX_FILTER_CACHE_BYTES_DEFAULT
    );
    let conf = "ringmqIndexFilterCacheBytes=0\n";
    let (config, _) = build_config(&cli(&[]), Some(("broker.conf", conf)), None).unwrap();
    let store = crate::server::shard::store_config(&config, 0);
    assert_eq!(store.index_filter_cache_bytes, 0, "off");
    // Small files, as tests and measurements use, and Java's defaults, are both accepted.
    for (slots, entries) in [(1024, 4096), (5_000_000, 20_000_000)] {
        let conf = format!("maxHashSlotNum={slots}\nmaxIndexNum={entries}\n");
        let (config, warnings) =
            build_config(&cli(&[]), Some(("broker.conf", &conf)), None).unwrap();
        assert!(warnings.is_empty());
        let store = crate::server::shard::store_config(&config, 0);
        assert_eq!(store.index_slots_per_file, slots);
        assert_eq!(store.index_entries_per_file, entries);
        assert_eq!(store.validate(), Ok(()));
    }
}

#[test]
fn pull_transfer_limit_keys() {
    let (config, _) = build_config(&cli(&[]), None, None).unwrap();
    assert_eq!(config.max_transfer_count_on_message_in_memory, 32);
    assert_eq!(config.max_transfer_bytes_on_message_in_memory, 256 * 1024);
    let conf = "maxTransferCountOnMessageInMemory=128\nmaxTransferBytesOnMessageInMemory=1048576\n";
    let (config, warnings) = build_config(&cli(&[]), Some(("broker.conf", conf)), None).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(config.max_transfer_count_on_message_in_memory, 128);
    assert_eq!(config.max_transfer_bytes_on_message_in_memory, 1 << 20);
    for bad in [
        "maxTransferCountOnMessageInMemory=0\n",
        "maxTransferBytesOnMessageInMemory=0\n",
        "maxTransferBytesOnMessageInMemory=67108864\n",
    ] {
        let refused = build_config(&cli(&[]), Some(("broker.conf", bad)), None);
        assert!(refused.is_err(), "{bad} accepted");
    }
}

#[test]
fn enable_property_filter_key() {
    let conf = "enablePropertyFilter=true\n";
    let (config, warnings) = build_config(&cli(&[]), Some(("broker.conf", conf)), None).unwrap();
    assert!(warnings.is_empty());
    assert!(config.enable_property_filter);
}

#[test]
fn file_keys_are_applied_and_unknown_keys_warned() {
    let (config, warnings) =
        build_config(&cli(&[]), Some(("broker.conf", BROKER_CONF)), None).unwrap();
    assert_eq!(config.broker_cluster_name, "ClusterX");
    assert_eq!(config.broker_name, "broker-b");
    assert_eq!(config.file_reserved_time_hours, 48);
    assert_eq!(config.broker_role, BrokerRole::SyncMaster);
    assert_eq!(config.flush_disk_type, FlushDiskType::SyncFlush);
    assert_eq!(
        config.namesrv_addrs,
        vec!["127.0.0.1:9876".to_string(), "127.0.0.1:9877".to_string()]
    );
    assert_eq!(config.listen_port, 20911);
    assert_eq!(config.max_message_size_bytes, 65536);
    assert!(!config.auto_create_topic_enable);
    assert_eq!(config.default_topic_queue_nums, 4);
    assert_eq!(config.cpus, CpuSpec::List(vec![0, 1]));
    assert_eq!(config.tail_cache_bytes, 1048576);
    assert_eq!(config.zero_ahead_bytes, 16 * 1024 * 1024);
    assert_eq!(config.write_linger_us, 100);
    assert_eq!(config.access_message_in_memory_max_ratio_percent, 30);
    assert_eq!(
        warnings,
        vec![
            ConfigWarning::IgnoredKey {
                source_name: "broker.conf:4".to_string(),
                key: "deleteWhen".to_string()
            },
            ConfigWarning::UnknownKey {
                source_name: "broker.conf:19".to_string(),
                key: "brokerNmae".to_string()
            },
        ]
    );
}

#[test]
fn flags_override_the_file() {
    let args = cli(&[
        "-n",
        "127.0.0.1:1111",
        "--cpus",
        "2",
        "--listen-port",
        "30911",
        "--store-dir",
        "/tmp/other",
        "--set",
        "maxMessageSize=1024",
        "--set",
        "autoCreateTopicEnable=true",
    ]);
    let (config, _) = build_config(&args, Some(("broker.conf", BROKER_CONF)), None).unwrap();
    assert_eq!(config.namesrv_addrs, vec!["127.0.0.1:1111".to_string()]);
    assert_eq!(config.cpus, CpuSpec::Count(2));
    assert_eq!(config.listen_port, 30911);
    assert_eq!(
        config.store_path_root_dir,
        std::path::PathBuf::from("/tmp/other")
    );
    assert_eq!(config.max_message_size_bytes, 1024);
    assert!(config.auto_create_topic_enable);
    // Keys the flags did not touch keep the file's values.
    assert_eq!(config.broker_name, "broker-b");
}

#[test]
fn namesrv_env_is_used_only_when_nothing_else_names_one() {
    let (config, _) = build_config(&cli(&[]), None, Some("127.0.0.1:5555")).unwrap();
    assert_eq!(config.namesrv_addrs, vec!["127.0.0.1:5555".to_string()]);
    let (config, _) = build_config(
        &cli(&[]),
        Some(("f", "namesrvAddr=1.2.3.4:1")),
        Some("127.0.0.1:5555"),
    )
    .unwrap();
    assert_eq!(config.namesrv_addrs, vec!["1.2.3.4:1".to_string()]);
    let (config, _) =
        build_config(&cli(&["-n", "127.0.0.1:7"]), None, Some("127.0.0.1:5555")).unwrap();
    assert_eq!(config.namesrv_addrs, vec!["127.0.0.1:7".to_string()]);
}

#[test]
fn bad_values_name_the_key_and_the_line() {
    let err = build_config(&cli(&[]), Some(("b.conf", "\nlistenPort=ten\n")), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "b.conf:2: key `listenPort`: `ten` is not a number in range"
    );
    let err = build_config(&cli(&["--cpus", "3-1"]), None, None).unwrap_err();
    assert!(err.to_string().contains("ringmqCpus"), "{err}");
    let err = build_config(&cli(&["--set", "flushDiskType=SOMETIMES"]), None, None).unwrap_err();
    assert!(
        err.to_string().contains("ASYNC_FLUSH or SYNC_FLUSH"),
        "{err}"
    );
    let err = build_config(&cli(&["-n", "nonsense"]), None, None).unwrap_err();
    assert!(err.to_string().contains("namesrvAddr"), "{err}");
    let err = build_config(&cli(&["--set", "novalue"]), None, None).unwrap_err();
    assert!(err.to_string().contains("KEY=VALUE"), "{err}");
    let err = build_config(&cli(&["--broker-ip", "::1"]), None, None).unwrap_err();
    assert!(err.to_string().contains("IPv4"), "{err}");
}

#[test]
fn cross_field_validation() {
    for bad in [
        "defaultTopicQueueNums=0",
        "listenPort=2",
        "brokerPermission=9",
        "diskMaxUsedSpaceRatio=99",
        "brokerId=1",
        "brokerRole=SLAVE",
        "haListenPort=10911",
        "haHousekeepingInterval=10",
        "mappedFileSizeCommitLog=4097",
        "mappedFileSizeCommitLog=4194304",
        "ringmqTailCacheBytes=100",
        "ringmqZeroAheadBytes=1000",
        "ringmqWriteLingerMicros=10001",
        "maxHashSlotNum=0",
        "maxHashSlotNum=16777217",
        "maxIndexNum=0",
        "maxIndexNum=100",
        "maxIndexNum=134217728",
        // Less than one default file's filter (2 MiB).
        "ringmqIndexFilterCacheBytes=1048576",
    ] {
        let result = build_config(&cli(&["--set", bad]), None, None);
        assert!(
            matches!(result, Err(ConfigError::Invalid(_))),
            "{bad}: {result:?}"
        );
    }
}

#[test]
fn slave_settings() {
    let (config, _) = build_config(
        &cli(&[
            "--set",
            "brokerRole=SLAVE",
            "--set",
            "brokerId=1",
            "--set",
            "haMasterAddress=127.0.0.1:10912",
            "--set",
            "slaveReadEnable=true",
        ]),
        None,
        None,
    )
    .unwrap();
    assert!(config.is_slave());
    assert_eq!(config.ha_master_address.as_deref(), Some("127.0.0.1:10912"));
    assert!(config.slave_read_enable);
    assert_eq!(config.ha_listen_port(), config.listen_port + 1);
    assert_eq!(config.ha_server_addr(), "127.0.0.1:10912");
    let err = build_config(&cli(&["--set", "brokerRole=SLAVE"]), None, None).unwrap_err();
    assert!(
        err.to_string().contains("Slave's brokerId must be > 0"),
        "{err}"
    );
}

#[test]
fn printed_default_config_reads_back_too() {
    let (config, _) = build_config(&cli(&[]), None, None).unwrap();
    let mut reread = BrokerConfig::default();
    let warnings = reread
        .apply_properties("printed", &config.to_properties())
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(reread, config);
}

#[test]
fn printed_config_reads_back_to_the_same_config() {
    let (config, _) = build_config(&cli(&[]), Some(("broker.conf", BROKER_CONF)), None).unwrap();
    let mut reread = BrokerConfig::default();
    let warnings = reread
        .apply_properties("printed", &config.to_properties())
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(reread, config);
}

#[test]
fn addr_list_parsing() {
    assert_eq!(
        parse_addr_list(" a:1 ; b:2;"),
        Some(vec!["a:1".to_string(), "b:2".to_string()])
    );
    assert_eq!(parse_addr_list(""), None);
    assert_eq!(parse_addr_list("a"), None);
    assert_eq!(parse_addr_list("a:x"), None);
    assert_eq!(parse_addr_list(":1"), None);
}

#[test]
fn a_key_read_but_not_applied_says_so() {
    let (config, warnings) = build_config(
        &cli(&["--set", "ringmqGroupCommitMaxBytes=262144"]),
        None,
        None,
    )
    .unwrap();
    assert_eq!(config.group_commit_max_bytes, 262144);
    assert_eq!(
        warnings,
        vec![ConfigWarning::NotApplied {
            source_name: "command line".to_string(),
            key: "ringmqGroupCommitMaxBytes".to_string()
        }]
    );
    assert!(warnings[0].to_string().contains("not applied"));
}

#[test]
fn access_message_in_memory_ratio_is_a_percentage() {
    let result = build_config(
        &cli(&["--set", "accessMessageInMemoryMaxRatio=101"]),
        None,
        None,
    );
    assert!(matches!(result, Err(ConfigError::Invalid(_))), "{result:?}");
    let (config, _) = build_config(&cli(&[]), None, None).unwrap();
    assert_eq!(config.access_message_in_memory_max_ratio_percent, 40);
}

#[test]
fn java_properties_forms_real_files_use() {
    // Whitespace separators, continuations and escapes, as java.util.Properties reads them.
    let text = concat!(
        "brokerName broker-z\\\n",
        "    1\n",
        "namesrvAddr=127.0.0.1:9876;\\\n",
        "  127.0.0.1:9877\n",
        "storePathRootDir = /data/ring\\u006dq\n",
    );
    let (config, warnings) = build_config(&cli(&[]), Some(("b.conf", text)), None).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.broker_name, "broker-z1");
    assert_eq!(config.store_path_root_dir, PathBuf::from("/data/ringmq"));
    assert_eq!(
        config.namesrv_addrs,
        vec!["127.0.0.1:9876".to_string(), "127.0.0.1:9877".to_string()]
    );
    let error = build_config(&cli(&[]), Some(("b.conf", "a=1\nb=\\u12\n")), None);
    assert!(
        matches!(error, Err(ConfigError::Properties(ref e)) if e.line == 2),
        "{error:?}"
    );
}

#[test]
fn in_memory_share_of_physical_memory() {
    let mut config = BrokerConfig::default();
    assert_eq!(config.in_memory_max_bytes(1000), 400);
    assert_eq!(config.in_memory_max_bytes(24 << 30), (24u64 << 30) * 2 / 5);
    config.access_message_in_memory_max_ratio_percent = 0;
    assert_eq!(config.in_memory_max_bytes(24 << 30), 0);
    config.access_message_in_memory_max_ratio_percent = 100;
    assert_eq!(config.in_memory_max_bytes(u64::MAX), u64::MAX);
}

#[test]
fn metrics_exporter_keys_are_rocketmq_5s() {
    let mut config = BrokerConfig::default();
    assert_eq!(config.metrics_exporter_type, MetricsExporterType::Disable);
    assert_eq!(config.metrics_prom_exporter_port, 5557);
    let text = "metricsExporterType=PROM\nmetricsPromExporterHost=127.0.0.1\nmetricsPromExporterPort=15557\n";
    assert!(config.apply_properties("b.conf", text).unwrap().is_empty());
    assert_eq!(config.metrics_exporter_type, MetricsExporterType::Prom);
    assert_eq!(config.metrics_prom_exporter_port, 15557);
    assert!(config
        .apply_properties("b.conf", "metricsExporterType=OTLP_GRPC\n")
        .is_err());
}

#[test]
fn schedule_keys() {
    let mut c = BrokerConfig::default();
    assert_eq!(c.schedule.level_delays_ms.len(), 18);
    c.apply_properties(
        "b.conf",
        "messageDelayLevel=1s 2m 1h\ntimerMaxDelaySec=60\ntimerWheelEnable=false\nautoCreateSubscriptionGroup=false\n",
    )
    .unwrap();
    assert_eq!(c.schedule.level_delays_ms, vec![1000, 120_000, 3_600_000]);
    assert_eq!(c.schedule.timer_max_delay_sec, 60);
    assert!(!c.schedule.timer_enabled);
    assert!(!c.auto_create_subscription_group);
    let e = c
        .apply_properties("b.conf", "messageDelayLevel=1x\n")
        .unwrap_err();
    assert!(e.to_string().contains("messageDelayLevel"), "{e}");
}
