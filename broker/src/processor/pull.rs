//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361), reference §2.4, on the shard that owns the
//! queue.
//!
//! Long polling: a pull that finds nothing new (PULL_NOT_FOUND) with the SUSPEND bit is parked
//! on its queue: the handler returns [`Outcome::Park`], the server releases the request's slot in
//! the shard's pending count and runs [`wait_parked`], which awaits the store's per-queue growth
//! notification, the suspend deadline, or shutdown, whichever comes first, then evaluates the
//! pull once more and returns whatever it finds. The parked task holds nothing else: other
//! requests on the same connection are served and answered meanwhile.
//!
//! Filters: TAG subscriptions are tested on the consume queue's tag hash; SQL92 ones (with
//! `enablePropertyFilter`) are compiled once per (group, topic, subVersion) into the shard's
//! [`FilterCache`] and evaluated on each candidate record's properties as the store reads it.
//! A parked pull re-reads after each append and keeps waiting while nothing new matches, so
//! it wakes only for a matching message; the cost of that test is one evaluation per new
//! record, on records already in the tail cache.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use ringmq_proto::body::perm;
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{
    PullMessageRequestHeader, PullMessageResponseHeader, PULL_FLAG_COMMIT_OFFSET,
    PULL_FLAG_SUBSCRIPTION, PULL_FLAG_SUSPEND,
};
use ringmq_proto::message::ids::tag_hash;

use super::runtime_info::RequestCounters;
use super::{bad_header, respond_error, Outcome};
use crate::config::BrokerConfig;
use crate::filter::{self, FilterCache, SqlFilter};
use crate::ha::service::MASTER_ID;
use crate::metadata::offsets::ConsumerOffsets;
use crate::metadata::BrokerView;
use crate::stop::StopSignal;
use crate::store::{GetRequest, GetResult, GetStatus, RecordFilter, Store};

/// Java's `SubscriptionGroupConfig` default `whichBrokerWhenConsumeSlowly`: the first slave.
const WHICH_BROKER_WHEN_CONSUME_SLOWLY: i64 = 1;
/// Java's `MixAll.isSysConsumerGroup` prefix: such groups always exist.
const SYS_CONSUMER_GROUP_PREFIX: &str = "CID_RMQ_SYS_";
/// Longest a pull may stay parked, whatever the client asks (Java clients ask 15 s, Go 20 s).
const SUSPEND_MAX: Duration = Duration::from_secs(60);

/// What the pull handler uses.
pub struct PullContext<'a> {
    pub store: &'a Store,
    pub view: &'a BrokerView,
    pub offsets: &'a RefCell<ConsumerOffsets>,
    pub config: &'a BrokerConfig,
    pub counters: &'a RequestCounters,
    /// This shard's compiled SQL92 subscriptions.
    pub filters: &'a RefCell<FilterCache>,
    /// The shard is stopping: answer at once instead of parking.
    pub stopping: bool,
}

/// A pull that waits for its queue to grow (see the module documentation).
pub struct ParkedPull {
    header: PullMessageRequestHeader,
    filter: Filter,
    timeout: Duration,
    limits: TransferLimits,
}

/// The most one pull returns, from the broker's configuration (Java's
/// `maxTransferCountOnMessageInMemory` and `maxTransferBytesOnMessageInMemory`).
#[derive(Debug, Clone, Copy)]
struct TransferLimits {
    messages: u32,
    bytes: u32,
}

impl TransferLimits {
    fn of(config: &BrokerConfig) -> Self {
        TransferLimits {
            messages: config.max_transfer_count_on_message_in_memory,
            bytes: config.max_transfer_bytes_on_message_in_memory,
        }
    }
}

impl ParkedPull {
    /// Ends the wait at once: the pull is evaluated once more and answered (used past the
    /// shard's parked-pull bound).
    pub fn expire_now(&mut self) {
        self.timeout = Duration::ZERO;
    }
}

/// Which messages a pull accepts.
enum Filter {
    All,
    /// Tag hashes (Java `String.hashCode`) of the subscription's tags.
    Tags(Vec<i64>),
    /// A compiled SQL92 selector, tested on each record's properties.
    Sql(Rc<SqlFilter>),
}

impl Filter {
    /// `*` or empty: everything; else `TagA || TagB`.
    fn from_expression(expression: &str) -> Filter {
        let expression = expression.trim();
        if expression.is_empty() || expression == "*" {
            return Filter::All;
        }
        let hashes = expression
            .split("||")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(tag_hash)
            .collect();
        Filter::Tags(hashes)
    }

    fn tag_hashes(&self) -> Option<&[i64]> {
        match self {
            Filter::All | Filter::Sql(_) => None,
            Filter::Tags(hashes) => Some(hashes),
        }
    }

    fn record_filter(&self) -> Option<&dyn RecordFilter> {
        match self {
            Filter::Sql(sql) => Some(&**sql),
            Filter::All | Filter::Tags(_) => None,
        }
    }
}

pub async fn pull_message(ctx: &PullContext<'_>, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<PullMessageRequestHeader>() {
        Ok(header) => header,
        Err(e) => return bad_header(request, e),
    };
    let filter = match check_pull(ctx, request, &header) {
        Ok(filter) => filter,
        Err(outcome) => return outcome,
    };
    // A slave keeps the offsets its master syncs to it, so a pull read from it commits
    // nothing there (Java: storeOffsetEnable is false on a SLAVE).
    let commits = !ctx.config.is_slave();
    if commits && header.has_flag(PULL_FLAG_COMMIT_OFFSET) && header.commit_offset >= 0 {
        // Step 2, first evaluation only: the consumer's committed offset rides on the pull.
        ctx.offsets.borrow_mut().commit(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.commit_offset,
        );
    }
    let limits = TransferLimits::of(ctx.config);
    let result = match read(ctx.store, &header, &filter, limits).await {
        Ok(result) => result,
        Err(e) => return outcome_for_error(request, e),
    };
    let suspend_ms = header.suspend_timeout_millis.max(0) as u64;
    // Any PULL_NOT_FOUND parks (an empty queue read at 0 too), as in Java.
    let (code, _) = outcome_code(result.status, header.queue_offset);
    let should_park = code == ResponseCode::PullNotFound
        && header.has_flag(PULL_FLAG_SUSPEND)
        && suspend_ms > 0
        && !ctx.stopping;
    if !should_park {
        let suggest = suggest_broker(ctx, &header.consumer_group, &result);
        return Outcome::Respond(response(ctx.counters, request, &header, (result, suggest)));
    }
    let timeout = if ctx.config.long_polling_enable {
        Duration::from_millis(suspend_ms).min(SUSPEND_MAX)
    } else {
        Duration::from_millis(ctx.config.short_polling_time_ms)
    };
    Outcome::Park(Box::new(ParkedPull {
        header,
        filter,
        timeout,
        limits,
    }))
}

/// Waits for a message the filter accepts, the deadline or shutdown, then evaluates the pull
/// once more and returns its answer. Appends the filter rejects do not end the wait (as Java's
/// hold service checks the arriving message's tag before waking a pull): a tag-filtered
/// consumer on a busy topic is not answered once per foreign message.
pub async fn wait_parked(
    store: &Store,
    counters: &RequestCounters,
    stop: &StopSignal,
    request: &RemotingCommand,
    parked: Box<ParkedPull>,
) -> RemotingCommand {
    let ParkedPull {
        header,
        filter,
        timeout,
        limits,
    } = *parked;
    let deadline = std::time::Instant::now() + timeout;
    let mut watch_offset = header.queue_offset.max(0) as u64;
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        let grown = futures_lite::future::or(
            store.wait_for_messages(&header.topic, header.queue_id, watch_offset, remaining),
            async {
                stop.wait().await;
                false
            },
        )
        .await;
        let result = match read(store, &header, &filter, limits).await {
            Ok(result) => result,
            Err(e) => {
                return RemotingCommand::response_to(
                    request,
                    ResponseCode::SystemError.code(),
                    Some(e),
                )
            }
        };
        let keep_waiting = grown
            && result.status == GetStatus::NoMatchedMessage
            && !stop.is_fired()
            && std::time::Instant::now() < deadline;
        if !keep_waiting {
            return response(counters, request, &header, (result, 0));
        }
        // Wait for the next message after those just rejected.
        watch_offset = result.max_offset.max(watch_offset);
    }
}

/// Permission, topic, queue and subscription checks (step 1), returning the filter to apply.
fn check_pull(
    ctx: &PullContext<'_>,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
) -> Result<Filter, Outcome> {
    let (config, view) = (ctx.config, ctx.view);
    if !view.broker_readable() {
        let remark = format!(
            "the broker[{}] pulling message is forbidden",
            config.advertised_addr()
        );
        return Err(respond_error(request, ResponseCode::NoPermission, remark));
    }
    check_group(ctx, request, &header.consumer_group)?;
    let Some(topic) = view.topics.get(&header.topic) else {
        let remark = format!("topic[{}] not exist, apply first please!", header.topic);
        return Err(respond_error(request, ResponseCode::TopicNotExist, remark));
    };
    if topic.perm & perm::READ == 0 {
        let remark = format!("the topic[{}] pulling message is forbidden", header.topic);
        return Err(respond_error(request, ResponseCode::NoPermission, remark));
    }
    if header.queue_id < 0 || header.queue_id >= topic.read_queue_nums {
        let remark = format!(
            "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}] consumer:[{}]",
            header.queue_id,
            header.topic,
            topic.read_queue_nums,
            request.remark.as_deref().unwrap_or_default()
        );
        return Err(respond_error(
            request,
            ResponseCode::InvalidParameter,
            remark,
        ));
    }
    if header.has_flag(PULL_FLAG_SUBSCRIPTION) {
        let carried = Subscription {
            expression_type: header.expression_type.as_deref().unwrap_or("TAG"),
            expression: header.subscription.as_deref().unwrap_or("*"),
            sub_version: header.sub_version,
            refusal: (
                ResponseCode::SubscriptionParseFailed,
                "parse the consumer's subscription failed",
            ),
        };
        return filter_for(ctx, request, header, &carried);
    }
    registered_filter(ctx, request, header)
}

/// The filter of the subscription the group registered by heartbeat (a pull without the
/// SUBSCRIPTION flag), after Java's group-info and broadcast checks.
fn registered_filter(
    ctx: &PullContext<'_>,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
) -> Result<Filter, Outcome> {
    let view = ctx.view;
    let Some(group) = view.subscriptions.get(&header.consumer_group) else {
        let remark = format!(
            "the consumer's group info not exist, group: {}",
            header.consumer_group
        );
        return Err(respond_error(
            request,
            ResponseCode::SubscriptionNotExist,
            remark,
        ));
    };
    let broadcast_refused = view
        .groups
        .get(&header.consumer_group)
        .is_some_and(|g| !g.consume_broadcast_enable);
    if broadcast_refused && view.broadcasting.contains(&header.consumer_group) {
        let remark = format!(
            "the consumer group[{}] can not consume by broadcast way",
            header.consumer_group
        );
        return Err(respond_error(request, ResponseCode::NoPermission, remark));
    }
    let Some(subscription) = group.get(&header.topic) else {
        let remark = format!(
            "the consumer's subscription not exist, group: {}, topic: {}",
            header.consumer_group, header.topic
        );
        return Err(respond_error(
            request,
            ResponseCode::SubscriptionNotExist,
            remark,
        ));
    };
    if subscription.sub_version < header.sub_version {
        let remark = format!(
            "the consumer's subscription not latest, group: {} {} < {}",
            header.consumer_group, subscription.sub_version, header.sub_version
        );
        return Err(respond_error(
            request,
            ResponseCode::SubscriptionNotLatest,
            remark,
        ));
    }
    let registered = Subscription {
        expression_type: subscription.expression_type.as_str(),
        expression: &subscription.sub_string,
        sub_version: subscription.sub_version,
        refusal: (
            ResponseCode::FilterDataNotExist,
            "The broker's consumer filter data is not exist!Your expression may be wrong!",
        ),
    };
    filter_for(ctx, request, header, &registered)
}

/// Java's subscription-group checks of a pull: the group exists (or would be auto-created, or
/// is a system group) and has `consumeEnable`.
fn check_group(
    ctx: &PullContext<'_>,
    request: &RemotingCommand,
    group: &str,
) -> Result<(), Outcome> {
    match ctx.view.groups.get(group) {
        Some(config) if !config.consume_enable => {
            let remark = format!("subscription group no permission, {group}");
            Err(respond_error(request, ResponseCode::NoPermission, remark))
        }
        Some(_) => Ok(()),
        None if ctx.config.auto_create_subscription_group
            || group.starts_with(SYS_CONSUMER_GROUP_PREFIX) =>
        {
            Ok(())
        }
        None => {
            let remark = format!(
                "subscription group [{group}] does not exist, {}",
                crate::processor::faq_suggest(crate::processor::FAQ_SUBSCRIPTION_GROUP_NOT_EXIST)
            );
            Err(respond_error(
                request,
                ResponseCode::SubscriptionGroupNotExist,
                remark,
            ))
        }
    }
}

/// A subscription as a pull sees it (carried by the pull, or registered by heartbeat), with the
/// code and remark Java answers when its expression does not compile.
struct Subscription<'a> {
    expression_type: &'a str,
    expression: &'a str,
    sub_version: i64,
    refusal: (ResponseCode, &'static str),
}

/// The filter of a subscription: tags, or a compiled SQL92 selector (refused with Java's
/// SYSTEM_ERROR remark while `enablePropertyFilter` is off, its default).
fn filter_for(
    ctx: &PullContext<'_>,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
    subscription: &Subscription<'_>,
) -> Result<Filter, Outcome> {
    let expression_type = subscription.expression_type;
    if expression_type.eq_ignore_ascii_case("TAG") || expression_type.is_empty() {
        return Ok(Filter::from_expression(subscription.expression));
    }
    if !ctx.config.enable_property_filter || !filter::is_sql92(expression_type) {
        let remark = filter::unsupported_remark(expression_type);
        return Err(respond_error(request, ResponseCode::SystemError, remark));
    }
    let compiled = ctx.filters.borrow_mut().get_or_compile(
        &header.consumer_group,
        &header.topic,
        subscription.sub_version,
        subscription.expression,
    );
    match compiled {
        Ok(sql) => Ok(Filter::Sql(sql)),
        Err(e) => {
            tracing::debug!(group = %header.consumer_group, topic = %header.topic,
                error = %e, "SQL92 subscription refused");
            let (code, remark) = subscription.refusal;
            Err(respond_error(request, code, remark.to_string()))
        }
    }
}

async fn read(
    store: &Store,
    header: &PullMessageRequestHeader,
    filter: &Filter,
    limits: TransferLimits,
) -> Result<GetResult, String> {
    let max_count = (header.max_msg_nums.max(1) as u32).min(limits.messages);
    let max_bytes = header
        .max_msg_bytes
        .map_or(limits.bytes, |b| (b.max(1) as u32).min(limits.bytes));
    let get = GetRequest {
        topic: &header.topic,
        queue_id: header.queue_id,
        offset: header.queue_offset.max(0) as u64,
        max_count,
        max_bytes,
        tag_hashes: filter.tag_hashes(),
    };
    store
        .get_messages_matching(&get, filter.record_filter())
        .await
        .map_err(|e| e.to_string())
}

fn outcome_for_error(request: &RemotingCommand, e: String) -> Outcome {
    respond_error(
        request,
        ResponseCode::SystemError,
        format!("pull failed: {e}"),
    )
}

/// The response for a store result (table in reference §2.4), with all four offsets fields on
/// every outcome and the status name as remark.
/// `suggestWhichBrokerId`: a master with `slaveReadEnable` sends a consumer reading far behind
/// the log end to its group's `whichBrokerWhenConsumeSlowly`, others to its group's `brokerId`
/// (the first record's PHYSICALOFFSET says where this pull reads). A parked pull is answered
/// with 0: it waited at the tail.
fn suggest_broker(ctx: &PullContext<'_>, group: &str, result: &GetResult) -> i64 {
    const PHYSICAL_OFFSET_AT: usize = 28;
    let config = ctx.config;
    if config.is_slave() || result.body.len() < PHYSICAL_OFFSET_AT + 8 {
        return 0;
    }
    let field = &result.body[PHYSICAL_OFFSET_AT..PHYSICAL_OFFSET_AT + 8];
    let pulled = u64::from_be_bytes(field.try_into().expect("8 bytes"));
    let ids = ctx
        .view
        .groups
        .get(group)
        .map_or((MASTER_ID, WHICH_BROKER_WHEN_CONSUME_SLOWLY), |g| {
            (g.broker_id, g.which_broker_when_consume_slowly)
        });
    crate::ha::service::suggest_which_broker_id(
        config.slave_read_enable,
        config.access_message_in_memory_max_ratio_percent,
        crate::ha::service::total_memory_bytes(),
        (ctx.store.log_offsets().written, pulled),
        ids,
    )
}

fn response(
    counters: &RequestCounters,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
    (result, suggest_which_broker_id): (GetResult, i64),
) -> RemotingCommand {
    let (code, remark) = outcome_code(result.status, header.queue_offset);
    let mut response = RemotingCommand::response_to(request, code.code(), Some(remark.to_string()));
    let mut response_header = PullMessageResponseHeader::new(
        result.next_begin_offset as i64,
        result.min_offset as i64,
        result.max_offset as i64,
    );
    response_header.suggest_which_broker_id = suggest_which_broker_id;
    response.set_header(&response_header);
    if result.status == GetStatus::Found {
        counters.add_got(
            &header.topic,
            &header.consumer_group,
            u64::from(result.message_count),
            result.body.len() as u64,
        );
        response.body = Bytes::from(result.body);
    }
    response
}

/// Response code and remark (the store status name) for a store outcome.
fn outcome_code(status: GetStatus, request_offset: i64) -> (ResponseCode, &'static str) {
    match status {
        GetStatus::Found => (ResponseCode::Success, "FOUND"),
        GetStatus::NoMatchedMessage => (ResponseCode::PullRetryImmediately, "NO_MATCHED_MESSAGE"),
        GetStatus::MessageWasRemoving => {
            (ResponseCode::PullRetryImmediately, "MESSAGE_WAS_REMOVING")
        }
        GetStatus::NoMessageInQueue if request_offset == 0 => {
            (ResponseCode::PullNotFound, "NO_MESSAGE_IN_QUEUE")
        }
        GetStatus::NoMessageInQueue => (ResponseCode::PullOffsetMoved, "NO_MESSAGE_IN_QUEUE"),
        GetStatus::OffsetTooSmall => (ResponseCode::PullOffsetMoved, "OFFSET_TOO_SMALL"),
        GetStatus::OffsetOverflowOne => (ResponseCode::PullNotFound, "OFFSET_OVERFLOW_ONE"),
        GetStatus::OffsetOverflowBadly => (ResponseCode::PullOffsetMoved, "OFFSET_OVERFLOW_BADLY"),
    }
}

#[cfg(test)]
mod tests;
