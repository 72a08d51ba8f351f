//! The admin tool's errors and the exit code each maps to, so scripts can tell "the broker said
//! no" from "nothing answered" from "no such thing".

use ringmq_client::ClientError;
use ringmq_proto::code::{RequestCode, ResponseCode};

/// Exit code of a successful run.
pub const EXIT_OK: i32 = 0;
/// A broker or name server answered with a non-success response code.
pub const EXIT_SERVER_REFUSED: i32 = 1;
/// Bad flags or arguments (clap uses the same code for its own usage errors).
pub const EXIT_USAGE: i32 = 2;
/// A server could not be reached or did not answer in time.
pub const EXIT_UNREACHABLE: i32 = 3;
/// What was asked for does not exist (topic route, message, group).
pub const EXIT_NOT_FOUND: i32 = 4;
/// A server answered with something the tool cannot decode.
pub const EXIT_BAD_RESPONSE: i32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{}", describe_client_error(.0))]
    Client(#[from] ClientError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
}

impl AdminError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AdminError::Usage(_) => EXIT_USAGE,
            AdminError::NotFound(_) => EXIT_NOT_FOUND,
            AdminError::Client(e) => client_exit_code(e),
        }
    }
}

fn client_exit_code(error: &ClientError) -> i32 {
    match error {
        ClientError::Server { code, .. } if *code == ResponseCode::TopicNotExist.code() => {
            EXIT_NOT_FOUND
        }
        ClientError::Server { .. } => EXIT_SERVER_REFUSED,
        ClientError::Connect { .. }
        | ClientError::ConnectionClosed { .. }
        | ClientError::Timeout { .. }
        | ClientError::NameServerUnavailable { .. } => EXIT_UNREACHABLE,
        ClientError::NoRoute { .. } | ClientError::NoQueue { .. } => EXIT_NOT_FOUND,
        ClientError::Config(_) | ClientError::InvalidMessage(_) => EXIT_USAGE,
        _ => EXIT_BAD_RESPONSE,
    }
}

/// Names the server, the request and the response code by name and number.
fn describe_client_error(error: &ClientError) -> String {
    match error {
        ClientError::Server {
            addr,
            request_code,
            code,
            remark,
        } => format!(
            "{addr} answered {} ({request_code}) with {} ({code}): {remark}",
            RequestCode::from_code(*request_code).name(),
            ResponseCode::from_code(*code).name(),
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_name_the_broker_and_both_codes() {
        let error = AdminError::from(ClientError::Server {
            addr: "127.0.0.1:10911".into(),
            request_code: 208,
            code: 26,
            remark: "the consumer group not exist".into(),
        });
        assert_eq!(
            error.to_string(),
            "127.0.0.1:10911 answered GET_CONSUME_STATS (208) with \
             SUBSCRIPTION_GROUP_NOT_EXIST (26): the consumer group not exist"
        );
        assert_eq!(error.exit_code(), EXIT_SERVER_REFUSED);
    }

    #[test]
    fn unreachable_and_missing_have_their_own_codes() {
        let refused = ClientError::Connect {
            addr: "127.0.0.1:1".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(AdminError::from(refused).exit_code(), EXIT_UNREACHABLE);
        let no_route = ClientError::NoRoute { topic: "T".into() };
        assert_eq!(AdminError::from(no_route).exit_code(), EXIT_NOT_FOUND);
    }
}
