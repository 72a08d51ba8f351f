//! Request and response codes: every named code maps to its number and back, numbers are
//! unique, unknown numbers survive as `Unknown`.

use std::collections::HashSet;

use ringmq_proto::code::{RequestCode, ResponseCode};

#[test]
fn every_request_code_round_trips_and_is_unique() {
    let mut seen = HashSet::new();
    for &code in RequestCode::ALL {
        assert_eq!(RequestCode::from_code(code.code()), code, "{}", code.name());
        assert!(seen.insert(code.code()), "duplicate number {}", code.code());
        assert_ne!(code.name(), "UNKNOWN");
    }
}

#[test]
fn every_response_code_round_trips_and_is_unique() {
    let mut seen = HashSet::new();
    for &code in ResponseCode::ALL {
        assert_eq!(
            ResponseCode::from_code(code.code()),
            code,
            "{}",
            code.name()
        );
        assert!(seen.insert(code.code()), "duplicate number {}", code.code());
    }
}

#[test]
fn the_reference_request_codes_have_their_numbers() {
    // Reference §2.2 and §1.5, written out by hand.
    let expected = [
        (10, RequestCode::SendMessage),
        (310, RequestCode::SendMessageV2),
        (320, RequestCode::SendBatchMessage),
        (11, RequestCode::PullMessage),
        (361, RequestCode::LitePullMessage),
        (12, RequestCode::QueryMessage),
        (33, RequestCode::ViewMessageById),
        (14, RequestCode::QueryConsumerOffset),
        (15, RequestCode::UpdateConsumerOffset),
        (29, RequestCode::SearchOffsetByTimestamp),
        (30, RequestCode::GetMaxOffset),
        (31, RequestCode::GetMinOffset),
        (32, RequestCode::GetEarliestMsgStoretime),
        (34, RequestCode::HeartBeat),
        (35, RequestCode::UnregisterClient),
        (36, RequestCode::ConsumerSendMsgBack),
        (37, RequestCode::EndTransaction),
        (38, RequestCode::GetConsumerListByGroup),
        (39, RequestCode::CheckTransactionState),
        (40, RequestCode::NotifyConsumerIdsChanged),
        (41, RequestCode::LockBatchMq),
        (42, RequestCode::UnlockBatchMq),
        (46, RequestCode::CheckClientConfig),
        (17, RequestCode::UpdateAndCreateTopic),
        (21, RequestCode::GetAllTopicConfig),
        (105, RequestCode::GetRouteinfoByTopic),
        (106, RequestCode::GetBrokerClusterInfo),
        (103, RequestCode::RegisterBroker),
        (104, RequestCode::UnregisterBroker),
        (100, RequestCode::PutKvConfig),
        (101, RequestCode::GetKvConfig),
        (102, RequestCode::DeleteKvConfig),
        (219, RequestCode::GetKvlistByNamespace),
        (206, RequestCode::GetAllTopicListFromNameserver),
        (205, RequestCode::WipeWritePermOfBroker),
        (215, RequestCode::DeleteTopicInBroker),
        (216, RequestCode::DeleteTopicInNamesrv),
        (322, RequestCode::QueryDataVersion),
        (904, RequestCode::BrokerHeartbeat),
        (220, RequestCode::ResetConsumerClientOffset),
        (221, RequestCode::GetConsumerStatusFromClient),
        (307, RequestCode::GetConsumerRunningInfo),
        (309, RequestCode::ConsumeMessageDirectly),
        (326, RequestCode::PushReplyMessageToClient),
        (200050, RequestCode::PopMessage),
    ];
    for (number, code) in expected {
        assert_eq!(RequestCode::from_code(number), code);
        assert_eq!(code.code(), number);
    }
}

#[test]
fn the_reference_response_codes_have_their_numbers() {
    let expected = [
        (0, ResponseCode::Success),
        (1, ResponseCode::SystemError),
        (2, ResponseCode::SystemBusy),
        (3, ResponseCode::RequestCodeNotSupported),
        (4, ResponseCode::TransactionFailed),
        (10, ResponseCode::FlushDiskTimeout),
        (11, ResponseCode::SlaveNotAvailable),
        (12, ResponseCode::FlushSlaveTimeout),
        (13, ResponseCode::MessageIllegal),
        (14, ResponseCode::ServiceNotAvailable),
        (15, ResponseCode::VersionNotSupported),
        (16, ResponseCode::NoPermission),
        (17, ResponseCode::TopicNotExist),
        (18, ResponseCode::TopicExistAlready),
        (19, ResponseCode::PullNotFound),
        (20, ResponseCode::PullRetryImmediately),
        (21, ResponseCode::PullOffsetMoved),
        (22, ResponseCode::QueryNotFound),
        (23, ResponseCode::SubscriptionParseFailed),
        (24, ResponseCode::SubscriptionNotExist),
        (25, ResponseCode::SubscriptionNotLatest),
        (26, ResponseCode::SubscriptionGroupNotExist),
        (27, ResponseCode::FilterDataNotExist),
        (28, ResponseCode::FilterDataNotLatest),
        (29, ResponseCode::InvalidParameter),
        (200, ResponseCode::TransactionShouldCommit),
        (201, ResponseCode::TransactionShouldRollback),
        (202, ResponseCode::TransactionStateUnknow),
        (204, ResponseCode::NoBuyerId),
        (205, ResponseCode::NotInCurrentUnit),
        (206, ResponseCode::ConsumerNotOnline),
        (207, ResponseCode::ConsumeMsgTimeout),
        (208, ResponseCode::NoMessage),
        (209, ResponseCode::PollingFull),
        (210, ResponseCode::PollingTimeout),
        (211, ResponseCode::BrokerNotExist),
        (215, ResponseCode::FlowControl),
        (501, ResponseCode::NotLeaderForQueue),
        (604, ResponseCode::IllegalOperation),
        (1500, ResponseCode::GoAway),
        (-1000, ResponseCode::RpcUnknown),
        (-1006, ResponseCode::RpcTimeOut),
    ];
    for (number, code) in expected {
        assert_eq!(ResponseCode::from_code(number), code);
        assert_eq!(code.code(), number);
    }
}

#[test]
fn unknown_numbers_are_kept() {
    assert_eq!(RequestCode::from_code(9999), RequestCode::Unknown(9999));
    assert_eq!(RequestCode::Unknown(9999).code(), 9999);
    assert_eq!(ResponseCode::from_code(-7), ResponseCode::Unknown(-7));
    assert_eq!(i32::from(ResponseCode::from(-7)), -7);
}

#[test]
fn response_codes_fit_the_go_clients_int16() {
    // Reference §1.3: Go decodes code as int16.
    for &code in ResponseCode::ALL {
        assert!(i16::try_from(code.code()).is_ok(), "{}", code.name());
    }
}

#[test]
fn send_stored_codes_are_the_four_the_clients_accept() {
    let stored: Vec<i32> = ResponseCode::ALL
        .iter()
        .filter(|c| c.is_send_stored())
        .map(|c| c.code())
        .collect();
    assert_eq!(stored, vec![0, 10, 11, 12]);
}
