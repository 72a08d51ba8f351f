//! clusterList, brokerStatus, getBrokerConfig, updateBrokerConfig, wipeWritePerm.

use ringmq_client::Admin;

use super::{masters_of, target_addrs};
use crate::cli::Target;
use crate::error::AdminError;
use crate::output::{Report, Table};

/// Runtime-info keys clusterList shows (Java `BrokerStatsManager` / `getRuntimeInfo` names).
const VERSION_KEY: &str = "brokerVersionDesc";
const IN_TPS_KEY: &str = "putTps";
const OUT_TPS_KEY: &str = "getTransferedTps";

pub async fn cluster_list(admin: &Admin, cluster: Option<&str>) -> Result<Report, AdminError> {
    let info = admin.cluster_info().await?;
    let mut table = Table::new(&[
        "Cluster Name",
        "Broker Name",
        "BID",
        "Addr",
        "Version",
        "InTPS",
        "OutTPS",
    ]);
    for (cluster_name, names) in &info.cluster_addr_table {
        if cluster.is_some_and(|c| c != cluster_name) {
            continue;
        }
        for name in names {
            let Some(data) = info.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &data.broker_addrs {
                // A broker that does not answer is listed as such, not dropped.
                let runtime = admin.broker_runtime_info(addr).await.ok();
                let get = |key: &str| {
                    runtime
                        .as_ref()
                        .and_then(|t| t.table.get(key))
                        .map(|v| first_number(v))
                        .unwrap_or_else(|| "-".to_string())
                };
                table.push(vec![
                    cluster_name.clone(),
                    name.clone(),
                    id.to_string(),
                    addr.clone(),
                    get(VERSION_KEY),
                    get(IN_TPS_KEY),
                    get(OUT_TPS_KEY),
                ]);
            }
        }
    }
    Ok(Report::Table(table))
}

/// Java's TPS values are "10s 1m 10m" triples; clusterList shows the first.
fn first_number(value: &str) -> String {
    value.split_whitespace().next().unwrap_or("-").to_string()
}

pub async fn broker_status(admin: &Admin, target: &Target) -> Result<Report, AdminError> {
    let addrs = target_addrs(admin, target).await?;
    let several = addrs.len() > 1;
    let mut pairs = Vec::new();
    for addr in &addrs {
        let table = admin.broker_runtime_info(addr).await?;
        for (key, value) in table.table {
            let key = if several {
                format!("{addr} {key}")
            } else {
                key
            };
            pairs.push((key, value));
        }
    }
    Ok(Report::Pairs(pairs))
}

pub async fn get_broker_config(admin: &Admin, target: &Target) -> Result<Report, AdminError> {
    let addrs = target_addrs(admin, target).await?;
    let several = addrs.len() > 1;
    let mut pairs = Vec::new();
    for addr in &addrs {
        for (key, value) in admin.broker_config(addr).await? {
            let key = if several {
                format!("{addr} {key}")
            } else {
                key
            };
            pairs.push((key, value));
        }
    }
    Ok(Report::Pairs(pairs))
}

pub async fn update_broker_config(
    admin: &Admin,
    target: &Target,
    key: &str,
    value: &str,
) -> Result<Report, AdminError> {
    let mut lines = Vec::new();
    for addr in target_addrs(admin, target).await? {
        admin.update_broker_config(&addr, &[(key, value)]).await?;
        lines.push(format!("update broker config success, {addr}"));
    }
    Ok(Report::Done(lines))
}

pub async fn wipe_write_perm(admin: &Admin, broker_name: &str) -> Result<Report, AdminError> {
    let info = admin.cluster_info().await?;
    if !masters_of(&info, None)
        .iter()
        .any(|b| b.name == broker_name)
    {
        return Err(AdminError::NotFound(format!(
            "broker {broker_name} is not registered with the name servers"
        )));
    }
    let counts = admin.wipe_write_perm(broker_name).await?;
    let lines = counts
        .into_iter()
        .map(|(addr, count)| {
            format!("wipe write perm of broker[{broker_name}] in name server[{addr}] OK, {count}")
        })
        .collect();
    Ok(Report::Done(lines))
}
