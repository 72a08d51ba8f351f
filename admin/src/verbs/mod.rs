//! One function per verb; each returns a [`Report`].

mod cluster;
mod group;
mod message;
mod status;
mod topic;

use ringmq_client::Admin;
use ringmq_proto::body::ClusterInfo;

use crate::cli::{Target, Verb};
use crate::error::AdminError;
use crate::output::Report;

pub async fn dispatch(admin: &Admin, verb: &Verb) -> Result<Report, AdminError> {
    match verb {
        Verb::ClusterList { cluster } => cluster::cluster_list(admin, cluster.as_deref()).await,
        Verb::BrokerStatus(target) => cluster::broker_status(admin, target).await,
        Verb::GetBrokerConfig(target) => cluster::get_broker_config(admin, target).await,
        Verb::UpdateBrokerConfig { target, key, value } => {
            cluster::update_broker_config(admin, target, key, value).await
        }
        Verb::WipeWritePerm { broker_name } => cluster::wipe_write_perm(admin, broker_name).await,
        Verb::TopicList => topic::topic_list(admin).await,
        Verb::TopicRoute { topic } => topic::topic_route(admin, topic).await,
        Verb::TopicStatus { topic } => topic::topic_status(admin, topic).await,
        Verb::UpdateTopic(args) => topic::update_topic(admin, args).await,
        Verb::DeleteTopic { topic, cluster } => topic::delete_topic(admin, topic, cluster).await,
        Verb::UpdateSubGroup(args) => group::update_sub_group(admin, args).await,
        Verb::DeleteSubGroup {
            target,
            group,
            remove_offset,
        } => group::delete_sub_group(admin, target, group, *remove_offset).await,
        Verb::ConsumerProgress { group, topic } => {
            group::consumer_progress(admin, group, topic.as_deref()).await
        }
        Verb::ConsumerConnection { group } => group::consumer_connection(admin, group).await,
        Verb::ConsumerStatus { group, client_id } => {
            status::consumer_status(admin, group, client_id.as_deref()).await
        }
        Verb::ProducerConnection { group, topic } => {
            group::producer_connection(admin, group, topic).await
        }
        Verb::ResetOffsetByTime(args) => group::reset_offset_by_time(admin, args).await,
        Verb::QueryMsgById(args) => message::query_by_id(admin, args).await,
        Verb::GetConsumerStatus {
            group,
            topic,
            client_id,
        } => status::get_consumer_status(admin, group, topic, client_id.as_deref()).await,
        Verb::QueryMsgByKey(args) => message::query_by_key(admin, args).await,
        Verb::QueryMsgByOffset {
            topic,
            broker_name,
            queue_id,
            offset,
        } => message::query_by_offset(admin, topic, broker_name, *queue_id, *offset).await,
        Verb::SendMessage(args) => message::send_message(admin, args).await,
        Verb::ConsumeMessage(args) => message::consume_message(admin, args).await,
    }
}

/// One broker a verb talks to.
pub struct BrokerRef {
    pub cluster: String,
    pub name: String,
    pub addr: String,
}

/// Every master broker the name servers know, by cluster then name.
async fn masters(admin: &Admin) -> Result<Vec<BrokerRef>, AdminError> {
    let info = admin.cluster_info().await?;
    Ok(masters_of(&info, None))
}

fn masters_of(info: &ClusterInfo, cluster: Option<&str>) -> Vec<BrokerRef> {
    let mut out = Vec::new();
    for (cluster_name, names) in &info.cluster_addr_table {
        if cluster.is_some_and(|c| c != cluster_name) {
            continue;
        }
        for name in names {
            let addr = info
                .broker_addr_table
                .get(name)
                .and_then(|data| data.master_addr());
            if let Some(addr) = addr {
                out.push(BrokerRef {
                    cluster: cluster_name.clone(),
                    name: name.clone(),
                    addr: addr.to_string(),
                });
            }
        }
    }
    out
}

/// The broker addresses `-b` / `-c` name; one of the two is required.
async fn target_addrs(admin: &Admin, target: &Target) -> Result<Vec<String>, AdminError> {
    if let Some(addr) = &target.broker {
        return Ok(vec![addr.clone()]);
    }
    let Some(cluster) = &target.cluster else {
        return Err(AdminError::Usage(
            "give a broker (-b ip:port) or a cluster (-c name)".to_string(),
        ));
    };
    let info = admin.cluster_info().await?;
    let addrs: Vec<String> = masters_of(&info, Some(cluster))
        .into_iter()
        .map(|b| b.addr)
        .collect();
    if addrs.is_empty() {
        return Err(AdminError::NotFound(format!(
            "cluster {cluster} has no master broker"
        )));
    }
    Ok(addrs)
}

/// Master address of each broker of a topic's route, by broker name.
async fn route_masters(admin: &Admin, topic: &str) -> Result<Vec<(String, String)>, AdminError> {
    let route = admin.topic_route(topic).await?;
    let mut out: Vec<(String, String)> = route
        .data
        .broker_datas
        .iter()
        .filter_map(|b| {
            b.master_addr()
                .map(|a| (b.broker_name.clone(), a.to_string()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// `2026-12-07 02:40:00.123` (UTC) for a ms timestamp; `-` for 0.
fn format_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_string();
    }
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a (year, month, day).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// mqadmin's `-s`: `now`, ms since the epoch, or `yyyy-MM-dd#HH:mm:ss:SSS` (read as UTC).
pub fn parse_timestamp(text: &str, now_ms: i64) -> Result<i64, AdminError> {
    if text == "now" {
        return Ok(now_ms);
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        AdminError::Usage(format!(
            "bad timestamp {text:?}: use now, ms, or yyyy-MM-dd#HH:mm:ss:SSS"
        ))
    };
    let (date, time) = text.split_once('#').ok_or_else(bad)?;
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let date: Vec<&str> = date.split('-').collect();
    let time: Vec<&str> = time.split(':').collect();
    if date.len() != 3 || time.len() != 4 {
        return Err(bad());
    }
    let days = days_from_civil(num(date[0])?, num(date[1])?, num(date[2])?);
    let secs = days * 86_400 + num(time[0])? * 3600 + num(time[1])? * 60 + num(time[2])?;
    Ok(secs * 1000 + num(time[3])?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_and_format_in_utc() {
        let ms = parse_timestamp("2026-12-07#02:40:05:123", 0).unwrap();
        assert_eq!(format_ms(ms), "2026-12-07 02:40:05.123");
        assert_eq!(parse_timestamp("now", 42).unwrap(), 42);
        assert_eq!(
            parse_timestamp("1700000000000", 0).unwrap(),
            1_700_000_000_000
        );
        assert!(parse_timestamp("yesterday", 0).is_err());
        assert_eq!(format_ms(0), "-");
    }
}
