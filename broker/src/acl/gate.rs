//! What the server calls: start-up (load the file, start the watcher) and the per-request
//! check that turns a refusal into Java's answer and a log line.

use std::net::SocketAddr;
use std::sync::Arc;

use ringmq_proto::acl::ACCESS_KEY;
use ringmq_proto::command::RemotingCommand;

use super::check::{validate, AclRequest};
use super::watch::{AclShared, AclView, AclWatcher};
use super::{acl_file_path, AclError, REFUSAL_CODE};
use crate::config::BrokerConfig;

/// The process-wide part: the published snapshot and its watcher (kept alive by the server).
pub struct AclRuntime {
    pub shared: Arc<AclShared>,
    _watcher: AclWatcher,
}

impl AclRuntime {
    /// `None` when `aclEnable` is off. With it on, a missing or broken file stops start-up:
    /// a broker that meant to check access must not run open.
    pub fn start(config: &BrokerConfig) -> Result<Option<AclRuntime>, AclError> {
        if !config.acl_enable {
            return Ok(None);
        }
        let home = std::env::var("ROCKETMQ_HOME").ok();
        let path = acl_file_path(config.acl_file_path.as_deref(), home.as_deref());
        let (shared, watcher) =
            AclWatcher::load_and_watch(path.clone(), config.acl_reload_interval_ms)?;
        let accounts = shared.with_snapshot(|c| c.accounts.len());
        tracing::info!(path = %path.display(), accounts, "ACL enabled");
        Ok(Some(AclRuntime {
            shared,
            _watcher: watcher,
        }))
    }
}

/// One shard's check.
pub struct AclGate {
    view: AclView,
}

impl AclGate {
    pub fn new(shared: Arc<AclShared>) -> AclGate {
        AclGate {
            view: AclView::new(shared),
        }
    }

    /// `Ok` to dispatch the request; `Err(response)` to answer it with a refusal instead. The
    /// refusal is logged with the access key and the peer, never the secret or signature.
    pub fn check(
        &self,
        request: &RemotingCommand,
        peer: SocketAddr,
    ) -> Result<(), RemotingCommand> {
        let acl_request = AclRequest {
            code: request.code,
            ext_fields: &request.ext_fields,
            body: &request.body,
            remote_ip: peer.ip(),
        };
        let refusal = match self
            .view
            .with_config(|config| validate(config, &acl_request))
        {
            Ok(()) => return Ok(()),
            Err(refusal) => refusal,
        };
        tracing::warn!(
            access_key = request.ext_fields.get(ACCESS_KEY).unwrap_or(""),
            remote = %peer,
            code = request.code,
            reason = %refusal.message,
            "ACL refused a request"
        );
        Err(RemotingCommand::response_to(
            request,
            REFUSAL_CODE.code(),
            Some(refusal.message),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ringmq_proto::command::ExtFields;

    #[test]
    fn a_refusal_is_no_permission_with_the_java_message() {
        let config = super::super::AclConfig::parse(
            "accounts: [ {accessKey: RocketMQ, secretKey: 12345678, defaultTopicPerm: PUB} ]",
        )
        .unwrap();
        let gate = AclGate::new(AclShared::new(config));
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let fields: ExtFields = [("b", "T")].into_iter().collect();
        let mut request = RemotingCommand::new_request(310, fields, Bytes::new());
        request.opaque = 7;
        let refused = gate.check(&request, peer).unwrap_err();
        assert_eq!(refused.code, 16);
        assert_eq!(refused.opaque, 7);
        assert!(refused.is_response());
        assert_eq!(
            refused.remark.as_deref(),
            Some("No accessKey is configured")
        );
        ringmq_proto::acl::sign_request("RocketMQ", "12345678", &mut request.ext_fields, &[]);
        assert!(gate.check(&request, peer).is_ok());
    }
}
