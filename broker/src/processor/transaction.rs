//! END_TRANSACTION (37), placed on the shard its `commitLogOffset` names (Java
//! `EndTransactionProcessor`). The work is `crate::transaction::TransactionService::end`; this
//! maps its outcome to RocketMQ's codes.

use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{CommandHeader, EndTransactionRequestHeader};

use super::{bad_header, respond_error, success, Outcome};
use crate::store::{Store, StoreError};
use crate::transaction::{EndOutcome, TransactionService};

pub async fn end_transaction(
    transaction: &TransactionService,
    store: &Store,
    request: &RemotingCommand,
    now_ms: i64,
) -> Outcome {
    let header = match EndTransactionRequestHeader::read_from(&request.ext_fields) {
        Ok(header) => header,
        Err(e) => return bad_header(request, e),
    };
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
            let r = answer(end_transaction(&tx, &f.store, &end(&base), 1).await);
            assert_eq!(r.code, ResponseCode::SystemError.code());
            assert_eq!(
                r.remark.as_deref(),
                Some(crate::transaction::REMARK_NOT_FOUND)
            );
            let r = answer(end_transaction(&tx, &f.store, &end(&base[..3]), 1).await);
            assert_eq!(r.code, ResponseCode::SystemError.code());
            assert!(r.remark.unwrap().contains("commitOrRollback"));
            let mut unknown = base;
            unknown[3] = ("commitOrRollback", "0");
            let r = answer(end_transaction(&tx, &f.store, &end(&unknown), 1).await);
            assert_eq!(r.code, ResponseCode::Success.code());
        });
    }
}
