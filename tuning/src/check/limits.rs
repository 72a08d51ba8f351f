//! Listen backlogs and file-descriptor limits.

use super::{CheckItem, HostView, Status};
use crate::host;

/// Listen and SYN backlogs rpk checks for (`>= 4096`): a connection storm after a broker
/// restart (every producer and consumer reconnecting at once) must not drop SYNs.
pub const BACKLOG_WANTED: u64 = 4096;
/// RocketMQ's os.sh nofile: consume-queue files per queue, segments, index files, connections.
pub const NOFILE_WANTED: u64 = 655_350;
/// Below this the broker runs out of descriptors with a few hundred queues and connections.
pub const NOFILE_MINIMUM: u64 = 4096;

fn backlog_item(view: &HostView, id: &'static str, sysctl: &str) -> CheckItem {
    let wanted = format!(">= {BACKLOG_WANTED}");
    let fix = format!("sysctl -w {sysctl}={BACKLOG_WANTED}");
    match host::sysctl(view.root, sysctl).map(|v| v.parse::<u64>()) {
        Ok(Ok(value)) => {
            let status = if value >= BACKLOG_WANTED {
                Status::Ok
            } else {
                Status::Warn
            };
            CheckItem::new(id, status, value.to_string(), wanted).fix(fix)
        }
        _ => CheckItem::new(id, Status::Warn, "unreadable", wanted).fix(fix),
    }
}

/// `net.core.somaxconn`: caps every listen backlog.
pub fn somaxconn(view: &HostView) -> CheckItem {
    backlog_item(view, "somaxconn", "net.core.somaxconn")
}

/// `net.ipv4.tcp_max_syn_backlog`: half-open connections kept per listener.
pub fn tcp_max_syn_backlog(view: &HostView) -> CheckItem {
    backlog_item(view, "tcp_max_syn_backlog", "net.ipv4.tcp_max_syn_backlog")
}

/// RLIMIT_NOFILE (soft) of this process and the system-wide `fs.file-max`.
pub fn file_descriptors(view: &HostView) -> CheckItem {
    let wanted = format!("soft nofile >= {NOFILE_WANTED} (os.sh), fs.file-max >= {NOFILE_WANTED}");
    let limit = host::process_limit(view.root, "Max open files");
    let file_max = host::sysctl(view.root, "fs.file-max")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let Ok((soft, _hard)) = limit else {
        return CheckItem::new(
            "file_descriptors",
            Status::Warn,
            "limits unreadable",
            wanted,
        );
    };
    let soft_value = soft.unwrap_or(u64::MAX);
    let file_max_value = file_max.unwrap_or(0);
    let status = if soft_value < NOFILE_MINIMUM {
        Status::Fail
    } else if soft_value < NOFILE_WANTED || file_max_value < NOFILE_WANTED {
        Status::Warn
    } else {
        Status::Ok
    };
    let show = |v: Option<u64>| v.map_or("unlimited".to_string(), |n| n.to_string());
    let mut fixes = Vec::new();
    if soft_value < NOFILE_WANTED {
        fixes.push(format!(
            "ulimit -n {NOFILE_WANTED} (shell), or LimitNOFILE={NOFILE_WANTED} (systemd unit), or '* - nofile {NOFILE_WANTED}' in /etc/security/limits.d/ringmq.conf"
        ));
    }
    if file_max_value < NOFILE_WANTED {
        fixes.push(format!("sysctl -w fs.file-max={NOFILE_WANTED}"));
    }
    CheckItem::new(
        "file_descriptors",
        status,
        format!(
            "soft nofile {} (this process), fs.file-max {}",
            show(soft),
            file_max.map_or("unreadable".to_string(), |n| n.to_string())
        ),
        wanted,
    )
    .fix(fixes.join("; "))
}
