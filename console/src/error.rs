//! The console's errors.

use ringmq_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot start: {0}")]
    Start(String),
    #[error("the remoting thread has stopped")]
    RemotingStopped,
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{addr} answered code {code}: {remark}")]
    Refused {
        addr: String,
        code: i32,
        remark: String,
    },
    #[error("bad request: {0}")]
    BadInput(String),
    #[error("not found: {0}")]
    NotFound(String),
}
