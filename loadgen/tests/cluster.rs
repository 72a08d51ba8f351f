//! The quickstart's orchestration against the real `ringmq-namesrv` and `ringmq-broker`
//! binaries of this build: both start on free 127.0.0.1 ports in a temporary directory, the
//! broker registers with the name server, and both are stopped by PID when the cluster drops.
//! (`scripts/test.sh` builds the binaries before the tests.)

use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use ringmq_client::{Admin, ClientConfig};
use ringmq_loadgen::cli::{FlushMode, Replication};
use ringmq_loadgen::cluster::LocalCluster;

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Masters registered with the name server at `namesrv`, polled for up to 20 s.
fn registered_masters(namesrv: String) -> Vec<String> {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .make()
        .expect("executor")
        .run(async move {
            let admin = Admin::new(ClientConfig::new(&namesrv).expect("config")).expect("admin");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(info) = admin.cluster_info().await {
                    let masters: Vec<String> = info
                        .broker_addr_table
                        .values()
                        .filter_map(|b| b.broker_addrs.get(&0).cloned())
                        .collect();
                    if !masters.is_empty() || Instant::now() > deadline {
                        admin.shutdown();
                        return masters;
                    }
                }
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        })
}

#[test]
fn local_cluster_starts_registers_and_stops_by_pid() {
    let mut cluster = LocalCluster::start(FlushMode::SyncFlush, 1, false, Replication::None, 32)
        .expect("cluster starts");
    let (namesrv_pid, broker_pid) = cluster.pids();
    let (namesrv_pid, broker_pid) = (namesrv_pid.expect("pid"), broker_pid.expect("pid"));
    assert!(alive(namesrv_pid) && alive(broker_pid));
    assert!(cluster.dir().join("broker.conf").is_file());
    let conf = std::fs::read_to_string(cluster.dir().join("broker.conf")).expect("conf");
    assert!(conf.contains("flushDiskType=SYNC_FLUSH"), "{conf}");

    let masters = registered_masters(cluster.namesrv_addr.to_string());
    assert_eq!(masters, vec![cluster.broker_addr.to_string()]);
    cluster.check_alive().expect("both servers still running");
    assert_eq!(
        cluster.target_facts().flush_disk_type.as_deref(),
        Some("SYNC_FLUSH")
    );

    let dir = cluster.dir().to_path_buf();
    drop(cluster);
    assert!(!alive(namesrv_pid), "name server {namesrv_pid} survived");
    assert!(!alive(broker_pid), "broker {broker_pid} survived");
    assert!(
        !dir.exists(),
        "temporary directory {} left behind",
        dir.display()
    );
}
