//! Configuration shared by producers, consumers and the admin client.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::ClientError;

/// Settings every client instance needs. Defaults are Java's (`ClientConfig`).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name server addresses, `ip:port`. At least one.
    pub namesrv_addrs: Vec<String>,
    /// The IP this client reports in its client id. Loopback by default: ringmq binds and
    /// advertises 127.0.0.1 only.
    pub client_ip: String,
    /// Distinguishes client instances in one process. `DEFAULT` is replaced by `pid#nanos#n`,
    /// as Java replaces it by `pid#nanoTime`, so that two clients never share an id.
    pub instance_name: String,
    pub connect_timeout_ms: u64,
    /// Timeout of admin, route, heartbeat, offset and consumer-list requests (Java: 3 s).
    pub request_timeout_ms: u64,
    /// Route refresh period for every topic in use (Java `pollNameServerInterval`: 30 s).
    pub route_refresh_interval_ms: u64,
    /// Heartbeat period to brokers (Java `heartbeatBrokerInterval`: 30 s).
    pub heartbeat_interval_ms: u64,
    /// ACL 1.0 account: when set, every request is signed (RocketMQ's `AclClientRPCHook`).
    pub credentials: Option<Credentials>,
}

/// Environment variable holding the access key when no flag gives one.
pub const ACCESS_KEY_ENV: &str = "RINGMQ_ACCESS_KEY";
/// Environment variable holding the secret key when no flag gives one.
pub const SECRET_KEY_ENV: &str = "RINGMQ_SECRET_KEY";

/// An ACL account's access key and secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Credentials {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        }
    }

    /// Credentials from flags, else from [`ACCESS_KEY_ENV`] / [`SECRET_KEY_ENV`]; `None` when
    /// neither gives both halves. Tools call this with their `--access-key/--secret-key`.
    pub fn from_flags_or_env(
        access_key: Option<&str>,
        secret_key: Option<&str>,
    ) -> Option<Credentials> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let access_key = access_key
            .map(str::to_string)
            .or_else(|| env(ACCESS_KEY_ENV))?;
        let secret_key = secret_key
            .map(str::to_string)
            .or_else(|| env(SECRET_KEY_ENV))?;
        Some(Credentials::new(access_key, secret_key))
    }

    /// Adds `AccessKey` and `Signature` to `request`, signing its other ext fields and body.
    pub fn sign(&self, request: &mut ringmq_proto::command::RemotingCommand) {
        ringmq_proto::acl::sign_request(
            &self.access_key,
            &self.secret_key,
            &mut request.ext_fields,
            &request.body,
        );
    }
}

impl ClientConfig {
    /// A configuration for the given name servers, written as Java accepts them: `a:9876;b:9876`.
    pub fn new(namesrv_addrs: &str) -> Result<ClientConfig, ClientError> {
        let addrs: Vec<String> = namesrv_addrs
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        let config = ClientConfig {
            namesrv_addrs: addrs,
            client_ip: "127.0.0.1".to_string(),
            instance_name: "DEFAULT".to_string(),
            connect_timeout_ms: 3_000,
            request_timeout_ms: 3_000,
            route_refresh_interval_ms: 30_000,
            heartbeat_interval_ms: 30_000,
            credentials: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that there is at least one name server and each is `ip:port`.
    pub fn validate(&self) -> Result<(), ClientError> {
        if self.namesrv_addrs.is_empty() {
            return Err(ClientError::Config("no name server address".to_string()));
        }
        for addr in &self.namesrv_addrs {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(ClientError::Config(format!(
                    "name server address {addr:?} is not ip:port"
                )));
            }
        }
        if self.request_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(ClientError::Config("timeouts must be positive".to_string()));
        }
        Ok(())
    }

    /// The client id sent in heartbeats: `clientIP@instanceName`, the form Java uses and that
    /// GET_CONSUMER_LIST_BY_GROUP echoes back.
    pub fn build_client_id(&self) -> String {
        let instance = if self.instance_name == "DEFAULT" {
            unique_instance_name()
        } else {
            self.instance_name.clone()
        };
        format!("{}@{}", self.client_ip, instance)
    }
}

thread_local! {
    static INSTANCE_COUNTER: Cell<u32> = const { Cell::new(0) };
}

/// `pid#nanos#n`: unique per process start, per thread (nanos) and per instance (n).
fn unique_instance_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = INSTANCE_COUNTER.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1));
        n
    });
    format!("{}#{}#{}", std::process::id(), nanos, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_semicolon_separated_name_servers() {
        let config = ClientConfig::new("127.0.0.1:9876; 127.0.0.1:9877;").unwrap();
        assert_eq!(config.namesrv_addrs, ["127.0.0.1:9876", "127.0.0.1:9877"]);
    }

    #[test]
    fn rejects_missing_or_malformed_addresses() {
        assert!(matches!(ClientConfig::new(""), Err(ClientError::Config(_))));
        assert!(matches!(
            ClientConfig::new("localhost"),
            Err(ClientError::Config(_))
        ));
    }

    #[test]
    fn default_instance_names_are_unique() {
        let config = ClientConfig::new("127.0.0.1:9876").unwrap();
        let a = config.build_client_id();
        let b = config.build_client_id();
        assert_ne!(a, b);
        assert!(a.starts_with("127.0.0.1@"));
        let named = ClientConfig {
            instance_name: "loadgen-3".to_string(),
            ..config
        };
        assert_eq!(named.build_client_id(), "127.0.0.1@loadgen-3");
    }

    #[test]
    fn credentials_sign_like_java_and_never_print_the_secret() {
        let credentials =
            Credentials::from_flags_or_env(Some("RocketMQ"), Some("12345678")).unwrap();
        assert!(!format!("{credentials:?}").contains("12345678"));
        let fields = [("b", "TopicTest"), ("a", "PG"), ("d", "4"), ("c", "TBW102")]
            .into_iter()
            .collect();
        let mut request = ringmq_proto::command::RemotingCommand::new_request(
            310,
            fields,
            bytes::Bytes::from_static(b"hello"),
        );
        credentials.sign(&mut request);
        assert_eq!(request.ext_fields.get("AccessKey"), Some("RocketMQ"));
        // printf '%s' 'RocketMQPGTopicTestTBW1024hello' | openssl dgst -sha1 -hmac 12345678 -binary | base64
        assert_eq!(
            request.ext_fields.get("Signature"),
            Some("1Nw7wPVK2eAkDjGJpjI89HxXeb0=")
        );
    }
}
