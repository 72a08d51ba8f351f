//! END_TRANSACTION (37), placed on the shard its `commitLogOffset` names (Java
//! `EndTransactionProcessor`). The work is `crate::transaction::TransactionService::end`; this
//! maps its outcome to RocketMQ's codes.

use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{CommandHeader, EndTransactionRequestHeader};

use super::{bad_header, respond_error, success, Outcome};
use crate::config::BrokerRole;
use crate::store::{Store, StoreError};
use crate::transaction::{EndOutcome, TransactionService};

pub async fn end_transaction(
    transaction: &TransactionService,
    store: &Store,
    role: BrokerRole,
    request: &RemotingCommand,
    now_ms: i64,
) -> Outcome {
    let header = match EndTransactionRequestHeader::read_from(&request.ext_fields) {
        Ok(header) => header,
        Err(e) => return bad_header(request, e),
    };
    if role == BrokerRole::Slave {
        // Java's answer, without a remark: a slave's log is a byte copy of its master's, so it
        // cannot append the final message and the op record.
        tracing::warn!("Message store is slave mode, so end transaction is forbidden.");
        let code = ResponseCode::SlaveNotAvailable.code();
        return Outcome::Respond(RemotingCommand::response_to(request, code, None));
    }
    match transaction.end(store, &header, now_ms).await {
        // Java answers nothing to UNKNOWN; a caller that waits gets SUCCESS instead of a timeout.
        EndOutcome::Done | EndOutcome::Ignored => Outcome::Respond(success(request)),
        EndOutcome::Refused(code, remark) => respond_error(request, code, remark),
        EndOutcome::StoreFailed(e) => {
            let code = match e {
                StoreError::ReadOnly { .. } | StoreError::Closed => {
                    ResponseCode::ServiceNotAvailable
                }
                _ => ResponseCode::SystemError,
            };
            respond_error(request, code, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ringmq_proto::code::RequestCode;
    use ringmq_proto::command::ExtFields;

    use super::*;
    use crate::processor::testing::run;
    use crate::transaction::TransactionConfig;

    fn end(fields: &[(&str, &str)]) -> RemotingCommand {
        let mut ext = ExtFields::new();
        for (k, v) in fields {
            ext.insert(*k, *v);
        }
        RemotingCommand::new_request(RequestCode::EndTransaction.code(), ext, Bytes::new())
    }

    fn answer(outcome: Outcome) -> RemotingCommand {
        match outcome {
            Outcome::Respond(r) => r,
            _ => panic!("END_TRANSACTION always responds"),
        }
    }

    #[test]
    fn codes_and_remarks_follow_java() {
        run(|f| async move {
            let root = f.config.store_path_root_dir.clone();
            let tx = TransactionService::open(&f.store, &root, 0, TransactionConfig::default())
                .await
                .unwrap();
            let base = [
                ("producerGroup", "g"),
                ("tranStateTableOffset", "0"),
                ("commitLogOffset", "4096"),
                ("commitOrRollback", "8"),
                ("msgId", "m"),
            ];
            let master = BrokerRole::AsyncMaster;
            let r = answer(end_transaction(&tx, &f.store, master, &end(&base), 1).await);
            assert_eq!(r.code, ResponseCode::SystemError.code());
            assert_eq!(
                r.remark.as_deref(),
                Some(crate::transaction::REMARK_NOT_FOUND)
            );
            let r = answer(end_transaction(&tx, &f.store, master, &end(&base[..3]), 1).await);
            assert_eq!(r.code, ResponseCode::SystemError.code());
            assert!(r.remark.unwrap().contains("commitOrRollback"));
            let mut unknown = base;
            unknown[3] = ("commitOrRollback", "0");
            let r = answer(end_transaction(&tx, &f.store, master, &end(&unknown), 1).await);
            assert_eq!(r.code, ResponseCode::Success.code());
            // A slave refuses, as Java does, before looking at the half message.
            let end_before = f.store.log_offsets().end;
            let slave = BrokerRole::Slave;
            let r = answer(end_transaction(&tx, &f.store, slave, &end(&base), 1).await);
            assert_eq!(r.code, ResponseCode::SlaveNotAvailable.code());
            assert_eq!(r.remark, None);
            assert_eq!(f.store.log_offsets().end, end_before);
        });
    }
}
