//! The connection layer against a scripted peer on 127.0.0.1: responses out of order, a
//! malformed frame, a peer that hangs up, a peer that never answers, server-initiated requests,
//! and pipelining against the real name server.
//!
//! Why a scripted peer: no real server answers out of order on demand or sends garbage, and
//! these are exactly the cases the connection must survive. The peer speaks real frames through
//! the protocol crate's codec over a blocking socket in a plain thread.

mod common;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use bytes::Bytes;
use common::{peer, run, wait_until, Namesrv};
use ringmq_client::remoting::{Connection, ServerRequestHandler};
use ringmq_client::ClientError;
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::RequestCode;

fn route_request(topic: &str) -> RemotingCommand {
    let mut ext = ExtFields::new();
    ext.insert("topic", topic);
    RemotingCommand::new_request(RequestCode::GetRouteinfoByTopic.code(), ext, Bytes::new())
}

/// The peer's answer: remark = the request's topic, so the test sees which request it answers.
fn echo_response(request: &RemotingCommand) -> RemotingCommand {
    let topic = request
        .ext_fields
        .get("topic")
        .unwrap_or_default()
        .to_string();
    RemotingCommand::response_to(request, 0, Some(topic))
}

#[test]
fn responses_in_any_order_reach_their_own_requests() {
    let (addr, peer_thread) = peer(|socket| {
        let requests: Vec<_> = (0..3).map(|_| socket.read_command().unwrap()).collect();
        // Distinct opaques on one connection.
        let mut opaques: Vec<i32> = requests.iter().map(|r| r.opaque).collect();
        opaques.dedup();
        assert_eq!(opaques.len(), 3);
        for request in requests.iter().rev() {
            socket.write_command(&echo_response(request));
        }
    });
    run(move || async move {
        let connection = Rc::new(Connection::connect(&addr, 1_000, None).await.unwrap());
        let tasks: Vec<_> = ["t0", "t1", "t2"]
            .into_iter()
            .map(|topic| {
                let connection = connection.clone();
                glommio::spawn_local(async move {
                    let response = connection.request(route_request(topic), 10_000).await;
                    (topic, response.unwrap())
                })
            })
            .collect();
        for task in tasks {
            let (topic, response) = task.await;
            assert!(response.is_response());
            assert_eq!(response.remark.as_deref(), Some(topic));
        }
        assert_eq!(connection.in_flight(), 0);
    });
    peer_thread.join().unwrap();
}

#[test]
fn a_malformed_frame_fails_in_flight_requests_and_closes_the_connection() {
    let (addr, peer_thread) = peer(|socket| {
        socket.read_command().unwrap();
        // Frame length 1: smaller than the header-length field it must cover.
        socket.stream.write_all(&[0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
        // The client closes the connection: reading ends.
        while socket.read_command().is_some() {}
    });
    run(move || async move {
        let connection = Connection::connect(&addr, 1_000, None).await.unwrap();
        let error = connection
            .request(route_request("t"), 10_000)
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Frame { .. }), "{error}");
        assert!(connection.is_closed());
        let again = connection
            .request(route_request("t"), 10_000)
            .await
            .unwrap_err();
        assert!(
            matches!(again, ClientError::ConnectionClosed { .. }),
            "{again}"
        );
        drop(connection);
    });
    peer_thread.join().unwrap();
}

#[test]
fn a_peer_hanging_up_fails_in_flight_requests_with_connection_closed() {
    let (addr, peer_thread) = peer(|socket| {
        socket.read_command().unwrap();
        socket.read_command().unwrap();
        // Drop the socket with two requests unanswered.
    });
    run(move || async move {
        let connection = Rc::new(Connection::connect(&addr, 1_000, None).await.unwrap());
        let first = {
            let connection = connection.clone();
            glommio::spawn_local(
                async move { connection.request(route_request("a"), 10_000).await },
            )
        };
        let second = connection.request(route_request("b"), 10_000).await;
        for result in [first.await, second] {
            let error = result.unwrap_err();
            assert!(
                matches!(error, ClientError::ConnectionClosed { .. }),
                "{error}"
            );
        }
        assert!(connection.is_closed());
        assert_eq!(connection.in_flight(), 0);
    });
    peer_thread.join().unwrap();
}

#[test]
fn an_unanswered_request_times_out_and_a_late_answer_is_ignored() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (addr, peer_thread) = peer(move |socket| {
        let slow = socket.read_command().unwrap();
        release_rx.recv().unwrap();
        // Answer the timed-out request late, then answer the next one normally.
        socket.write_command(&echo_response(&slow));
        let next = socket.read_command().unwrap();
        socket.write_command(&echo_response(&next));
    });
    run(move || async move {
        let connection = Connection::connect(&addr, 1_000, None).await.unwrap();
        let error = connection
            .request(route_request("slow"), 200)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Timeout {
                    request_code: 105,
                    timeout_ms: 200,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(connection.in_flight(), 0);
        release_tx.send(()).unwrap();
        let response = connection
            .request(route_request("next"), 10_000)
            .await
            .unwrap();
        assert_eq!(response.remark.as_deref(), Some("next"));
        assert!(!connection.is_closed());
    });
    peer_thread.join().unwrap();
}

/// Timeouts are deadlines checked by one sweeper per connection: a short-timeout request sent
/// while a long-timeout one is in flight (the sweeper then sleeps towards the long deadline)
/// must still time out on its own, and the long one must stay in flight and get its answer.
#[test]
fn a_short_timeout_behind_a_long_one_still_fires_and_the_long_one_completes() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (addr, peer_thread) = peer(move |socket| {
        let long = socket.read_command().unwrap();
        let _short = socket.read_command().unwrap();
        release_rx.recv().unwrap();
        // Only the long request is answered.
        socket.write_command(&echo_response(&long));
    });
    run(move || async move {
        let connection = Rc::new(Connection::connect(&addr, 1_000, None).await.unwrap());
        let long = glommio::spawn_local({
            let connection = connection.clone();
            async move { connection.request(route_request("long"), 60_000).await }
        });
        wait_until("the long request in flight", || {
            let connection = connection.clone();
            async move { connection.in_flight() == 1 }
        })
        .await;
        let error = connection
            .request(route_request("short"), 150)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Timeout {
                    timeout_ms: 150,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(
            connection.in_flight(),
            1,
            "the long request is still waiting"
        );
        release_tx.send(()).unwrap();
        let response = long.await.unwrap();
        assert_eq!(response.remark.as_deref(), Some("long"));
        assert_eq!(connection.in_flight(), 0);
    });
    peer_thread.join().unwrap();
}

#[test]
fn server_requests_reach_the_handler_and_unknown_ones_get_not_supported() {
    let (addr, peer_thread) = peer(|socket| {
        let first = socket.read_command().unwrap();
        // A oneway NOTIFY_CONSUMER_IDS_CHANGED, then a request the client has no handler for.
        let mut ext = ExtFields::new();
        ext.insert("consumerGroup", "cg");
        let mut notify = RemotingCommand::new_request(
            RequestCode::NotifyConsumerIdsChanged.code(),
            ext,
            Bytes::new(),
        );
        notify.opaque = 1000;
        notify.set_oneway();
        socket.write_command(&notify);
        let mut running_info = RemotingCommand::new_request(
            RequestCode::GetConsumerRunningInfo.code(),
            ExtFields::new(),
            Bytes::new(),
        );
        running_info.opaque = 1001;
        socket.write_command(&running_info);
        let answer = socket.read_command().unwrap();
        assert!(answer.is_response());
        assert_eq!(answer.opaque, 1001);
        assert_eq!(answer.code, 3, "REQUEST_CODE_NOT_SUPPORTED");
        // Only now answer the client's own request: the notification was oneway (no reply).
        socket.write_command(&echo_response(&first));
    });
    run(move || async move {
        // (request code, consumerGroup field) of every server request the handler saw.
        type Seen = Vec<(i32, Option<String>)>;
        let seen: Rc<RefCell<Seen>> = Rc::default();
        let log = seen.clone();
        let handler: ServerRequestHandler = Rc::new(move |_addr, request| {
            log.borrow_mut().push((
                request.code,
                request.ext_fields.get("consumerGroup").map(str::to_string),
            ));
            None
        });
        let connection = Connection::connect(&addr, 1_000, Some(handler))
            .await
            .unwrap();
        let response = connection
            .request(route_request("t"), 10_000)
            .await
            .unwrap();
        assert_eq!(response.remark.as_deref(), Some("t"));
        assert_eq!(
            *seen.borrow(),
            [(40, Some("cg".to_string())), (307, None)],
            "both server requests reached the handler in order"
        );
    });
    peer_thread.join().unwrap();
}

#[test]
fn many_requests_pipeline_on_one_connection_to_the_real_name_server() {
    let namesrv = Namesrv::start();
    let addr = namesrv.addr_string();
    run(move || async move {
        let connection = Rc::new(Connection::connect(&addr, 1_000, None).await.unwrap());
        let count = 200;
        let tasks: Vec<_> = (0..count)
            .map(|i| {
                let connection = connection.clone();
                glommio::spawn_local(async move {
                    let topic = format!("Missing{i}");
                    let response = connection
                        .request(route_request(&topic), 10_000)
                        .await
                        .unwrap();
                    (topic, response)
                })
            })
            .collect();
        for task in tasks {
            let (topic, response) = task.await;
            // TOPIC_NOT_EXIST, and the remark names this request's topic: opaques matched.
            assert_eq!(response.code, 17);
            let remark = response.remark.unwrap_or_default();
            assert!(remark.ends_with(&topic), "{remark:?} answers {topic}");
        }
        assert_eq!(connection.in_flight(), 0);
        assert!(!connection.is_closed());
    });
}

#[test]
fn oneway_senders_wait_while_a_peer_does_not_read() {
    const FRAMES: usize = 64;
    const BODY_BYTES: usize = 1024 * 1024;
    let (start_reading_tx, start_reading_rx) = std::sync::mpsc::channel::<()>();
    let (addr, peer_thread) = peer(move |socket| {
        start_reading_rx.recv().unwrap();
        let mut frames = 0;
        while frames < FRAMES {
            let command = socket.read_command().expect("all frames arrive");
            assert!(command.is_oneway());
            assert_eq!(command.body.len(), BODY_BYTES);
            frames += 1;
        }
    });
    run(move || async move {
        let connection = Rc::new(Connection::connect(&addr, 1_000, None).await.unwrap());
        let sent = Rc::new(std::cell::Cell::new(0usize));
        let sender = {
            let (connection, sent) = (connection.clone(), sent.clone());
            glommio::spawn_local(async move {
                for _ in 0..FRAMES {
                    let body = Bytes::from(vec![7u8; BODY_BYTES]);
                    let mut command = route_request("big");
                    command.body = body;
                    connection.send_oneway(command).await.unwrap();
                    sent.set(sent.get() + 1);
                }
            })
        };
        wait_until("the outbox to reach its high water", || async {
            connection.queued_bytes() > ringmq_client::remoting::OUTBOX_HIGH_WATER_BYTES
        })
        .await;
        // 64 MiB cannot fit in socket buffers plus a 4 MiB outbox: the sender is held.
        assert!(sent.get() < FRAMES, "sender was not held back");
        start_reading_tx.send(()).unwrap();
        sender.await;
        assert_eq!(sent.get(), FRAMES);
        // Queued is not written: flush before the connection is dropped.
        connection.flush().await;
        assert_eq!(connection.queued_bytes(), 0);
    });
    peer_thread.join().unwrap();
}
