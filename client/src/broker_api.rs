//! Typed broker calls shared by the consumers and the admin client: offsets, consumer lists,
//! send-back, queue locks, client config checks. Each is one request and one decoded answer.

use ringmq_proto::body::{ConsumerListBody, JsonBody, LockBatchResponseBody, SubscriptionData};
use ringmq_proto::code::ResponseCode;

use crate::core::ClientCore;
use crate::error::ClientError;
use crate::message::MessageExt;
use crate::queue::MessageQueue;
use crate::requests;

/// QUERY_CONSUMER_OFFSET: the group's committed offset of `queue`, `None` when the broker has
/// none (QUERY_NOT_FOUND).
pub(crate) async fn query_consumer_offset(
    core: &ClientCore,
    addr: &str,
    group: &str,
    queue: &MessageQueue,
) -> Result<Option<i64>, ClientError> {
    let request = requests::query_consumer_offset(group, queue);
    let request_code = request.code;
    let response = core.invoke_broker(addr, request).await?;
    if response.code == ResponseCode::QueryNotFound.code() {
        return Ok(None);
    }
    requests::expect_success(addr, request_code, &response)?;
    requests::parse_offset(addr, request_code, &response).map(Some)
}

/// UPDATE_CONSUMER_OFFSET, waiting for the broker's answer.
pub(crate) async fn update_consumer_offset(
    core: &ClientCore,
    addr: &str,
    group: &str,
    queue: &MessageQueue,
    offset: i64,
) -> Result<(), ClientError> {
    let request = requests::update_consumer_offset(group, queue, offset);
    let request_code = request.code;
    let response = core.invoke_broker(addr, request).await?;
    requests::expect_success(addr, request_code, &response)
}

/// UPDATE_CONSUMER_OFFSET as a oneway request (the periodic commit).
pub(crate) async fn update_consumer_offset_oneway(
    core: &ClientCore,
    addr: &str,
    group: &str,
    queue: &MessageQueue,
    offset: i64,
) -> Result<(), ClientError> {
    let request = requests::update_consumer_offset(group, queue, offset);
    core.pool.invoke_oneway(addr, request).await
}

/// Sends an offset request (GET_MAX_OFFSET, GET_MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP) and
/// reads the `offset` header of its SUCCESS answer.
async fn invoke_for_offset(
    core: &ClientCore,
    addr: &str,
    request: ringmq_proto::command::RemotingCommand,
) -> Result<i64, ClientError> {
    let request_code = request.code;
    let response = core.invoke_broker(addr, request).await?;
    requests::expect_success(addr, request_code, &response)?;
    requests::parse_offset(addr, request_code, &response)
}

/// GET_MAX_OFFSET: the next offset to be written in `queue`.
pub(crate) async fn max_offset(
    core: &ClientCore,
    addr: &str,
    queue: &MessageQueue,
) -> Result<i64, ClientError> {
    let request = requests::get_max_offset(queue);
    invoke_for_offset(core, addr, request).await
}

/// GET_MIN_OFFSET: the oldest offset still in `queue`.
pub(crate) async fn min_offset(
    core: &ClientCore,
    addr: &str,
    queue: &MessageQueue,
) -> Result<i64, ClientError> {
    let request = requests::get_min_offset(queue);
    invoke_for_offset(core, addr, request).await
}

/// SEARCH_OFFSET_BY_TIMESTAMP: the first offset of `queue` stored at or after `timestamp_ms`.
pub(crate) async fn offset_at_time(
    core: &ClientCore,
    addr: &str,
    queue: &MessageQueue,
    timestamp_ms: i64,
) -> Result<i64, ClientError> {
    let request = requests::search_offset_by_timestamp(queue, timestamp_ms);
    invoke_for_offset(core, addr, request).await
}

/// GET_CONSUMER_LIST_BY_GROUP: the ids of the group's live consumers as the broker knows them.
pub(crate) async fn consumer_ids(
    core: &ClientCore,
    addr: &str,
    group: &str,
) -> Result<Vec<String>, ClientError> {
    let request = requests::get_consumer_list_by_group(group);
    let request_code = request.code;
    let response = core.invoke_broker(addr, request).await?;
    requests::expect_success(addr, request_code, &response)?;
    let body =
        ConsumerListBody::from_json(&response.body).map_err(|e| ClientError::BadResponse {
            addr: addr.to_string(),
            request_code,
            detail: format!("consumer list body: {e}"),
        })?;
    Ok(body.consumer_id_list)
}

/// CONSUMER_SEND_MSG_BACK: hands a message the listener could not consume back to the broker,
/// which stores it in `%RETRY%<group>` with a delay (or in `%DLQ%<group>` past the maximum).
pub(crate) async fn send_message_back(
    core: &ClientCore,
    addr: &str,
    group: &str,
    message: &MessageExt,
    delay_level: i32,
    max_reconsume_times: Option<i32>,
) -> Result<(), ClientError> {
    let request =
        requests::consumer_send_msg_back(group, message, delay_level, max_reconsume_times);
    let request_code = request.code;
    let response = core.invoke_broker(addr, request).await?;
    requests::expect_success(addr, request_code, &response)
}

/// LOCK_BATCH_MQ: locks (or renews) `queues` for this client; returns those it now holds.
pub(crate) async fn lock_batch(
    core: &ClientCore,
    addr: &str,
    group: &str,
    queues: &[MessageQueue],
) -> Result<Vec<MessageQueue>, ClientError> {
    let request = requests::lock_batch(true, group, &core.client_id, queues);
    let request_code = request.code;
    let response = core.invoke_broker(addr, request).await?;
    requests::expect_success(addr, request_code, &response)?;
    let body =
        LockBatchResponseBody::from_json(&response.body).map_err(|e| ClientError::BadResponse {
            addr: addr.to_string(),
            request_code,
            detail: format!("lock batch body: {e}"),
        })?;
    Ok(body.lock_ok_mq_set.into_iter().map(Into::into).collect())
}

/// UNLOCK_BATCH_MQ, waiting for the broker's answer (so a queue is free before another
/// consumer of the group is told to take it).
pub(crate) async fn unlock_batch(
    core: &ClientCore,
    addr: &str,
    group: &str,
    queues: &[MessageQueue],
) -> Result<(), ClientError> {
    let request = requests::lock_batch(false, group, &core.client_id, queues);
    let request_code = request.code;
    let response = core.invoke_broker(addr, request).await?;
    requests::expect_success(addr, request_code, &response)
}

/// CHECK_CLIENT_CONFIG for one subscription.
pub(crate) async fn check_client_config(
    core: &ClientCore,
    addr: &str,
    group: &str,
    subscription: SubscriptionData,
) -> Result<(), ClientError> {
    let request = requests::check_client_config(group, &core.client_id, subscription);
    let request_code = request.code;
    let response = core.invoke_broker(addr, request).await?;
    requests::expect_success(addr, request_code, &response)
}
