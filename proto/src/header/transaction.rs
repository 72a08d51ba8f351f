//! END_TRANSACTION (37) and CHECK_TRANSACTION_STATE (39) headers (reference §6).

use super::command_header;

/// `commitOrRollback` value: commit the half message.
pub const TRANSACTION_COMMIT_TYPE: i32 = 0x8;
/// `commitOrRollback` value: roll the half message back.
pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0xC;
/// `commitOrRollback` value: no decision yet; wait for the check-back.
pub const TRANSACTION_NOT_TYPE: i32 = 0x0;

/// What an END_TRANSACTION asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionResolution {
    Commit,
    Rollback,
    /// UNKNOWN (0) or any other value: ignore, the check-back will ask again.
    Unknown(i32),
}

command_header! {
    /// END_TRANSACTION request (oneway).
    pub struct EndTransactionRequestHeader {
        topic: Option<String> = "topic",
        producer_group: String = "producerGroup",
        /// Half-queue offset from the send response.
        tran_state_table_offset: i64 = "tranStateTableOffset",
        /// Commit-log offset of the half record (decoded from its offsetMsgId).
        commit_log_offset: i64 = "commitLogOffset",
        /// [`TRANSACTION_COMMIT_TYPE`], [`TRANSACTION_ROLLBACK_TYPE`] or
        /// [`TRANSACTION_NOT_TYPE`].
        commit_or_rollback: i32 = "commitOrRollback",
        from_transaction_check: bool = "fromTransactionCheck" or false,
        msg_id: String = "msgId",
        transaction_id: Option<String> = "transactionId",
        broker_name: Option<String> = "bname",
    }
}

impl EndTransactionRequestHeader {
    /// The decision, from `commit_or_rollback`.
    pub fn resolution(&self) -> TransactionResolution {
        match self.commit_or_rollback {
            TRANSACTION_COMMIT_TYPE => TransactionResolution::Commit,
            TRANSACTION_ROLLBACK_TYPE => TransactionResolution::Rollback,
            other => TransactionResolution::Unknown(other),
        }
    }
}

command_header! {
    /// CHECK_TRANSACTION_STATE request (broker → client, oneway); the body is the half
    /// message.
    pub struct CheckTransactionStateRequestHeader {
        topic: Option<String> = "topic",
        tran_state_table_offset: i64 = "tranStateTableOffset",
        commit_log_offset: i64 = "commitLogOffset",
        /// The message's UNIQ_KEY.
        msg_id: Option<String> = "msgId",
        transaction_id: Option<String> = "transactionId",
        offset_msg_id: Option<String> = "offsetMsgId",
        broker_name: Option<String> = "bname",
    }
}
