//! Subscription groups (metadata shard): UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200),
//! GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), DELETE_SUBSCRIPTIONGROUP (207); and schedule progress:
//! GET_ALL_DELAY_OFFSET (45), served anywhere, which sums every shard's per-level progress
//! (and lists each shard's whole progress for a ringmq slave's metadata sync).

use std::collections::BTreeMap;

use bytes::Bytes;
use ringmq_proto::body::{
    DelayOffsetBody, JsonBody, ShardScheduleProgress, SubscriptionGroupConfig, SHARD_PROGRESS_FIELD,
};
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::field;

use super::{bad_header, respond_error, success, Announce, Outcome, ShardMesh};
use crate::metadata::Metadata;

fn republish(changed: bool) -> Announce {
    Announce {
        republish: changed,
        ..Announce::default()
    }
}

/// 200: the body is the group's `SubscriptionGroupConfig` JSON; it replaces the group's config.
pub fn update_and_create(meta: &mut Metadata, request: &RemotingCommand) -> (Outcome, Announce) {
    let refuse = |remark: String| {
        let outcome = respond_error(request, ResponseCode::SystemError, remark);
        (outcome, Announce::default())
    };
    let config = match SubscriptionGroupConfig::from_json(&request.body) {
        Ok(c) if !c.group_name.is_empty() => c,
        Ok(_) => return refuse("the subscription group name is blank".to_string()),
        Err(e) => return refuse(format!("bad subscription group body: {e}")),
    };
    tracing::info!(group = config.group_name, "update subscription group");
    match meta.groups.upsert(config) {
        Ok(()) => (Outcome::Respond(success(request)), republish(true)),
        Err(e) => refuse(e.to_string()),
    }
}

/// A slave installs its master's subscription groups (metadata sync, Java's
/// `syncSubscriptionGroupConfig`): taken whole when the master's data version differs.
pub fn replace_groups_from_master(
    meta: &mut Metadata,
    master: ringmq_proto::body::SubscriptionGroupWrapper,
) -> Announce {
    match meta.groups.replace_from_master(master) {
        Ok(changed) => republish(changed),
        Err(e) => {
            tracing::warn!("slave metadata sync of subscription groups: {e}");
            Announce::default()
        }
    }
}

/// 201: the `SubscriptionGroupWrapper` JSON.
pub fn all(meta: &Metadata, request: &RemotingCommand) -> Outcome {
    let json = meta.groups.wrapper().to_json();
    Outcome::Respond(success(request).with_body(Bytes::from(json.into_bytes())))
}

/// 207: `groupName` in the header; SUCCESS whether or not the group existed, as Java answers.
pub fn delete(meta: &mut Metadata, request: &RemotingCommand) -> (Outcome, Announce) {
    let group = match field::string(&request.ext_fields, "groupName") {
        Ok(g) => g,
        Err(e) => return (bad_header(request, e), Announce::default()),
    };
    match meta.groups.delete(&group) {
        Ok(deleted) => (Outcome::Respond(success(request)), republish(deleted)),
        Err(e) => {
            let outcome = respond_error(request, ResponseCode::SystemError, e.to_string());
            (outcome, Announce::default())
        }
    }
}

/// 45: `{"offsetTable":{level: offset}}`. Each shard keeps its own level queues, so the shards'
/// next offsets are summed: the number of messages delivered per level. With
/// `ringmqShardProgress=true` (a ringmq slave's sync) the body also lists every shard's whole
/// progress, by shard, which the slave keeps per shard.
pub async fn all_delay_offsets(mesh: &dyn ShardMesh, request: &RemotingCommand) -> Outcome {
    let answers = mesh.schedule_progress_everywhere();
    let mut shards: Vec<ShardScheduleProgress> = Vec::new();
    // Every shard answers, or drops its reply sender when it stops: bounded.
    while let Ok(part) = answers.recv_async().await {
        shards.push(part);
    }
    shards.sort_by_key(|p| p.shard);
    let mut total: Vec<u64> = Vec::new();
    for part in &shards {
        total.resize(total.len().max(part.level_offsets.len()), 0);
        for (t, p) in total.iter_mut().zip(&part.level_offsets) {
            *t += p;
        }
    }
    let offset_table: BTreeMap<i32, i64> = total
        .iter()
        .enumerate()
        .map(|(i, o)| (i as i32 + 1, *o as i64))
        .collect();
    let per_shard = field::opt_bool(&request.ext_fields, SHARD_PROGRESS_FIELD).unwrap_or(false);
    let body = DelayOffsetBody {
        offset_table,
        ringmq_shard_progress: per_shard.then_some(shards),
    }
    .to_json();
    Outcome::Respond(success(request).with_body(Bytes::from(body.into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::testing::{self, request, responded};
    use ringmq_proto::body::SubscriptionGroupWrapper;
    use ringmq_proto::code::RequestCode;

    #[test]
    fn groups_are_created_listed_and_deleted() {
        testing::run(|fx| async move {
            let body = br#"{"groupName":"g1","retryMaxTimes":"2","consumeEnable":false}"#;
            let create = request(RequestCode::UpdateAndCreateSubscriptionGroup, &[], body);
            let (outcome, announce) = update_and_create(&mut fx.metadata.borrow_mut(), &create);
            assert_eq!(responded(outcome).code, 0);
            assert!(announce.republish);
            assert_eq!(fx.view().groups["g1"].retry_max_times, 2);
            let list = request(RequestCode::GetAllSubscriptionGroupConfig, &[], b"");
            let listed = responded(all(&fx.metadata.borrow(), &list));
            let wrapper = SubscriptionGroupWrapper::from_json(&listed.body).unwrap();
            assert!(!wrapper.subscription_group_table["g1"].consume_enable);
            let del = request(
                RequestCode::DeleteSubscriptionGroup,
                &[("groupName", "g1")],
                b"",
            );
            let (outcome, _) = delete(&mut fx.metadata.borrow_mut(), &del);
            assert_eq!(responded(outcome).code, 0);
            assert!(!fx.view().groups.contains_key("g1"));
            let bad = request(RequestCode::UpdateAndCreateSubscriptionGroup, &[], b"{oops");
            let (outcome, _) = update_and_create(&mut fx.metadata.borrow_mut(), &bad);
            assert_eq!(responded(outcome).code, ResponseCode::SystemError.code());
        });
    }

    #[test]
    fn delay_offsets_are_summed_over_shards() {
        testing::run(|fx| async move {
            let req = request(RequestCode::GetAllDelayOffset, &[], b"");
            let body = responded(all_delay_offsets(fx.as_ref(), &req).await).body;
            let parsed = DelayOffsetBody::from_json(&body).unwrap();
            assert_eq!(parsed.offset_table.get(&1), Some(&5));
            assert_eq!(parsed.offset_table.get(&2), Some(&1));
            assert_eq!(parsed.offset_table.get(&3), Some(&4));
            // Java's body only, unless a ringmq slave asks for every shard's progress.
            assert_eq!(parsed.ringmq_shard_progress, None);
            let sync = request(
                RequestCode::GetAllDelayOffset,
                &[(SHARD_PROGRESS_FIELD, "true")],
                b"",
            );
            let body = responded(all_delay_offsets(fx.as_ref(), &sync).await).body;
            let shards = DelayOffsetBody::from_json(&body)
                .unwrap()
                .ringmq_shard_progress
                .unwrap();
            assert_eq!(shards.iter().map(|s| s.shard).collect::<Vec<_>>(), [0, 1]);
            assert_eq!(shards[1].level_offsets, [2, 1, 4]);
            assert_eq!(shards[1].timer_ingested, 9);
        });
    }
}
