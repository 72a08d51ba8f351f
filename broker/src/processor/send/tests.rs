use std::net::SocketAddr;

use ringmq_proto::message::ids::decode_offset_msg_id;

use super::*;
use crate::processor::testing::{self, rerouted, rerouted_from, responded, send_request};

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

/// `request` as a client's send (read from its connection).
async fn client_send(ctx: &SendContext<'_>, request: &RemotingCommand) -> Outcome {
    send_message(ctx, peer(), RequestOrigin::Client, request).await
}

#[test]
fn a_send_is_stored_and_answered_with_its_offsets_and_ids() {
    testing::run(|fx| async move {
        fx.create_topic("T", 4);
        let view = fx.view();
        let request = send_request("T", 2, b"hello", "TAGS\u{1}a\u{2}");
        let response = responded(client_send(&fx.send_context(&view), &request).await);
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(response.ext_fields.get("queueId"), Some("2"));
        assert_eq!(response.ext_fields.get("queueOffset"), Some("0"));
        let msg_id = response.ext_fields.get("msgId").unwrap();
        let id = decode_offset_msg_id(msg_id).unwrap();
        assert_eq!(id.store_host, fx.store_host);
        let stored = fx
            .store
            .view_message(id.commit_log_offset as u64)
            .await
            .unwrap()
            .unwrap();
        let record = ringmq_proto::message::record::DecodedRecord::decode(&stored).unwrap();
        assert_eq!(record.record.body, b"hello");
        assert!(response.ext_fields.get("transactionId").is_some());
        assert_eq!(fx.store.max_offset("T", 2), 1);
        assert_eq!(fx.counters.messages_put.get(), 1);
    });
}

#[test]
fn a_half_message_goes_to_the_half_topic_and_answers_its_offsets() {
    testing::run(|fx| async move {
        fx.create_topic("T", 4);
        let props = "TRAN_MSG\u{1}true\u{2}PGROUP\u{1}pg\u{2}";
        let (queue_offset, msg_id) = fx.put("T", 2, b"half", props).await;
        assert_eq!(queue_offset, 0, "the half queue's offset");
        assert_eq!(
            fx.store.max_offset("T", 2),
            0,
            "invisible in the real queue"
        );
        let half = crate::transaction::HALF_TOPIC;
        assert_eq!(fx.store.max_offset(half, 0), 1);
        let id = decode_offset_msg_id(&msg_id).unwrap();
        let stored = fx.store.view_message(id.commit_log_offset as u64).await;
        let stored = stored.unwrap().unwrap();
        let record = ringmq_proto::message::record::DecodedRecord::decode(&stored).unwrap();
        assert_eq!(record.record.topic, half.as_bytes());
        assert_eq!(fx.transaction.counters().half, 1);
    });
}

#[test]
fn a_slave_refuses_sends_with_javas_code_and_remark() {
    testing::run(|fx| async move {
        fx.create_topic("T", 4);
        let view = fx.view();
        let mut config = fx.config.clone();
        config.broker_role = crate::config::BrokerRole::Slave;
        config.broker_id = 1;
        let slave = crate::ha::ShardHa::new(&config, 0, 1);
        let ctx = SendContext {
            ha: &slave,
            ..fx.send_context(&view)
        };
        let request = send_request("T", 0, b"x", "");
        let response = responded(client_send(&ctx, &request).await);
        assert_eq!(response.code, ResponseCode::ServiceNotAvailable.code());
        let remark = response.remark.unwrap_or_default();
        assert!(remark.contains("messages are put to the slave"), "{remark}");
        assert_eq!(fx.store.max_offset("T", 0), 0, "nothing stored");
    });
}

#[test]
fn a_sync_master_without_a_slave_stores_and_answers_slave_not_available() {
    testing::run(|fx| async move {
        fx.create_topic("T", 4);
        let view = fx.view();
        let mut config = fx.config.clone();
        config.broker_role = crate::config::BrokerRole::SyncMaster;
        let master = crate::ha::ShardHa::new(&config, 0, 1);
        let ctx = SendContext {
            ha: &master,
            ..fx.send_context(&view)
        };
        let request = send_request("T", 1, b"x", "");
        let response = responded(client_send(&ctx, &request).await);
        assert_eq!(response.code, ResponseCode::SlaveNotAvailable.code());
        // Stored all the same, and the answer carries its id and offset, as Java's does.
        assert_eq!(fx.store.max_offset("T", 1), 1);
        assert!(response.ext_fields.get("msgId").is_some());
        assert_eq!(response.ext_fields.get("queueOffset"), Some("0"));
    });
}

#[test]
fn a_broker_picked_queue_is_written_into_the_header_and_rerouted() {
    testing::run(|fx| async move {
        fx.create_topic("T", 4);
        let view = fx.view();
        let request = send_request("T", -1, b"x", "");
        let placed = rerouted(client_send(&fx.send_context(&view), &request).await);
        let (topic, queue) = routing::send_target(&placed.ext_fields);
        assert_eq!(topic, Some("T"));
        assert!((0..4).contains(&queue.unwrap()), "{queue:?}");
        assert_eq!(
            fx.store.max_offset("T", queue.unwrap()),
            0,
            "nothing stored yet"
        );
    });
}

#[test]
fn an_unknown_topic_is_auto_created_through_the_metadata_shard() {
    testing::run(|fx| async move {
        let view = fx.view();
        let request = send_request("Fresh", 0, b"x", "");
        let response = responded(client_send(&fx.send_context(&view), &request).await);
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
        assert_eq!(fx.creations.get(), 1);
        assert!(fx.view().topics.contains_key("Fresh"));
    });
}

#[test]
fn refusals_carry_javas_codes() {
    testing::run(|fx| async move {
        fx.create_topic("T", 4);
        let view = fx.view();
        let ctx = fx.send_context(&view);
        let code = |outcome| responded(outcome).code;
        let bad_queue = send_request("T", 9, b"x", "");
        let c = code(client_send(&ctx, &bad_queue).await);
        assert_eq!(c, ResponseCode::InvalidParameter.code());
        let system = send_request("SCHEDULE_TOPIC_XXXX", 0, b"x", "");
        let c = code(client_send(&ctx, &system).await);
        assert_eq!(c, ResponseCode::NoPermission.code());
        let bad_name = send_request("bad topic!", 0, b"x", "");
        let c = code(client_send(&ctx, &bad_name).await);
        assert_eq!(c, ResponseCode::InvalidParameter.code());
        let mut no_header = send_request("T", 0, b"x", "");
        no_header.ext_fields = Default::default();
        let c = code(client_send(&ctx, &no_header).await);
        assert_eq!(c, ResponseCode::SystemError.code());
        let mut wiped = (*view).clone();
        wiped.broker_permission = perm::READ;
        let c = code(client_send(&fx.send_context(&wiped), &bad_queue).await);
        assert_eq!(c, ResponseCode::NoPermission.code());
        assert_eq!(fx.counters.messages_put.get(), 0);
    });
}

#[test]
fn a_cpp_batch_as_send_message_with_batch_1_is_split_into_its_messages() {
    use ringmq_proto::code::RequestCode;
    use ringmq_proto::command::ExtFields;
    use ringmq_proto::header::CommandHeader;
    use ringmq_proto::message::batch::BatchItem;
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        let view = fx.view();
        let mut body = Vec::new();
        for i in 0..3 {
            let properties = format!("UNIQ_KEY\u{1}C{i:031}\u{2}");
            let item = format!("item {i}");
            let item = BatchItem {
                flag: 0,
                body: item.as_bytes(),
                properties: properties.as_bytes(),
            };
            item.encode(&mut body).unwrap();
        }
        // The C++ engine: code 10, long field names, `batch` written as 1.
        let v2 = send_request("T", 0, &body, "");
        let mut header = SendMessageRequestHeader::read_any(&v2.ext_fields).unwrap();
        header.batch = None;
        let mut ext = ExtFields::new();
        header.write_to(&mut ext);
        ext.insert("batch", "1");
        let code = RequestCode::SendMessage.code();
        let request = RemotingCommand::new_request(code, ext, Bytes::from(body));
        let response = responded(client_send(&fx.send_context(&view), &request).await);
        assert_eq!(response.code, 0, "{:?}", response.remark);
        assert_eq!(
            response.ext_fields.get("msgId").unwrap().split(',').count(),
            3
        );
        assert_eq!(fx.store.max_offset("T", 0), 3);
    });
}

/// SEND_BATCH_MESSAGE (320) of `items` (their properties) with `header` properties.
fn batch_request(header: &str, items: &[&str]) -> RemotingCommand {
    use ringmq_proto::code::RequestCode;
    use ringmq_proto::message::batch::BatchItem;
    let mut body = Vec::new();
    for (i, properties) in items.iter().enumerate() {
        let item_body = format!("item {i}");
        let item = BatchItem {
            flag: 0,
            body: item_body.as_bytes(),
            properties: properties.as_bytes(),
        };
        item.encode(&mut body).unwrap();
    }
    let mut request = send_request("T", 1, &body, header);
    request.code = RequestCode::SendBatchMessage.code();
    request.ext_fields.insert("m", "true");
    request
}

#[test]
fn a_batch_is_scheduled_by_its_header_as_java_does() {
    use crate::schedule::{SCHEDULE_TOPIC, TIMER_TOPIC};
    testing::run(|fx| async move {
        fx.create_topic("T", 2);
        let view = fx.view();
        let ctx = fx.send_context(&view);
        let items = ["UNIQ_KEY\u{1}A\u{2}", "UNIQ_KEY\u{1}B\u{2}"];
        // A timer in the header holds every item until the one due time.
        let timer = batch_request("TIMER_DELAY_MS\u{1}60000\u{2}", &items);
        let response = responded(client_send(&ctx, &timer).await);
        assert_eq!(response.code, 0, "{:?}", response.remark);
        assert_eq!(fx.store.max_offset(TIMER_TOPIC, 0), 2);
        assert_eq!(fx.store.max_offset("T", 1), 0, "nothing visible yet");
        // A delay level in the header: Java's store refuses the batch.
        let delayed = batch_request("DELAY\u{1}2\u{2}", &items);
        let response = responded(client_send(&ctx, &delayed).await);
        assert_eq!(response.code, ResponseCode::MessageIllegal.code());
        assert!(response
            .remark
            .unwrap()
            .starts_with("the message is illegal"));
        assert_eq!(fx.store.max_offset(SCHEDULE_TOPIC, 1), 0);
        // Items' own DELAY / timer properties are not looked at: stored at once.
        let own = ["DELAY\u{1}3\u{2}", "TIMER_DELAY_SEC\u{1}5\u{2}"];
        let response = responded(client_send(&ctx, &batch_request("", &own)).await);
        assert_eq!(response.code, 0, "{:?}", response.remark);
        assert_eq!(fx.store.max_offset("T", 1), 2);
        assert_eq!(fx.store.max_offset(SCHEDULE_TOPIC, 2), 0);
        assert_eq!(fx.store.max_offset(TIMER_TOPIC, 0), 2);
    });
}

#[test]
fn a_retry_send_without_a_maximum_uses_the_groups_retry_max_times() {
    testing::run(|fx| async move {
        fx.create_topic("%RETRY%g", 1);
        let group = ringmq_proto::body::SubscriptionGroupConfig {
            retry_max_times: 1,
            ..ringmq_proto::body::SubscriptionGroupConfig::new("g")
        };
        fx.metadata.borrow_mut().groups.upsert(group).unwrap();
        let view = fx.view();
        let mut request = send_request("%RETRY%g", 0, b"x", "");
        request.ext_fields.insert("j", "2");
        let placed = rerouted(client_send(&fx.send_context(&view), &request).await);
        let header = SendMessageRequestHeader::read_any(&placed.ext_fields).unwrap();
        assert_eq!(header.topic, "%DLQ%g", "2 > retryMaxTimes 1");
        // An unknown group without auto-creation: Java's SUBSCRIPTION_GROUP_NOT_EXIST.
        fx.create_topic("%RETRY%nobody", 1);
        let view = fx.view();
        let mut strict = fx.config.clone();
        strict.auto_create_subscription_group = false;
        let ctx = SendContext {
            config: &strict,
            ..fx.send_context(&view)
        };
        let request = send_request("%RETRY%nobody", 0, b"x", "");
        let response = responded(client_send(&ctx, &request).await);
        assert_eq!(
            response.code,
            ResponseCode::SubscriptionGroupNotExist.code()
        );
    });
}

#[test]
fn a_retry_past_its_maximum_is_rerouted_to_the_dead_letter_queue() {
    testing::run(|fx| async move {
        fx.create_topic("%RETRY%g", 1);
        let view = fx.view();
        let mut request = send_request("%RETRY%g", 0, b"x", "DELAY\u{1}3\u{2}");
        request.version = VERSION_WITH_MAX_RECONSUME_TIMES;
        request.ext_fields.insert("j", "3");
        request.ext_fields.insert("l", "2");
        let placed = rerouted(client_send(&fx.send_context(&view), &request).await);
        let header = SendMessageRequestHeader::read_any(&placed.ext_fields).unwrap();
        assert_eq!(header.topic, "%DLQ%g");
        assert_eq!(header.queue_id, 0);
        assert!(header.properties.unwrap().contains("DELAY\u{1}-1\u{2}"));
    });
}

/// SNDBCK_PUT_NUMS and DLQ_PUT_NUMS of (`topic`, `group`) on the fixture's shard.
fn send_back_and_dlq_nums(fx: &testing::Fixture, topic: &str, group: &str) -> (u64, u64) {
    let groups = fx.counters.stats.shared().groups();
    groups
        .iter()
        .find(|((t, g), _)| t == topic && g == group)
        .map_or((0, 0), |(_, c)| {
            (c.send_back_nums.read().0, c.dlq_nums.read().0)
        })
}

#[test]
fn both_reroutes_keep_the_requests_origin_and_a_send_back_counts_once_where_it_is_stored() {
    testing::run(|fx| async move {
        fx.create_topic("T", 4);
        fx.create_topic("%RETRY%g", 1);
        fx.create_topic("%DLQ%g", 1);
        let view = fx.view();
        let ctx = fx.send_context(&view);
        let mut past_max = send_request("%RETRY%g", 0, b"x", "RETRY_TOPIC\u{1}T\u{2}");
        past_max.version = VERSION_WITH_MAX_RECONSUME_TIMES;
        past_max.ext_fields.insert("j", "3");
        past_max.ext_fields.insert("l", "2");
        let pick_queue = send_request("T", -1, b"x", "");
        let mut counted = (0, 0);
        for origin in [RequestOrigin::Client, RequestOrigin::SendBack] {
            let outcome = send_message(&ctx, peer(), origin, &pick_queue).await;
            assert_eq!(rerouted_from(outcome).1, origin);
            let outcome = send_message(&ctx, peer(), origin, &past_max).await;
            let (to_dlq, kept) = rerouted_from(outcome);
            assert_eq!(kept, origin);
            assert_eq!(
                send_back_and_dlq_nums(&fx, "T", "g"),
                counted,
                "not yet stored"
            );
            let stored = responded(send_message(&ctx, peer(), kept, &to_dlq).await);
            assert_eq!(stored.code, ResponseCode::Success.code());
            // A dead letter either way; a send-back only when the broker made it.
            counted.0 += u64::from(origin == RequestOrigin::SendBack);
            counted.1 += 1;
            assert_eq!(send_back_and_dlq_nums(&fx, "T", "g"), counted, "{origin:?}");
        }
    });
}

#[test]
fn stored_properties_keep_the_clients_drop_pop_ck_and_add_what_is_missing() {
    testing::run(|fx| async move {
        fx.create_topic("T", 1);
        let view = fx.view();
        let ctx = fx.send_context(&view);
        // A client that sent its own CLUSTER, a repeated UNIQ_KEY, a POP_CK and a malformed
        // item (no separator), in that order.
        let client = b"TAGS\x01a\x02UNIQ_KEY\x01U1\x02POP_CK\x01x\x02junk\x02CLUSTER\x01mine\x02UNIQ_KEY\x01U2\x02";
        let (stored, uniq_key) = stored_properties(&ctx, client);
        let trace_on = if fx.config.trace_on { "true" } else { "false" };
        let expected = format!(
            "TAGS\x01a\x02UNIQ_KEY\x01U1\x02CLUSTER\x01mine\x02UNIQ_KEY\x01U2\x02\
             MSG_REGION\x01{}\x02TRACE_ON\x01{trace_on}\x02",
            fx.config.region_id
        );
        assert_eq!(String::from_utf8(stored.clone()).unwrap(), expected);
        let item = StoredItem {
            flag: 0,
            body: b"",
            properties: stored,
            uniq_key,
        };
        assert_eq!(
            item.uniq_key(),
            "U2",
            "the last UNIQ_KEY wins, as in Java's map"
        );

        // Without a UNIQ_KEY the broker generates one, first among what it adds.
        let (stored, _) = stored_properties(&ctx, b"TAGS\x01a\x02");
        let pairs: Vec<_> = PropertiesIter::new(&stored)
            .map(|(k, _)| k.to_vec())
            .collect();
        let names: Vec<&[u8]> = pairs.iter().map(Vec::as_slice).collect();
        let expected: [&[u8]; 5] = [b"TAGS", b"UNIQ_KEY", b"MSG_REGION", b"TRACE_ON", b"CLUSTER"];
        assert_eq!(names, expected);
        let generated = find_property(&stored, property::UNIQ_KEY).unwrap();
        assert_eq!(generated.len(), 32);
    });
}
