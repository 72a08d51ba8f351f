//! The transactional producer (Java `TransactionMQProducer`): sends a half message, runs the
//! local transaction, ends it with END_TRANSACTION; answers the broker's
//! CHECK_TRANSACTION_STATE on any of its connections with the check callback's verdict.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::{Rc, Weak};

use ringmq_proto::code::RequestCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{
    CheckTransactionStateRequestHeader, CommandHeader, EndTransactionRequestHeader,
    TRANSACTION_COMMIT_TYPE, TRANSACTION_NOT_TYPE, TRANSACTION_ROLLBACK_TYPE,
};
use ringmq_proto::message::ids::decode_offset_msg_id;
use ringmq_proto::message::{property, DecodedRecord};

use super::{master_addr, Producer, ProducerConfig, ProducerInner, SendResult, SendStatus};
use crate::error::ClientError;
use crate::message::{Message, MessageExt};
use crate::queue::QueueSelector;
use crate::remoting::ServerRequestHandler;
use crate::requests;

/// The outcome of a local transaction (Java `LocalTransactionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalTransactionState {
    CommitMessage,
    RollbackMessage,
    /// Not decided: the broker will ask again through the check callback.
    Unknown,
}

impl LocalTransactionState {
    fn wire(self) -> i32 {
        match self {
            LocalTransactionState::CommitMessage => TRANSACTION_COMMIT_TYPE,
            LocalTransactionState::RollbackMessage => TRANSACTION_ROLLBACK_TYPE,
            LocalTransactionState::Unknown => TRANSACTION_NOT_TYPE,
        }
    }
}

/// Answers a broker's check-back about a half message (Java `checkLocalTransaction`).
pub type CheckListener = Rc<dyn Fn(&MessageExt) -> LocalTransactionState>;

/// What [`TransactionProducer::send_in_transaction`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSendResult {
    pub send: SendResult,
    /// The state sent with END_TRANSACTION.
    pub state: LocalTransactionState,
}

/// A producer of transactional messages. `!Send`, bound to its executor.
#[derive(Clone)]
pub struct TransactionProducer {
    producer: Producer,
    /// Brokers already told about this producer group by a heartbeat, so their check-backs can
    /// find a connection right after the first half message (Java heartbeats on route change).
    heartbeated: Rc<RefCell<BTreeSet<String>>>,
}

impl TransactionProducer {
    /// Starts the producer; `check` answers the broker's check-backs.
    pub fn start(
        config: ProducerConfig,
        check: CheckListener,
    ) -> Result<TransactionProducer, ClientError> {
        let slot: Rc<RefCell<Weak<ProducerInner>>> = Rc::new(RefCell::new(Weak::new()));
        let handler_slot = slot.clone();
        let handler: ServerRequestHandler = Rc::new(move |addr, request| {
            if request.code == RequestCode::CheckTransactionState.code() {
                on_check(&handler_slot, &check, addr, request);
            }
            None
        });
        let producer = Producer::start_with_handler(config, Some(handler))?;
        *slot.borrow_mut() = Rc::downgrade(&producer.inner);
        Ok(TransactionProducer {
            producer,
            heartbeated: Rc::new(RefCell::new(BTreeSet::new())),
        })
    }

    /// The underlying producer (for plain sends, shutdown, client id).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Sends `message` as a half message, runs `execute` with the send result, and ends the
    /// transaction with its verdict (oneway, as Java does). A half message the broker did not
    /// store with SEND_OK is rolled back without running `execute`.
    pub async fn send_in_transaction<F>(
        &self,
        mut message: Message,
        selector: QueueSelector,
        execute: F,
    ) -> Result<TransactionSendResult, ClientError>
    where
        F: FnOnce(&SendResult) -> LocalTransactionState,
    {
        if message.property(property::DELAY).is_some() {
            return Err(ClientError::InvalidMessage(
                "delayed messages cannot be transactional".to_string(),
            ));
        }
        let inner = &self.producer.inner;
        message.set_property(property::TRAN_MSG, "true");
        message.set_property(property::PRODUCER_GROUP, inner.config.group.clone());
        let send = self.producer.send_with(message, selector).await?;
        let addr = {
            let route = inner.route(&send.queue.topic).await?;
            master_addr(&route, &send.queue)?.to_string()
        };
        self.heartbeat_once(&addr).await;
        let state = if send.status == SendStatus::SendOk {
            execute(&send)
        } else {
            LocalTransactionState::RollbackMessage
        };
        let header = end_header(&addr, &inner.config.group, &send, state)?;
        inner
            .core
            .pool
            .invoke_oneway(&addr, requests::end_transaction(&header))
            .await?;
        Ok(TransactionSendResult { send, state })
    }

    async fn heartbeat_once(&self, addr: &str) {
        if self.heartbeated.borrow().contains(addr) {
            return;
        }
        self.heartbeated.borrow_mut().insert(addr.to_string());
        self.producer.inner.send_heartbeats().await;
    }

    pub async fn shutdown(&self) {
        self.producer.shutdown().await;
    }
}

fn end_header(
    addr: &str,
    group: &str,
    send: &SendResult,
    state: LocalTransactionState,
) -> Result<EndTransactionRequestHeader, ClientError> {
    let offset = decode_offset_msg_id(&send.offset_msg_id)
        .map_err(|e| ClientError::BadResponse {
            addr: addr.to_string(),
            request_code: RequestCode::SendMessageV2.code(),
            detail: format!("half message id {:?}: {e}", send.offset_msg_id),
        })?
        .commit_log_offset;
    Ok(EndTransactionRequestHeader {
        topic: Some(send.queue.topic.clone()),
        producer_group: group.to_string(),
        tran_state_table_offset: send.queue_offset,
        commit_log_offset: offset,
        commit_or_rollback: state.wire(),
        from_transaction_check: false,
        msg_id: send.msg_id.clone(),
        transaction_id: send.transaction_id.clone(),
        broker_name: Some(send.queue.broker_name.clone()),
    })
}

/// A CHECK_TRANSACTION_STATE from `addr`: ask the listener, answer with END_TRANSACTION on the
/// same broker (Java `checkTransactionState`, which also reports UNKNOWN).
fn on_check(
    slot: &Rc<RefCell<Weak<ProducerInner>>>,
    check: &CheckListener,
    addr: &str,
    request: &RemotingCommand,
) {
    let Ok(header) = CheckTransactionStateRequestHeader::read_from(&request.ext_fields) else {
        tracing::warn!(addr, "CHECK_TRANSACTION_STATE with a bad header");
        return;
    };
    let message = match DecodedRecord::decode(&request.body) {
        Ok(decoded) => MessageExt::from_record(&request.body, &decoded, ""),
        Err(e) => {
            tracing::warn!(addr, error = %e, "CHECK_TRANSACTION_STATE with a bad body");
            return;
        }
    };
    let Ok(message) = message else { return };
    let Some(inner) = slot.borrow().upgrade() else {
        return;
    };
    let state = check(&message);
    let end = EndTransactionRequestHeader {
        topic: header.topic.clone(),
        producer_group: inner.config.group.clone(),
        tran_state_table_offset: header.tran_state_table_offset,
        commit_log_offset: header.commit_log_offset,
        commit_or_rollback: state.wire(),
        from_transaction_check: true,
        msg_id: header.msg_id.clone().unwrap_or_else(|| message.msg_id()),
        transaction_id: header.transaction_id.clone(),
        broker_name: header.broker_name.clone(),
    };
    let addr = addr.to_string();
    glommio::spawn_local(async move {
        let request = requests::end_transaction(&end);
        if let Err(e) = inner.core.pool.invoke_oneway(&addr, request).await {
            tracing::debug!(%addr, error = %e, "END_TRANSACTION after a check failed");
        }
    })
    .detach();
}
